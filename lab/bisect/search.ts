/**
 * The search of `lab bisect --axis`, apart from how a point is tried: ordered values, the first and
 * the last judged first, then halves, as `git bisect` does over commits. A point that cannot be
 * judged (skip) is stepped around; a repeated point whose runs disagree is flaky, and is stepped
 * around the same way.
 */

/** What one try of a point says: good (the old behaviour), bad, or skip (could not judge: it failed differently). */
export type Outcome = 'good' | 'bad' | 'skip';

export interface Probe {
  outcome: Outcome;
  /** One line on what the run found (its verdict), for the report. */
  detail: string;
}

export interface Point {
  value: string;
  runs: Probe[];
  /** The runs' common outcome; flaky when they disagree. */
  outcome: Outcome | 'flaky';
}

export interface SearchResult {
  /** Every point tried, in the order tried. */
  points: Point[];
  /** The first value whose outcome is not the first value's, and the value before it. */
  change?: { last: string; first: string; from: 'good' | 'bad'; to: 'good' | 'bad' };
  /** Why there is no single first value. */
  unresolved?: string;
}

/** Tries a point `repeat` times, stopping at the first disagreement (one is enough to call it flaky). */
export async function tryPoint(value: string, repeat: number, probe: (value: string, attempt: number) => Promise<Probe>): Promise<Point> {
  const runs: Probe[] = [];
  for (let attempt = 1; attempt <= repeat; attempt++) {
    runs.push(await probe(value, attempt));
    if (runs.some((run) => run.outcome !== runs[0]?.outcome)) return { value, runs, outcome: 'flaky' };
  }
  return { value, runs, outcome: runs[0]?.outcome ?? 'skip' };
}

const judged = (point: Point): point is Point & { outcome: 'good' | 'bad' } => point.outcome === 'good' || point.outcome === 'bad';

export async function bisectValues(
  values: string[],
  repeat: number,
  probe: (value: string, attempt: number) => Promise<Probe>,
): Promise<SearchResult> {
  const points: Point[] = [];
  const at = new Map<number, Point>();
  const tryAt = async (index: number) => {
    const point = await tryPoint(values[index] as string, repeat, probe);
    points.push(point);
    at.set(index, point);
    return point;
  };

  const first = await tryAt(0);
  if (!judged(first)) return { points, unresolved: `the first value, ${first.value}, could not be judged (${describe(first)})` };
  const last = await tryAt(values.length - 1);
  if (!judged(last)) return { points, unresolved: `the last value, ${last.value}, could not be judged (${describe(last)})` };
  if (first.outcome === last.outcome)
    return { points, unresolved: `${first.value} and ${last.value} are both ${first.outcome}: nothing changes between them` };

  let low = 0;
  let high = values.length - 1;
  for (;;) {
    // The untried value nearest the middle of what is left (skipped and flaky ones are stepped around).
    const middle = (low + high) / 2;
    const candidates = range(low + 1, high).filter((index) => !at.has(index));
    if (!candidates.length) break;
    const index = candidates.reduce((best, i) => (Math.abs(i - middle) < Math.abs(best - middle) ? i : best));
    const point = await tryAt(index);
    if (point.outcome === first.outcome) low = index;
    else if (point.outcome === last.outcome) high = index;
  }
  const between = range(low + 1, high);
  if (between.length)
    return {
      points,
      unresolved: `the change is at one of ${[...between, high].map((i) => values[i]).join(', ')}: ${between
        .map((i) => `${values[i]} could not be judged (${describe(at.get(i) as Point)})`)
        .join('; ')}`,
    };
  return { points, change: { last: values[low] as string, first: values[high] as string, from: first.outcome, to: last.outcome } };
}

/** Indices from `from` up to, not including, `to`. */
const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** A point's runs in a few words: "skip: failed differently: ..." or "flaky: bad, good". */
export function describe(point: Point): string {
  if (point.outcome === 'flaky') return `flaky: ${point.runs.map((run) => run.outcome).join(', ')}`;
  return `${point.outcome}: ${point.runs[0]?.detail ?? ''}`;
}
