import { describe, expect, test } from 'vitest';
import { probeOf } from '../../lab/bisect/bisect.js';
import { bisectValues, type Outcome, type Probe } from '../../lab/bisect/search.js';
import type { RunSummary } from '../../lab/report/summary.js';

/** A fake runner: each value's outcomes in turn (the last repeats), and every try recorded. */
function fake(outcomes: Record<string, Outcome | Outcome[]>) {
  const tried: string[] = [];
  const seen = new Map<string, number>();
  const probe = async (value: string): Promise<Probe> => {
    tried.push(value);
    const list = [outcomes[value] ?? 'skip'].flat();
    const n = seen.get(value) ?? 0;
    seen.set(value, n + 1);
    const outcome = list[Math.min(n, list.length - 1)] as Outcome;
    return { outcome, detail: `${value} was ${outcome}` };
  };
  return { probe, tried };
}

const VERSIONS = ['1.10.0', '1.11.0', '1.12.0', '1.13.0', '1.14.0', '1.15.0', '1.16.0', '1.17.0'];
/** Bad up to and including `lastBad`, good after. */
const badUntil = (lastBad: string): Record<string, Outcome> =>
  Object.fromEntries(VERSIONS.map((v) => [v, VERSIONS.indexOf(v) <= VERSIONS.indexOf(lastBad) ? 'bad' : 'good']));

describe('bisect over ordered values', () => {
  test('two values: both ends tried, the second named as the first good one', async () => {
    const { probe, tried } = fake({ '1.13.0': 'bad', '1.14.0': 'good' });
    const result = await bisectValues(['1.13.0', '1.14.0'], 1, probe);
    expect(tried).toEqual(['1.13.0', '1.14.0']);
    expect(result.change).toEqual({ last: '1.13.0', first: '1.14.0', from: 'bad', to: 'good' });
    expect(result.points.map((p) => [p.value, p.outcome])).toEqual([
      ['1.13.0', 'bad'],
      ['1.14.0', 'good'],
    ]);
  });

  test.each(VERSIONS.slice(0, -1))(
    'eight values, the last bad one %s: found in at most 2 + 3 tries, each value at most once',
    async (lastBad) => {
      const { probe, tried } = fake(badUntil(lastBad));
      const result = await bisectValues(VERSIONS, 1, probe);
      expect(result.change).toEqual({ last: lastBad, first: VERSIONS[VERSIONS.indexOf(lastBad) + 1], from: 'bad', to: 'good' });
      expect(tried.length).toBeLessThanOrEqual(5);
      expect(new Set(tried).size).toBe(tried.length);
    },
  );

  test('a change from good to bad is found the same way (the first bad value)', async () => {
    const { probe } = fake({ a: 'good', b: 'good', c: 'bad', d: 'bad' });
    expect((await bisectValues(['a', 'b', 'c', 'd'], 1, probe)).change).toEqual({ last: 'b', first: 'c', from: 'good', to: 'bad' });
  });

  test('both ends alike: nothing to search, said so, and no value between is tried', async () => {
    const { probe, tried } = fake({ a: 'bad', b: 'good', c: 'bad' });
    const result = await bisectValues(['a', 'b', 'c'], 1, probe);
    expect(tried).toEqual(['a', 'c']);
    expect(result.change).toBeUndefined();
    expect(result.unresolved).toBe('a and c are both bad: nothing changes between them');
  });

  test('an end that cannot be judged stops the search, naming it and why', async () => {
    const { probe, tried } = fake({ a: 'skip', b: 'bad', c: 'good' });
    const result = await bisectValues(['a', 'b', 'c'], 1, probe);
    expect(tried).toEqual(['a']);
    expect(result.unresolved).toBe('the first value, a, could not be judged (skip: a was skip)');
  });

  test('a skipped value is stepped around: its neighbour is tried instead', async () => {
    const { probe, tried } = fake({ a: 'bad', b: 'bad', c: 'skip', d: 'bad', e: 'good' });
    const result = await bisectValues(['a', 'b', 'c', 'd', 'e'], 1, probe);
    expect(result.change).toEqual({ last: 'd', first: 'e', from: 'bad', to: 'good' });
    expect(tried).toContain('c');
    expect(tried).toContain('d');
  });

  test('when only skipped values stand between a bad and a good one, the candidates are named', async () => {
    const { probe } = fake({ a: 'bad', b: 'skip', c: 'skip', d: 'good' });
    const result = await bisectValues(['a', 'b', 'c', 'd'], 1, probe);
    expect(result.change).toBeUndefined();
    expect(result.unresolved).toBe(
      'the change is at one of b, c, d: b could not be judged (skip: b was skip); c could not be judged (skip: c was skip)',
    );
  });

  test('--repeat: each value is run that many times; runs that disagree make it flaky, stepped around, and stop its repeats', async () => {
    const { probe, tried } = fake({ a: 'bad', b: ['bad', 'good'], c: 'good' });
    const result = await bisectValues(['a', 'b', 'c'], 3, probe);
    expect(tried).toEqual(['a', 'a', 'a', 'c', 'c', 'c', 'b', 'b']);
    const b = result.points.find((p) => p.value === 'b');
    expect(b?.outcome).toBe('flaky');
    expect(result.unresolved).toBe('the change is at one of b, c: b could not be judged (flaky: bad, good)');
  });

  test('--repeat with runs that agree: the value keeps its outcome', async () => {
    const { probe, tried } = fake({ a: 'bad', b: 'good' });
    const result = await bisectValues(['a', 'b'], 2, probe);
    expect(tried).toEqual(['a', 'a', 'b', 'b']);
    expect(result.points.map((p) => p.runs.length)).toEqual([2, 2]);
    expect(result.change?.first).toBe('b');
  });
});

describe('a run as a bisect point', () => {
  const summary = (over: Partial<RunSummary>): RunSummary =>
    ({ verdict: 'passed', phases: [], steps: [], checks: [], ...over }) as unknown as RunSummary;
  const point = (over: Partial<RunSummary>) => probeOf({ summary: summary(over), runDir: '/r/run-1' });
  const bug = (verdict: 'reproduced' | 'not reproduced' | 'failed differently') => ({
    url: 'https://example.org/bug/1',
    title: 't',
    verdict,
    reason: `${verdict} because`,
    matched: [],
  });

  test('a bug scenario: reproduced is bad, not reproduced good, failed differently a skip (git bisect run: 1, 0, 125)', () => {
    expect(point({ verdict: 'failed', bug: bug('reproduced') })).toEqual({
      outcome: 'bad',
      detail: 'reproduced: reproduced because',
      report: '/r/run-1/report.html',
    });
    expect(point({ bug: bug('not reproduced') }).outcome).toBe('good');
    expect(point({ verdict: 'failed', bug: bug('failed differently') })).toMatchObject({
      outcome: 'skip',
      detail: 'failed differently: failed differently because',
    });
  });

  test('a plain scenario: passed is good, a failed step or check bad (named), a lab error a skip', () => {
    expect(point({}).outcome).toBe('good');
    const failed = point({
      verdict: 'failed',
      steps: [{ step: 'hello', node: 'node1', status: 'failed', seconds: 1, log: '' }],
      checks: [{ check: 'dns', name: 'dns > answers', status: 'failed', seconds: 1 }],
    });
    expect(failed).toMatchObject({ outcome: 'bad', detail: 'failed: step hello on node1; dns > answers' });
    expect(point({ verdict: 'error', error: 'the image could not be built\nmore' })).toMatchObject({
      outcome: 'skip',
      detail: 'the lab could not run it: the image could not be built',
    });
  });
});
