import { describe, expect, test } from 'vitest';
import { fitsHost, schedule } from '../../lab/matrix/schedule.js';

/** A fake cell run: takes `ms`, records how many ran at once and which ran together. */
function recorder() {
  let now = 0;
  let peak = 0;
  const together: string[][] = [];
  const running = new Set<string>();
  const run = async (item: { name: string; ms: number }) => {
    running.add(item.name);
    now = running.size;
    peak = Math.max(peak, now);
    together.push([...running].sort());
    await new Promise((r) => setTimeout(r, item.ms));
    running.delete(item.name);
    return `${item.name} done`;
  };
  return { run, peak: () => peak, together };
}

describe('cells side by side', () => {
  const items = [
    { name: 'a', ms: 30 },
    { name: 'b', ms: 10 },
    { name: 'c', ms: 10 },
    { name: 'd', ms: 10 },
  ];

  test("at most `limit` at once, results in the cells' order", async () => {
    const r = recorder();
    expect(await schedule(items, 2, () => true, r.run)).toEqual(['a done', 'b done', 'c done', 'd done']);
    expect(r.peak()).toBe(2);
    const one = recorder();
    await schedule(items, 1, () => true, one.run);
    expect(one.peak()).toBe(1);
  });

  test('a cell that does not fit beside the running ones waits; one that fits beside nothing runs alone', async () => {
    const r = recorder();
    // c fits beside nothing: it runs alone, after a and b, before d.
    await schedule(items, 4, (item, running) => item.name !== 'c' || running.length === 0, r.run);
    expect(r.together.find((names) => names.includes('c'))).toEqual(['c']);
    expect(r.peak()).toBeGreaterThanOrEqual(2);
  });

  test("the host's rule: memory never oversubscribed, vCPUs within so many per core", () => {
    const fits = fitsHost({ memoryAvailableMiB: 8000, cores: 2 }, 2);
    const cluster = { memoryMiB: 5200, vcpus: 4 };
    const smoke = { memoryMiB: 2000, vcpus: 2 };
    expect(fits(cluster, [])).toBe(true);
    expect(fits(cluster, [cluster])).toBe(false); // memory
    expect(fits(smoke, [smoke])).toBe(true);
    expect(fits(smoke, [smoke, smoke])).toBe(false); // 6 vCPUs on 2 cores
  });
});
