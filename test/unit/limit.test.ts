import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { mapLimit } from '../../lab/util/limit.js';

describe('mapLimit', () => {
  test('keeps at most `limit` in flight and returns the results in order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapLimit([30, 10, 20, 5, 15], 2, async (ms, index) => {
      most = Math.max(most, ++inFlight);
      await sleep(ms);
      inFlight--;
      return index * 10;
    });
    expect(results).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(2);
  });

  test('after a failure it starts nothing new, and rejects with the first error only once those in flight have settled', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const outcome = mapLimit([0, 1, 2, 3], 2, async (item) => {
      started.push(item);
      if (item === 0) {
        await sleep(5);
        throw new Error('node 0 failed');
      }
      await sleep(50);
      settled.push(item);
      if (item === 1) throw new Error('node 1 failed too');
      return item;
    });
    await expect(outcome).rejects.toThrow('node 0 failed');
    // Item 1 was in flight when item 0 failed: it had settled by the rejection; 2 and 3 never started.
    expect(settled).toEqual([1]);
    expect(started).toEqual([0, 1]);
  });
});
