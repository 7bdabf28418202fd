import { describe, expect, test } from 'vitest';
import { AssertionFailed } from '../../lab/util/errors.js';
import { Impossible, notYet, waitFor, type Clock } from '../../lab/util/wait.js';

/** A clock that only moves when the code under test sleeps. */
class FakeClock implements Clock {
  time = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.time += ms;
  }
}

const options = (clock: Clock, extra: { signal?: AbortSignal } = {}) => ({
  what: 'SSH login on node1',
  timeoutMs: 5000,
  intervalMs: 1000,
  clock,
  ...extra,
});

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.fail('expected the wait to fail'),
    (error: Error) => error,
  );
}

describe('waitFor', () => {
  test('returns the first value that is not notYet', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const value = await waitFor(options(clock), async () => (++calls < 3 ? notYet(`try ${calls}`) : 'ready'));
    expect(value).toBe('ready');
    expect(calls).toBe(3);
    expect(clock.sleeps).toEqual([1000, 1000]);
  });

  test('times out with what, the budget and the last thing seen; the last try is flagged', async () => {
    const clock = new FakeClock();
    const lastTries: boolean[] = [];
    const error = await rejection(
      waitFor(options(clock), async (lastTry) => {
        lastTries.push(lastTry);
        return notYet(`connection refused at ${clock.now()} ms`);
      }),
    );
    expect(error).toBeInstanceOf(AssertionFailed);
    expect(error.message).toBe(
      'timed out waiting for SSH login on node1 after 4.0 s (budget 5 s); last seen: connection refused at 4000 ms',
    );
    expect(lastTries).toEqual([false, false, false, false, true]);
  });

  test('Impossible ends the wait at once', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const error = await rejection(
      waitFor(options(clock), async () => {
        calls++;
        throw new Impossible('QEMU exited with code 1');
      }),
    );
    expect(error).toBeInstanceOf(AssertionFailed);
    expect(error.message).toBe('gave up waiting for SSH login on node1: QEMU exited with code 1');
    expect(calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  test('an ordinary error counts as not yet and becomes "last seen"', async () => {
    const clock = new FakeClock();
    let calls = 0;
    expect(
      await waitFor(options(clock), async () => {
        if (++calls === 1) throw new Error('ECONNRESET');
        return 42;
      }),
    ).toBe(42);

    const error = await rejection(
      waitFor(options(new FakeClock()), async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:2222');
      }),
    );
    expect(error.message).toMatch(/; last seen: ECONNREFUSED 127\.0\.0\.1:2222$/);
  });

  test('an aborted signal stops the wait', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    let calls = 0;
    const error = await rejection(
      waitFor(options(clock, { signal: controller.signal }), async () => {
        if (++calls === 2) controller.abort(new Error('interrupted'));
        return notYet('booting');
      }),
    );
    expect(error.message).toBe('interrupted');
    expect(calls).toBe(2);

    const already = AbortSignal.abort(new Error('too late'));
    let started = false;
    const early = await rejection(
      waitFor(options(new FakeClock(), { signal: already }), async () => {
        started = true;
        return 1;
      }),
    );
    expect(early.message).toBe('too late');
    expect(started).toBe(false);
  });
});
