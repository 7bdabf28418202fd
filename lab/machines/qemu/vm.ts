import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeLoopbackPort } from '../../net/ports.js';
import { shellQuote, type SshEndpoint } from '../../remote/ssh.js';
import { tail } from '../../util/errors.js';
import { run } from '../../util/proc.js';
import type { MachineSpec, Vm, VmSnapshots } from '../driver.js';
import type { NodeControl } from '../faults.js';
import { kernelCmdline, qemuBinary } from '../guest.js';
import { DISK_ID, qemuArgs, type QemuPaths } from './args.js';
import { qmp, runState } from './qmp.js';

/** How long a migration to or from a file may take (a few hundred MB of compressed RAM). */
const MIGRATION_MS = 300_000;
/** How long a QEMU just started may take to answer on its monitor socket. */
const MONITOR_MS = 60_000;

/**
 * One node as a plain qemu-system process. A VM that may be kept runs in its own session and
 * outlives the lab; any other runs under `setpriv --pdeathsig KILL`, so it dies with the `lab`
 * that started it, even after kill -9.
 */
export class QemuVm implements Vm {
  private child: ChildProcess | undefined;
  private exited: string | undefined;
  private readonly paths: QemuPaths;
  private readonly qemuLog: string;
  /** Overlays made by snapshots so far: the next one is disk-<n>.qcow2. */
  private overlays = 0;

  constructor(
    readonly spec: MachineSpec,
    public ssh: SshEndpoint,
    private readonly accel: () => Promise<'kvm' | 'tcg'>,
  ) {
    this.paths = {
      overlay: join(spec.stateDir, 'disk.qcow2'),
      qmpSocket: join(spec.stateDir, 'qmp.sock'),
      consoleLog: join(spec.logDir, 'console.log'),
    };
    this.qemuLog = join(spec.logDir, 'qemu.log');
  }

  get consoleLog(): string {
    return this.paths.consoleLog;
  }

  get control(): NodeControl {
    return { driver: 'qemu', qmpSocket: this.paths.qmpSocket };
  }

  exitReason(): string | undefined {
    return this.exited;
  }

  async stoppedWithin(ms: number): Promise<string | undefined> {
    const child = this.child;
    if (this.exited || !child) return this.exited;
    await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(ms)]);
    return this.exited;
  }

  async start(): Promise<void> {
    const accel = await this.accel();
    // The free port can be taken between our probe and QEMU's bind: try a few times (unless the port is given).
    for (let attempt = 1; ; attempt++) {
      this.launch(accel);
      await sleep(700);
      if (!this.exited) break;
      const log = readFileSync(this.qemuLog, 'utf8');
      if (attempt < 3 && this.spec.sshPort === undefined && /host forwarding rule/.test(log)) {
        this.ssh = { ...this.ssh, port: await freeLoopbackPort() };
        continue;
      }
      throw this.exitedAtStart();
    }
    await this.monitorAnswers();
    if (this.spec.restore) await this.load(this.spec.restore.state);
  }

  /**
   * Waits until QEMU's monitor answers: on a loaded host QEMU may not have made its QMP socket
   * 700 ms after it started (a restore then failed at once with `connect ENOENT .../qmp.sock`).
   */
  private async monitorAnswers(): Promise<void> {
    for (const deadline = Date.now() + MONITOR_MS; ; await sleep(200)) {
      if (this.exited) throw this.exitedAtStart();
      const answer = await runState(this.paths.qmpSocket).catch((error: unknown) => error as Error);
      if (typeof answer === 'string') return;
      if (Date.now() > deadline)
        throw new Error(`QEMU for ${this.spec.name}: its monitor did not answer within ${MONITOR_MS / 1000} s (${answer.message})`);
    }
  }

  private exitedAtStart(): Error {
    return new Error(`QEMU for ${this.spec.name} exited at start: ${this.exited}\n${tail(readFileSync(this.qemuLog, 'utf8'), 10)}`);
  }

  /** Reads a saved state into the paused VM; QEMU exits when the state does not fit or is damaged. */
  private async load(state: string): Promise<void> {
    await qmp(this.paths.qmpSocket, 'migrate-incoming', { uri: `exec:zstd -q -dc ${shellQuote(state)}` });
    for (const deadline = Date.now() + MIGRATION_MS; ; await sleep(200)) {
      if (this.exited)
        throw new Error(
          `QEMU for ${this.spec.name} could not load ${state}: ${this.exited}\n${tail(readFileSync(this.qemuLog, 'utf8'), 10)}`,
        );
      const status = await runState(this.paths.qmpSocket).catch(() => 'inmigrate');
      if (status !== 'inmigrate') {
        if (status !== 'paused') throw new Error(`${this.spec.name} is ${status} after loading ${state}`);
        return;
      }
      if (Date.now() > deadline) throw new Error(`${this.spec.name}: loading ${state} took over ${MIGRATION_MS / 1000} s`);
    }
  }

  private launch(accel: 'kvm' | 'tcg'): void {
    const args = qemuArgs(this.spec, accel, this.ssh.port, this.paths);
    appendFileSync(this.qemuLog, `${qemuBinary(this.spec.arch)} ${args.join(' ')}\n`);
    this.exited = undefined;
    const log = openSync(this.qemuLog, 'a');
    const child = this.spec.persistent
      ? spawn(qemuBinary(this.spec.arch), args, { stdio: ['ignore', log, log], detached: true })
      : spawn('setpriv', ['--pdeathsig', 'KILL', '--', qemuBinary(this.spec.arch), ...args], { stdio: ['ignore', log, log] });
    closeSync(log);
    if (this.spec.persistent) child.unref();
    child.on('error', (error) => (this.exited = `could not start: ${error.message}`));
    child.on('exit', (code, signal) => {
      this.exited = signal ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code}`;
    });
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    if (await within(gone, 3000)) return;
    child.kill('SIGKILL');
    await gone;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.spec.stateDir, { recursive: true, force: true });
  }

  readonly snapshots: VmSnapshots = {
    pause: async () => {
      await qmp(this.paths.qmpSocket, 'stop');
    },
    resume: async () => {
      await qmp(this.paths.qmpSocket, 'cont');
    },
    save: (dir) => this.save(dir),
  };

  /**
   * The disk first: the running overlay becomes read-only under a new one (QEMU flushes it), so
   * it holds exactly what the guest had written when it was paused; then RAM and devices go to a
   * file through QEMU's migration, compressed.
   */
  private async save(dir: string): Promise<{ state: string; frozenDisk: string; cmdline: string }> {
    const frozen = this.paths.overlay;
    const next = join(this.spec.stateDir, `disk-${++this.overlays}.qcow2`);
    await qmp(this.paths.qmpSocket, 'blockdev-snapshot-sync', { device: DISK_ID, 'snapshot-file': next, format: 'qcow2' }, 30_000);
    this.paths.overlay = next;
    const state = join(dir, `${this.spec.name}.state`);
    await qmp(this.paths.qmpSocket, 'migrate', { uri: `exec:zstd -q -1 -T0 > ${shellQuote(state)}` });
    for (const deadline = Date.now() + MIGRATION_MS; ; await sleep(200)) {
      const migration = await qmp<{ status?: string; 'error-desc'?: string }>(this.paths.qmpSocket, 'query-migrate');
      if (migration.status === 'completed') break;
      if (migration.status === 'failed' || migration.status === 'cancelled')
        throw new Error(`saving ${this.spec.name}'s state failed: ${migration['error-desc'] ?? migration.status}`);
      if (Date.now() > deadline) throw new Error(`saving ${this.spec.name}'s state took over ${MIGRATION_MS / 1000} s`);
    }
    return { state, frozenDisk: frozen, cmdline: this.spec.restore?.cmdline ?? kernelCmdline(this.spec) };
  }
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);
}
