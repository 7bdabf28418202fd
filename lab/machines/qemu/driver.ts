import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeLoopbackPort } from '../../net/ports.js';
import { run } from '../../util/proc.js';
import { tail } from '../../util/errors.js';
import type { Driver, DriverInfo, MachineSpec, Vm } from '../driver.js';
import { detectAccel, type Accel } from '../accel.js';
import { qemuArgs, type QemuPaths } from './args.js';
import { labelledHypervisors, qemuBinary } from '../guest.js';
import { qmp } from './qmp.js';

class QemuVm implements Vm {
  child: ChildProcess | undefined;
  exited: string | undefined;
  readonly paths: QemuPaths;
  readonly qemuLog: string;

  constructor(
    readonly spec: MachineSpec,
    public ssh: Vm['ssh'],
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

  exitReason(): string | undefined {
    return this.exited;
  }

  async stoppedWithin(ms: number): Promise<string | undefined> {
    const child = this.child;
    if (this.exited || !child) return this.exited;
    await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(ms)]);
    return this.exited;
  }
}

/**
 * Runs each node as a plain qemu-system process: no daemon needed. Every QEMU runs under
 * `setpriv --pdeathsig KILL`, so it dies with the `lab` that started it even after `kill -9`.
 */
export class QemuDriver implements Driver {
  readonly name = 'qemu' as const;
  private accel: Accel | undefined;

  async info(): Promise<DriverInfo> {
    const problems: string[] = [];
    for (const binary of ['qemu-system-x86_64', 'qemu-img', 'setpriv']) {
      const found = await run(['sh', '-c', `command -v ${binary}`], { check: false });
      if (found.code !== 0) problems.push(`${binary} is missing: install qemu-system-x86 qemu-utils util-linux`);
    }
    return { name: this.name, problems, acceleration: this.accel ? `${this.accel.kind} (${this.accel.why})` : 'not probed yet' };
  }

  async create(spec: MachineSpec): Promise<Vm> {
    mkdirSync(spec.stateDir, { recursive: true });
    mkdirSync(spec.logDir, { recursive: true });
    const port = await freeLoopbackPort();
    const vm = new QemuVm(spec, {
      host: '127.0.0.1',
      port,
      user: 'root',
      privateKeyFile: spec.image.clientKey,
      hostKey: spec.image.hostKey,
    });
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', spec.image.disk, vm.paths.overlay]);
    return vm;
  }

  async start(vm: Vm): Promise<void> {
    const qvm = vm as QemuVm;
    this.accel ??= await detectAccel(qvm.spec.arch, qemuBinary(qvm.spec.arch), qvm.spec.image.kernel);
    // The free port can be taken between our probe and QEMU's bind: try a few times.
    for (let attempt = 1; ; attempt++) {
      this.launch(qvm, this.accel.kind);
      await sleep(700);
      if (!qvm.exited) return;
      const log = readFileSync(qvm.qemuLog, 'utf8');
      if (attempt < 3 && /host forwarding rule/.test(log)) {
        qvm.ssh = { ...qvm.ssh, port: await freeLoopbackPort() };
        continue;
      }
      throw new Error(`QEMU for ${qvm.spec.name} exited at start: ${qvm.exited}\n${tail(log, 10)}`);
    }
  }

  private launch(vm: QemuVm, accel: 'kvm' | 'tcg'): void {
    const args = qemuArgs(vm.spec, accel, vm.ssh.port, vm.paths);
    appendFileSync(vm.qemuLog, `${qemuBinary(vm.spec.arch)} ${args.join(' ')}\n`);
    vm.exited = undefined;
    const log = openSync(vm.qemuLog, 'a');
    // A VM that may be kept runs in its own session and outlives the lab; any other dies with
    // the lab that started it, even after kill -9 (PR_SET_PDEATHSIG).
    const child = vm.spec.persistent
      ? spawn(qemuBinary(vm.spec.arch), args, { stdio: ['ignore', log, log], detached: true })
      : spawn('setpriv', ['--pdeathsig', 'KILL', '--', qemuBinary(vm.spec.arch), ...args], { stdio: ['ignore', log, log] });
    closeSync(log);
    if (vm.spec.persistent) child.unref();
    child.on('error', (error) => (vm.exited = `could not start: ${error.message}`));
    child.on('exit', (code, signal) => {
      vm.exited = signal ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code}`;
    });
    vm.child = child;
  }

  async stop(vm: Vm, graceMs: number): Promise<void> {
    const qvm = vm as QemuVm;
    const child = qvm.child;
    if (!child || qvm.exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (graceMs > 0) {
      // ACPI power button: systemd shuts down cleanly, and -no-reboot makes QEMU exit after it.
      await qmp(qvm.paths.qmpSocket, 'system_powerdown').catch(() => undefined);
      if (await within(gone, graceMs)) return;
    }
    child.kill('SIGTERM');
    if (await within(gone, 3000)) return;
    child.kill('SIGKILL');
    await gone;
  }

  async destroy(vm: Vm): Promise<void> {
    await this.stop(vm, 0);
    rmSync(vm.spec.stateDir, { recursive: true, force: true });
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);
}
