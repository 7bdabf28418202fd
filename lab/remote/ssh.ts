import { readFileSync } from 'node:fs';
import { Client, type ClientChannel } from 'ssh2';
import { waitFor, Impossible, notYet } from '../util/wait.js';

/** How to reach one guest: a 127.0.0.1 forward, the image's client key and its pinned host key. */
export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  privateKeyFile: string;
  /** OpenSSH public key line of the guest's host key; any other key is refused. */
  hostKey: string;
}

export interface ExecOptions {
  /** Seconds before the command is killed in the guest (and the channel closed). Default 600. */
  timeout?: number;
  signal?: AbortSignal;
  /** Bytes for the command's standard input; or a function that writes to the channel. */
  stdin?: string | Buffer | ((channel: ClientChannel) => void);
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True when the guest-side timeout killed the command. */
  timedOut: boolean;
}

/** Quotes a string for a POSIX shell. */
export const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** One SSH connection to a guest. Every command runs under `timeout` in the guest, so none outlives its deadline. */
export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly endpoint: SshEndpoint,
  ) {}

  /**
   * The default handshake deadline is generous: a node busy with a cluster under emulation has
   * taken over 15 s to answer (the boot wait passes its own short one and retries).
   */
  static connect(endpoint: SshEndpoint, readyTimeoutMs = 60_000): Promise<SshSession> {
    const pinned = Buffer.from(endpoint.hostKey.split(/\s+/)[1] ?? '', 'base64');
    return new Promise((resolve, reject) => {
      const client = new Client();
      let hostKeyRejected = false;
      let settled = false;
      client.once('ready', () => {
        settled = true;
        resolve(new SshSession(client, endpoint));
      });
      // ssh2 may emit several errors, also after the session is up (the VM went away): the
      // first one before 'ready' fails the connect; later ones surface as failed commands.
      client.on('error', (error) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(hostKeyRejected ? new HostKeyMismatch(endpoint) : error);
      });
      client.connect({
        host: endpoint.host,
        port: endpoint.port,
        username: endpoint.user,
        privateKey: readFileSync(endpoint.privateKeyFile),
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 6,
        hostVerifier: (key: Buffer) => {
          hostKeyRejected = !key.equals(pinned);
          return !hostKeyRejected;
        },
      });
    });
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const seconds = options.timeout ?? 600;
    const wrapped = `timeout --kill-after=5 ${seconds} bash -c ${shellQuote(command)}`;
    return new Promise((resolve, reject) => {
      options.signal?.throwIfAborted();
      this.client.exec(wrapped, (error, channel) => {
        if (error) return reject(new Error(`failed to start a command over SSH`, { cause: error }));
        let stdout = '';
        let stderr = '';
        let code: number | undefined;
        let settled = false;
        const settle = (finish: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(guard);
          options.signal?.removeEventListener('abort', onAbort);
          finish();
        };
        const guard = setTimeout(() => channel.close(), (seconds + 15) * 1000);
        // On abort, do not wait for the server to close the channel (it waits for the command):
        // signal the command, close our side and return now.
        const onAbort = () => {
          channel.signal('KILL');
          channel.close();
          settle(() => reject(options.signal?.reason));
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        channel.on('data', (data: Buffer) => {
          const text = data.toString();
          stdout += text;
          options.onStdout?.(text);
        });
        channel.stderr.on('data', (data: Buffer) => {
          const text = data.toString();
          stderr += text;
          options.onStderr?.(text);
        });
        channel.on('exit', (exitCode: number | null) => {
          code = exitCode ?? 255;
        });
        channel.on('close', () =>
          settle(() => {
            if (code === undefined) reject(new Error(`the SSH channel closed before \`${command}\` exited`));
            else resolve({ code, stdout, stderr, timedOut: code === 124 || code === 137 });
          }),
        );
        if (typeof options.stdin === 'function') options.stdin(channel);
        else channel.end(options.stdin ?? '');
      });
    });
  }

  /**
   * Drops the connection at once. A graceful end() would wait for the server's FIN, and the VM is
   * usually destroyed next: on a bridged network (Vagrant's) nothing would ever answer, and the
   * half-closed socket would keep the lab alive for minutes.
   */
  close(): void {
    this.client.destroy();
  }
}

export class HostKeyMismatch extends Error {
  override name = 'HostKeyMismatch';
  constructor(endpoint: SshEndpoint) {
    super(`the host key of ${endpoint.host}:${endpoint.port} is not the pinned one; refusing to log in`);
  }
}

/**
 * Logs in as soon as the guest's sshd answers: QEMU accepts connections on the forwarded port
 * before sshd runs, so only a real login that runs `true` counts. `stillBooting` lets the caller
 * end the wait at once when the VM has died.
 */
export async function connectWhenReady(
  endpoint: SshEndpoint,
  options: { what: string; timeoutMs: number; signal?: AbortSignal; stillBooting?: () => string | undefined },
): Promise<SshSession> {
  return waitFor({ what: options.what, timeoutMs: options.timeoutMs, intervalMs: 1000, signal: options.signal }, async () => {
    const dead = options.stillBooting?.();
    if (dead) throw new Impossible(dead);
    let session: SshSession | undefined;
    try {
      session = await SshSession.connect(endpoint, 8000);
      const { code } = await session.exec('true', { timeout: 10 });
      if (code === 0) return session;
      session.close();
      return notYet(`\`true\` exited with ${code}`);
    } catch (error) {
      session?.close();
      if (error instanceof HostKeyMismatch) throw new Impossible(error.message);
      return notYet(error instanceof Error ? error.message : String(error));
    }
  });
}
