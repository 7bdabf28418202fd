import { spawn, type SpawnOptions } from 'node:child_process';
import { CommandError } from './errors.js';

export interface RunOptions {
  /** Stops the command (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Bytes written to the command's standard input. */
  input?: string | Buffer;
  /** Called with each complete line of stdout and stderr, for progress and log files. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
  /**
   * Runs the command in a process group of its own and stops the whole group on abort, so
   * grandchildren (debootstrap's apt, say) stop too. Reports the group ID once started.
   */
  group?: (pgid: number) => void;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a host command to completion. Throws CommandError (argv and output kept) on failure. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run: empty command');
  const spawnOptions: SpawnOptions = {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.group !== undefined,
  };
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const child = spawn(cmd, args, spawnOptions);
    if (options.group && child.pid) options.group(child.pid);
    const kill = (sig: NodeJS.Signals) => {
      if (options.group && child.pid) {
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* the group is gone */
        }
      } else child.kill(sig);
    };
    let stdout = '';
    let stderr = '';
    const partial = { stdout: '', stderr: '' };
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString();
      if (stream === 'stdout') stdout += text;
      else stderr += text;
      if (!options.onLine) return;
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) options.onLine(line, stream);
    };
    child.stdout?.on('data', collect('stdout'));
    child.stderr?.on('data', collect('stderr'));
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), 5000);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new Error(`failed to start ${cmd}`, { cause: error }));
    });
    child.on('close', (code) => {
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      for (const stream of ['stdout', 'stderr'] as const) {
        if (partial[stream] && options.onLine) options.onLine(partial[stream], stream);
      }
      if (options.signal?.aborted) {
        reject(options.signal.reason);
        return;
      }
      if (code !== 0 && options.check !== false) {
        reject(new CommandError(argv.join(' '), code, `${stdout}${stderr}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

/** True when a process with this PID exists (signal 0 probes without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops processes by PID: SIGTERM, up to 3 s for them to go, then SIGKILL for what is left. */
export async function stopProcesses(pids: number[]): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const pid of pids.filter(isAlive)) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
    for (let i = 0; i < 30 && pids.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100));
  }
}
