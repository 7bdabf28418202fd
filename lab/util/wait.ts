import { setTimeout as sleep } from 'node:timers/promises';
import { AssertionFailed } from './errors.js';

/** Injectable time source, so waits can be tested without sleeping. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

export interface WaitOptions {
  /** What is being waited for, in words: "SSH login on node1". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
}

/** Returned by an attempt that has not succeeded yet: `seen` is what it observed, for the timeout message. */
export interface NotYet {
  notYet: true;
  seen: string;
}

export const notYet = (seen: string): NotYet => ({ notYet: true, seen });

/** Raised by an attempt when the condition can no longer become true: stops the wait at once. */
export class Impossible extends Error {
  override name = 'Impossible';
}

const isNotYet = (value: unknown): value is NotYet => typeof value === 'object' && value !== null && (value as NotYet).notYet === true;

/**
 * Polls `attempt` until it returns a value that is not `notYet(...)`. The deadline is computed
 * once; the timeout message names the condition, the budget and the last thing seen. An attempt
 * that throws `Impossible` ends the wait at once (fail fast); any other error counts as "not yet".
 */
export async function waitFor<T>(options: WaitOptions, attempt: (lastTry: boolean) => Promise<T | NotYet>): Promise<T> {
  const clock = options.clock ?? realClock;
  const interval = options.intervalMs ?? 1000;
  const started = clock.now();
  const deadline = started + options.timeoutMs;
  let seen = 'nothing yet';
  for (;;) {
    options.signal?.throwIfAborted();
    const lastTry = clock.now() + interval >= deadline;
    try {
      const result = await attempt(lastTry);
      if (!isNotYet(result)) return result;
      seen = result.seen;
    } catch (error) {
      if (error instanceof Impossible) throw new AssertionFailed(`gave up waiting for ${options.what}: ${error.message}`);
      if (options.signal?.aborted) throw options.signal.reason;
      seen = error instanceof Error ? error.message : String(error);
    }
    if (lastTry) {
      const elapsed = ((clock.now() - started) / 1000).toFixed(1);
      throw new AssertionFailed(
        `timed out waiting for ${options.what} after ${elapsed} s (budget ${(options.timeoutMs / 1000).toFixed(0)} s); last seen: ${seen}`,
      );
    }
    await clock.sleep(Math.max(0, Math.min(interval, deadline - clock.now())), options.signal);
  }
}
