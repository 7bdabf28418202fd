import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tail } from '../../util/errors.js';
import { isAlive } from '../../util/proc.js';

/** The system paths libvirtd uses; each is replaced by a folder of the run, in a mount namespace of its own. */
const PRIVATE_PATHS: Record<string, string> = {
  etc: '/etc/libvirt',
  run: '/run/libvirt',
  lib: '/var/lib/libvirt',
  log: '/var/log/libvirt',
  cache: '/var/cache/libvirt',
};

/**
 * QEMU runs as root without a security driver, and libvirt neither relabels nor remembers file
 * owners: the disks, kernels and sockets belong to the lab. stdio_handler "file" avoids virtlogd,
 * one more daemon that would outlive the run. No seccomp sandbox: QEMU hands each guest
 * connection to a host service of the run (its cloud) to a process it starts (guestfwd's cmd:),
 * and libvirt's default sandbox (spawn=deny) kills the VM for that.
 */
const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
seccomp_sandbox = 0
`;

const LIBVIRTD_CONF = `unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
`;

/**
 * A libvirtd that belongs to one run: its configuration, sockets, domains, networks and pools live
 * in the run's state folder (bind-mounted over libvirt's system paths inside a private mount
 * namespace), so it sees nothing of a system libvirtd and leaves nothing behind. It dies with the
 * lab (pdeathsig), unless the run may be kept; then it is found again by its PID file or by the
 * state folder on its command line.
 */
export class PrivateLibvirtd {
  readonly root: string;
  private child: ChildProcess | undefined;
  private exited: string | undefined;

  constructor(
    stateDir: string,
    private readonly persistent: boolean,
  ) {
    this.root = join(stateDir, 'libvirt');
  }

  get socket(): string {
    return join(this.root, 'run', 'libvirt-sock');
  }

  /** The URI that reaches this daemon from outside its mount namespace. */
  get uri(): string {
    return `qemu:///system?socket=${this.socket}`;
  }

  get pidFile(): string {
    return join(this.root, 'libvirtd.pid');
  }

  get logFile(): string {
    return join(this.root, 'log', 'libvirtd.log');
  }

  async start(timeoutMs = 20_000): Promise<void> {
    for (const dir of Object.keys(PRIVATE_PATHS)) mkdirSync(join(this.root, dir), { recursive: true, mode: 0o700 });
    writeFileSync(join(this.root, 'etc', 'qemu.conf'), QEMU_CONF);
    writeFileSync(join(this.root, 'etc', 'libvirtd.conf'), LIBVIRTD_CONF);
    const binds = Object.entries(PRIVATE_PATHS)
      .map(([dir, target]) => `mkdir -p ${target} && mount --bind ${join(this.root, dir)} ${target}`)
      .join(' && ');
    const script = `${binds} && exec libvirtd --pid-file ${this.pidFile}`;
    const unshare = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script];
    const out = openSync(join(this.root, 'libvirtd.out'), 'a');
    const child = this.persistent
      ? spawn(unshare[0] as string, unshare.slice(1), { stdio: ['ignore', out, out], detached: true })
      : spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...unshare], { stdio: ['ignore', out, out] });
    closeSync(out);
    if (this.persistent) child.unref();
    child.on('error', (error) => (this.exited = `could not start: ${error.message}`));
    child.on('exit', (code, signal) => (this.exited = `libvirtd exited (${signal ?? `code ${code}`})`));
    this.child = child;

    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.socket)) {
      if (this.exited || Date.now() > deadline) {
        const output = readFileSync(join(this.root, 'libvirtd.out'), 'utf8');
        throw new Error(`the run's libvirtd did not start: ${this.exited ?? `no socket after ${timeoutMs / 1000} s`}\n${tail(output, 10)}`);
      }
      await sleep(100);
    }
  }

  /** Why the daemon is not running, or undefined while it runs. */
  exitReason(): string | undefined {
    return this.exited;
  }

  async stop(): Promise<void> {
    const pid = this.child?.pid ?? (existsSync(this.pidFile) ? Number(readFileSync(this.pidFile, 'utf8')) : 0);
    if (!pid || !isAlive(pid) || this.exited) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && isAlive(pid) && !this.exited; i++) await sleep(100);
    if (isAlive(pid) && !this.exited) process.kill(pid, 'SIGKILL');
  }
}
