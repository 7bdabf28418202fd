import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Expectation } from '../bugs/verdict.js';
import type { KeepPolicy } from '../run/orchestrator.js';
import type { RunSummary } from '../report/summary.js';
import { loadScenario, type Overrides } from '../scenario/loader.js';
import type { ScenarioSpec } from '../scenario/schema.js';
import { Logger } from '../util/log.js';
import { folderStamp, reportsDir } from '../util/paths.js';
import { cellLabel, cellOverrides, cellSlug, type Cell, type MatrixSpec } from './expand.js';
import { writeMatrixReport } from './report.js';
import { fitsHost, schedule, type CellNeeds } from './schedule.js';
import { hostCapacity, QEMU_OVERHEAD_MIB, VCPUS_PER_CORE_WARN } from '../run/capacity.js';

/**
 * `lab matrix`: the scenario once per cell, each a normal run whose report folder is named after
 * the cell's values, inside the matrix's folder. Cells share images, payload bundles and snapshot
 * layers through the caches (a cell restores whatever layers an earlier one made that it has in
 * common). Exit 0 only when every cell met its expectation (passed, or its bug reproduced).
 */

export interface CellResult {
  cell: Cell;
  /** Its place in the whole matrix (a shard's cells keep theirs, so shards merge in order). */
  index: number;
  label: string;
  /** The cell's report folder, relative to the matrix's. */
  folder: string;
  verdict: RunSummary['verdict'];
  /** The bug scenario's verdict, when the cell judged one. */
  bug?: string;
  /** Whether the cell met its expectation (its run's exit code was 0). */
  met: boolean;
  seconds: number;
  checks: { passed: number; total: number };
}

export interface MatrixSummary {
  scenario: string;
  axes: MatrixSpec['axes'];
  shard?: string;
  cells: CellResult[];
  seconds: number;
}

export interface MatrixOptions {
  scenario: string;
  /** --arch, --driver and --set given for every cell (a cell's own values win). */
  overrides: Overrides;
  spec: MatrixSpec;
  /** The cells to run, each with its place in the whole matrix. */
  cells: { cell: Cell; index: number }[];
  shard?: string;
  keep: KeepPolicy;
  /** How many cells may run side by side (default 1), as far as the host's memory and cores allow. */
  parallel?: number;
  expect: Expectation;
  log: Logger;
  signal: AbortSignal;
  verbose: boolean;
}

/** Every cell's overrides: the caller's, then the cell's own values over them. */
export const cellRunOverrides = (base: Overrides, cell: Cell): Overrides => {
  const own = cellOverrides(cell);
  return { ...base, ...own, set: { ...base.set, ...own.set } };
};

/** Loads the scenario as each cell would run it: a cell the scenario refuses is bad input before any run. */
export function validateCells(scenario: string, base: Overrides, cells: Cell[]): ScenarioSpec[] {
  return cells.map((cell) => loadScenario(scenario, cellRunOverrides(base, cell)).spec);
}

export async function runMatrix(options: MatrixOptions): Promise<{ summary: MatrixSummary; dir: string; exitCode: 0 | 1 | 130 }> {
  const specs = validateCells(
    options.scenario,
    options.overrides,
    options.cells.map((c) => c.cell),
  );
  // What each cell asks of the host, from its scenario as the cell runs it (loaded once, above).
  const needs = new Map<number, CellNeeds>(
    options.cells.map(({ index }, position) => {
      const nodes = specs[position]?.nodes ?? [];
      return [
        index,
        {
          memoryMiB: nodes.reduce((sum, node) => sum + node.memory + QEMU_OVERHEAD_MIB, 0),
          vcpus: nodes.reduce((sum, node) => sum + node.cpus, 0),
        },
      ];
    }),
  );
  const { runScenario } = await import('../run/orchestrator.js');
  const name = loadScenario(options.scenario, options.overrides).spec.name;
  const dir = join(reportsDir(), `matrix-${name}-${folderStamp()}`);
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const summary: MatrixSummary = {
    scenario: options.scenario,
    axes: options.spec.axes,
    ...(options.shard ? { shard: options.shard } : {}),
    cells: [],
    seconds: 0,
  };
  const write = () => writeMatrixReport(dir, summary);

  const parallel = options.parallel ?? 1;
  const fits = fitsHost(hostCapacity(), VCPUS_PER_CORE_WARN);
  let begun = 0;
  await schedule(
    options.cells,
    parallel,
    (item, running) =>
      fits(
        needs.get(item.index) as CellNeeds,
        running.map((r) => needs.get(r.index) as CellNeeds),
      ),
    async ({ cell, index }) => {
      if (options.signal.aborted) return;
      const label = cellLabel(cell);
      begun += 1;
      options.log.info(`matrix: cell ${begun} of ${options.cells.length}: ${label}`);
      const folder = cellSlug(cell) || 'default';
      const outcome = await runScenario({
        scenario: options.scenario,
        overrides: cellRunOverrides(options.overrides, cell),
        keep: options.keep,
        snapshots: 'on',
        expect: options.expect,
        reportDir: join(dir, folder),
        // A logger of its own per cell (each run tees its log into its own folder); side by side, its lines say whose they are.
        log: new Logger(process.stderr, parallel > 1 ? `[${label}] ` : '', options.verbose),
        signal: options.signal,
      });
      const { summary: run } = outcome;
      summary.cells.push({
        cell,
        index,
        label,
        folder,
        verdict: run.verdict,
        ...(run.bug ? { bug: run.bug.verdict } : {}),
        met: outcome.exitCode === 0,
        seconds: run.seconds,
        checks: { passed: run.checks.filter((c) => c.status === 'passed').length, total: run.checks.length },
      });
      summary.cells.sort((a, b) => a.index - b.index);
      summary.seconds = Math.round((performance.now() - started) / 100) / 10;
      write();
    },
  );
  summary.seconds = Math.round((performance.now() - started) / 100) / 10;
  write();

  options.log.info(`matrix ${name}: ${summary.cells.length} of ${options.cells.length} cell(s) run in ${summary.seconds} s`);
  for (const result of summary.cells)
    options.log.info(
      `  ${result.met ? '✓' : '✗'} ${result.label}: ${result.bug ? `bug ${result.bug}` : result.verdict.toUpperCase()} (${result.checks.passed}/${result.checks.total} checks, ${result.seconds} s)  ${join(dir, result.folder, 'report.html')}`,
    );
  options.log.info(`report: ${join(dir, 'index.html')}  junit: ${join(dir, 'junit.xml')}  summary: ${join(dir, 'summary.json')}`);
  const interrupted = options.signal.aborted;
  const allMet = summary.cells.length === options.cells.length && summary.cells.every((c) => c.met);
  return { summary, dir, exitCode: interrupted ? 130 : allMet ? 0 : 1 };
}
