import { spawn } from 'node:child_process';
import { AssertionFailed, tail } from '../util/errors.js';
import { waitFor, notYet, Impossible } from '../util/wait.js';
import { shellQuote, type ExecOptions, type ExecResult, type SshSession } from './ssh.js';

/**
 * A live node as checks and provisioners see it: readable verbs built on one primitive, `exec`
 * (NixOS test driver). Knows nothing about which driver made the VM.
 */
export class Machine {
  constructor(
    readonly name: string,
    private session: SshSession,
  ) {}

  /** Goes on over a new connection (the VM's process was replaced under the old one, as libvirt's save does). */
  reconnected(session: SshSession): void {
    this.session.close();
    this.session = session;
  }

  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    return this.session.exec(command, options);
  }

  /** Runs a command that must succeed; returns its stdout, or fails naming the node, command and output. */
  async succeed(command: string, options?: ExecOptions): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      throw new AssertionFailed(`${this.name}: \`${command}\` exited with ${result.code}${outputOf(result)}`);
    }
    return result.stdout;
  }

  /** Runs a command that must fail; returns its output. */
  async fail(command: string, options?: ExecOptions): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code === 0) throw new AssertionFailed(`${this.name}: \`${command}\` succeeded but was expected to fail${outputOf(result)}`);
    return result.stdout + result.stderr;
  }

  /** Retries a command every second until it succeeds; returns its stdout. */
  waitUntilSucceeds(command: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    return waitFor(
      { what: `\`${command}\` to succeed on ${this.name}`, timeoutMs: options.timeoutMs ?? 120_000, signal: options.signal },
      async () => {
        const result = await this.exec(command, { timeout: 30, signal: options.signal });
        return result.code === 0 ? result.stdout : notYet(`exit ${result.code}${outputOf(result)}`);
      },
    );
  }

  /** Retries a command every second until it fails. */
  async waitUntilFails(command: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    await waitFor(
      { what: `\`${command}\` to fail on ${this.name}`, timeoutMs: options.timeoutMs ?? 120_000, signal: options.signal },
      async () => {
        const result = await this.exec(command, { timeout: 30, signal: options.signal });
        return result.code !== 0 ? true : notYet(`still succeeds${outputOf(result)}`);
      },
    );
  }

  /** Waits until something listens on a TCP port inside the guest. */
  async waitForPort(port: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    await this.waitUntilSucceeds(`ss -Hltn 'sport = :${port}' | grep -q .`, options);
  }

  /** Waits until a systemd unit is active; fails at once when it has failed instead of running out the clock. */
  async waitForUnit(unit: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    await waitFor(
      { what: `unit ${unit} to be active on ${this.name}`, timeoutMs: options.timeoutMs ?? 120_000, signal: options.signal },
      async () => {
        const state = (await this.exec(`systemctl is-active ${shellQuote(unit)}`, { timeout: 30 })).stdout.trim();
        if (state === 'active') return true;
        if (state === 'failed') {
          const status = await this.exec(`systemctl status --no-pager -n 20 ${shellQuote(unit)}`, { timeout: 30 });
          throw new Impossible(`${unit} has failed:\n${tail(status.stdout, 20)}`);
        }
        return notYet(`state ${state || 'unknown'}`);
      },
    );
  }

  /** Writes bytes to a file in the guest, creating its folder. */
  async writeFile(path: string, content: string | Buffer, mode = '0644'): Promise<void> {
    const dir = path.replace(/\/[^/]*$/, '') || '/';
    // Created private and opened up after: a key is never readable by others, not even briefly.
    await this.succeed(`umask 077 && mkdir -p ${shellQuote(dir)} && rm -f ${shellQuote(path)} && cat > ${shellQuote(path)} && chmod ${mode} ${shellQuote(path)}`, {
      stdin: content,
      timeout: 120,
    });
  }

  /** Copies a host folder into the guest (a tar stream over the SSH channel). */
  async copyDirTo(localDir: string, remoteDir: string): Promise<void> {
    await this.succeed(`mkdir -p ${shellQuote(remoteDir)} && tar -C ${shellQuote(remoteDir)} -xf -`, {
      timeout: 300,
      // tar starts only once the channel is open: output of a child that exits before anyone
      // reads it can be lost.
      stdin: (channel) => spawn('tar', ['-C', localDir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout.pipe(channel),
    });
  }

  /** Reads a file from the guest. */
  async readFile(path: string): Promise<string> {
    return this.succeed(`cat ${shellQuote(path)}`);
  }

  close(): void {
    this.session.close();
  }
}

function outputOf(result: ExecResult): string {
  const output = `${result.stdout}${result.stderr}`.trim();
  return output ? `\n${tail(output, 20)}` : ' (no output)';
}
