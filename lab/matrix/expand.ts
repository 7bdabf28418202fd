/**
 * A scenario's matrix, expanded as GitHub Actions expands `strategy.matrix`: the product of the
 * axes in the order they are written, then `exclude` (a combination matching every key of an
 * entry goes), then `include` (an entry is added to every combination whose original values it
 * does not overwrite; one that fits none becomes a combination of its own; values added by an
 * earlier entry may be overwritten). Then `--shard i/n` takes every n-th cell.
 */

/** One cell: each axis (and each key an include added) with its value, as strings. */
export type Cell = Record<string, string>;

export interface MatrixSpec {
  /** The axes, in order: an env variable, `arch` or `driver`, and its values. */
  axes: [string, string[]][];
  include: Cell[];
  exclude: Cell[];
}

export function expandMatrix({ axes, include, exclude }: MatrixSpec): Cell[] {
  let cells: Cell[] = axes.length ? [{}] : [];
  for (const [name, values] of axes) cells = cells.flatMap((cell) => values.map((value) => ({ ...cell, [name]: value })));
  cells = cells.filter((cell) => !exclude.some((entry) => Object.entries(entry).every(([key, value]) => cell[key] === value)));

  const original = new Set(axes.map(([name]) => name));
  for (const entry of include) {
    // An entry fits a cell whose original values it keeps (values an earlier entry added may change).
    const fits = cells.filter((cell) => Object.entries(entry).every(([key, value]) => !original.has(key) || cell[key] === value));
    if (fits.length) for (const cell of fits) Object.assign(cell, entry);
    else cells.push({ ...entry });
  }
  return cells;
}

/** `--shard i/n`: i from 1 to n; bad input otherwise (the caller's to say). */
export function parseShard(text: string): { index: number; count: number } | undefined {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  if (!match) return undefined;
  const index = Number(match[1]);
  const count = Number(match[2]);
  return count >= 1 && index >= 1 && index <= count ? { index, count } : undefined;
}

/** The cells of one shard: every count-th cell from the index-th, so the shards split the matrix deterministically and evenly. */
export const shardCells = <T>(cells: T[], shard: { index: number; count: number }): T[] =>
  cells.filter((_, position) => position % shard.count === shard.index - 1);

/** A cell as people read it: `K8S_VERSION=v1.2.4 arch=arm64`. */
export const cellLabel = (cell: Cell): string =>
  Object.entries(cell)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');

/** A cell as a folder name part: `K8S_VERSION-v1.2.4_arch-arm64` (letters, digits, '.', '-', '_' only). */
export const cellSlug = (cell: Cell): string =>
  Object.entries(cell)
    .map(([key, value]) => `${key}-${value}`.replace(/[^A-Za-z0-9._-]+/g, '-'))
    .join('_');

/** What a cell changes in a run: `arch` and `driver` are overrides of their own, every other key an env value (`--set`). */
export function cellOverrides(cell: Cell): { arch?: string; driver?: string; set: Record<string, string> } {
  const { arch, driver, ...set } = cell;
  return { ...(arch !== undefined ? { arch } : {}), ...(driver !== undefined ? { driver } : {}), set };
}

/**
 * The matrix a scenario declares (values as strings), its axes changed or added by `--axis
 * NAME=v1,v2` (given in order: a changed axis keeps its place, an added one comes last).
 */
export function matrixSpec(
  declared: { include?: Record<string, unknown>[]; exclude?: Record<string, unknown>[]; [axis: string]: unknown } | undefined,
  axisOverrides: { name: string; values: string[] }[] = [],
): MatrixSpec {
  const { include = [], exclude = [], ...axes } = declared ?? {};
  const strings = (entry: Record<string, unknown>): Cell => Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, String(v)]));
  const merged = new Map(Object.entries(axes).map(([name, values]) => [name, (values as unknown[]).map(String)]));
  for (const { name, values } of axisOverrides) merged.set(name, values);
  return { axes: [...merged], include: include.map(strings), exclude: exclude.map(strings) };
}
