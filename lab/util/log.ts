import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A logging tree. `step` prints a heading and "(finished …, 1.23 s)" so the log always says what
 * is being waited for; user-facing progress uses ` • … / ✓ … / ✗ …` lines (kind's Status style).
 * Everything also goes to an optional log file with timestamps.
 */
export class Logger {
  private file: string | undefined;
  /** The folder named when the log file's folder disappears (the run's report folder). */
  private folder: string | undefined;
  constructor(
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly prefix = '',
    private verbose = false,
  ) {}

  /** Also write every line to this file (the run's `logs/lab.log`), which lives in `folder`. */
  tee(file: string, folder = dirname(file)): void {
    this.file = file;
    this.folder = folder;
  }

  setVerbose(on: boolean): void {
    this.verbose = on;
  }

  child(prefix: string): Logger {
    const child = new Logger(this.out, `${this.prefix}${prefix}: `, this.verbose);
    child.file = this.file;
    child.folder = this.folder;
    return child;
  }

  info(message: string): void {
    this.write(`${this.prefix}${message}`, true);
  }

  /** Details shown on the terminal only with -v; always kept in the log file. */
  debug(message: string): void {
    this.write(`${this.prefix}${message}`, this.verbose);
  }

  warn(message: string): void {
    this.write(`${this.prefix}WARNING: ${message}`, true);
  }

  /** Runs `fn` as a named phase: ` • title ...` then ` ✓ title (1.2 s)` or ` ✗ title (1.2 s)`. */
  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    this.write(` • ${this.prefix}${title} ...`, true);
    try {
      const result = await fn();
      this.write(` ✓ ${this.prefix}${title} (${seconds(started)})`, true);
      return result;
    } catch (error) {
      this.write(` ✗ ${this.prefix}${title} (${seconds(started)})`, true);
      throw error;
    }
  }

  private write(line: string, show: boolean): void {
    if (show) this.out.write(`${line}\n`);
    if (this.file) this.append(this.file, `${new Date().toISOString()} ${line}\n`);
  }

  /**
   * The log file's folder (the run's report folder) may be removed while the run goes on: the
   * run must not die of it. The folder is made again, and the terminal and the file say so.
   */
  private append(file: string, text: string): void {
    try {
      appendFileSync(file, text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const notice = `WARNING: ${this.folder ?? dirname(file)} was removed while the run went on: made again, and what it held until now is lost`;
      this.out.write(`${notice}\n`);
      mkdirSync(dirname(file), { recursive: true });
      appendFileSync(file, `${new Date().toISOString()} ${notice}\n${text}`);
    }
  }
}

export function seconds(startedMs: number): string {
  return `${((performance.now() - startedMs) / 1000).toFixed(1)} s`;
}

/** A logger that prints nothing (tests, library use). */
export const silentLogger = (): Logger => new Logger({ write: () => true } as unknown as NodeJS.WritableStream);
