import { existsSync, readFileSync } from 'node:fs';

/**
 * Error classes that decide how the CLI ends. Each layer wraps what it catches with
 * `new Error("failed to …", { cause })`; the top-level handler picks the exit code from the class.
 */

/** Bad input from the user: nothing was started. Exit code 2. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message);
  }
}

/** A step or check of a run failed: the run itself worked as designed. Exit code 1. */
export class RunFailed extends Error {
  override name = 'RunFailed';
}

/** A command on the host or in a guest exited non-zero; keeps argv and output for the report. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly output: string,
    readonly where = 'host',
  ) {
    super(`${where}: \`${command}\` exited with ${exitCode ?? 'a signal'}${output ? `\n${tail(output)}` : ''}`);
  }
}

/** A condition the caller asked for did not hold (a check assertion, a wait that timed out). */
export class AssertionFailed extends Error {
  override name = 'AssertionFailed';
}

/** The last lines of a text, for error messages that must stay readable. */
export function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split('\n');
  const kept = all.slice(-lines);
  return (all.length > lines ? [`… (${all.length - lines} earlier lines in the log)`, ...kept] : kept).join('\n');
}

/** "last lines of its console (file):" and those lines, for a node that did not come up. */
export function consoleTail(file: string, lines = 25): string {
  const text = existsSync(file) ? tail(readFileSync(file, 'utf8'), lines) : '(no console output)';
  return `last lines of its console (${file}):\n${text}`;
}

/** The message of an error and its causes, one per line. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n  caused by: ');
}
