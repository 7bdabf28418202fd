import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The run's cluster link: one vde_switch on a unix socket folder in the run's state folder, a
 * purely virtual L2 switch that only this run's VMs plug into. It carries nothing to or from the
 * host's networks, and two runs get two switches that never see each other.
 */
export class ClusterSwitch {
  private child: ChildProcess | undefined;
  private exited: string | undefined;
  readonly socketDir: string;

  private readonly pidFile: string;

  constructor(
    stateDir: string,
    private readonly persistent = false,
  ) {
    this.socketDir = join(stateDir, 'switch');
    this.pidFile = join(stateDir, 'switch.pid');
  }

  async start(): Promise<void> {
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    const options = ['--sock', this.socketDir, '--mode', '0600', '--numports', '64'];
    if (this.persistent) {
      // A switch that may be kept daemonizes, holding none of the lab's pipes; it is found
      // again through its PID file.
      spawn('vde_switch', [...options, '--daemon', '--pidfile', this.pidFile], { stdio: 'ignore' }).unref();
    } else {
      // Any other dies with the lab (pdeathsig) and keeps its stdin an open pipe, because
      // vde_switch's console quits on EOF.
      const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'vde_switch', ...options], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code, signal) => (this.exited = `vde_switch exited (${signal ?? code}): ${stderr.trim()}`));
      this.child = child;
    }
    for (let i = 0; i < 50 && !existsSync(join(this.socketDir, 'ctl')); i++) {
      if (this.exited) break;
      await sleep(100);
    }
    if (this.exited || !existsSync(join(this.socketDir, 'ctl')))
      throw new Error(`the cluster switch did not start: ${this.exited ?? 'no control socket after 5 s'}`);
  }

  async stop(): Promise<void> {
    if (this.persistent) {
      const pid = existsSync(this.pidFile) ? Number(readFileSync(this.pidFile, 'utf8')) : 0;
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      return;
    }
    const child = this.child;
    if (!child || this.exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await Promise.race([gone, sleep(3000)]);
    if (!this.exited) child.kill('SIGKILL');
  }
}
