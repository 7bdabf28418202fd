import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { partOfBug } from '../bugs/verdict.js';
import { snapshotLine, type RunSummary } from '../report/summary.js';
import { junitCases, junitDocument } from '../report/junit.js';
import type { CellResult, MatrixSummary } from './run.js';

/**
 * The matrix's own report: `index.html`, a grid of cells by checks that links each cell to its
 * run's report (readable from file://, no script, no network), and `junit.xml` with one suite per
 * cell named after its values.
 */

/** What a check did in one cell, as the grid shows it. */
export type GridMark = 'passed' | 'failed' | 'expected failure' | 'skipped' | 'not run';

/** A check's mark in a run: failed if any of its steps failed (unless each failure is the bug's), expected failure if they all are. */
export function markOf(run: RunSummary | undefined, check: string): GridMark {
  const results = run?.checks.filter((c) => c.check === check) ?? [];
  if (!results.length) return 'not run';
  const failed = results.filter((c) => c.status === 'failed');
  if (failed.length) return failed.every((c) => partOfBug(run?.bug, c, run?.checks ?? [])) ? 'expected failure' : 'failed';
  return results.every((c) => c.status === 'skipped') ? 'skipped' : 'passed';
}

/** The grid's rows: each cell with its run's summary (absent when the cell did not get to write one). */
export interface GridRow {
  result: CellResult;
  run?: RunSummary;
}

const escapeHtml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The checks of every cell, in the order the first cell that ran each one listed it. */
export const gridChecks = (rows: GridRow[]): string[] => [...new Set(rows.flatMap((row) => row.run?.checks.map((c) => c.check) ?? []))];

/** What a cell took from the snapshot cache, short ("9 of 9 restored", "1 of 9 restored, 8 saved"): a cold cell and a cached one differ here. */
function layersText(run: RunSummary | undefined): string {
  const snapshot = run?.snapshot;
  if (!snapshot) return '';
  if (snapshot.mode === 'off') return 'off';
  const saved = snapshot.saved.length ? `, ${snapshot.saved.length} saved` : '';
  return `${snapshot.restored?.depth ?? 0} of ${snapshot.layers} restored${saved}`;
}

export function matrixHtml(summary: MatrixSummary, rows: GridRow[]): string {
  const checks = gridChecks(rows);
  const met = rows.filter((row) => row.result.met).length;
  const mark = (text: GridMark | string, title = '', kind = text) =>
    `<td class="${escapeHtml(kind.replace(/ /g, '-'))}" title="${escapeHtml(title)}">${escapeHtml(text)}</td>`;
  const body = rows.map(({ result, run }) => {
    const provision = run?.steps.find((s) => s.status === 'failed');
    const cells = [
      `<th scope="row"><a href="${escapeHtml(result.folder)}/report.html">${escapeHtml(result.label || 'the scenario as written')}</a></th>`,
      mark(result.met ? 'met' : 'not met', result.met ? 'the cell met its expectation' : 'the cell did not meet its expectation'),
      mark(
        provision ? 'failed' : run ? 'passed' : 'not run',
        provision ? `step ${provision.step} on ${provision.node}: ${provision.error ?? ''}` : '',
      ),
      ...checks.map((check) => {
        const failed = run?.checks.find((c) => c.check === check && c.status === 'failed');
        const kind = markOf(run, check);
        // A check that passed with steps skipped says so: "passed" alone would hide them.
        const skipped = kind === 'passed' ? (run?.checks.filter((c) => c.check === check && c.status === 'skipped') ?? []) : [];
        if (skipped.length)
          return mark(`passed, ${skipped.length} skipped`, skipped.map((c) => `${c.name}: ${c.message ?? ''}`).join('\n'), kind);
        return mark(kind, failed ? `${failed.name}: ${failed.message ?? ''}` : '');
      }),
      run?.bug ? mark(run.bug.verdict, run.bug.reason) : '<td></td>',
      `<td class="layers" title="${escapeHtml(run ? (snapshotLine(run) ?? '') : '')}">${escapeHtml(layersText(run))}</td>`,
      `<td class="time">${result.seconds} s</td>`,
      `<td><a href="${escapeHtml(result.folder)}/lab-${escapeHtml(result.folder)}.tar.gz">bundle</a></td>`,
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
  const axes = summary.axes.map(([name, values]) => `${escapeHtml(name)}: ${values.map(escapeHtml).join(', ')}`).join('; ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>matrix ${escapeHtml(summary.scenario)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
thead th { background: #f2f2f2; }
.passed, .met { background: #d9f2d9; } .failed, .not-met { background: #f7d4d4; }
.expected-failure, .reproduced { background: #fbe9c6; } .skipped, .not-run { background: #eee; color: #666; }
.not-reproduced, .failed-differently { background: #f7d4d4; }
.time, .layers { white-space: nowrap; }
</style></head><body>
<h1>matrix of ${escapeHtml(summary.scenario)}</h1>
<p>${met} of ${rows.length} cell(s) met their expectation${summary.shard ? `, shard ${escapeHtml(summary.shard)}` : ''}, in ${summary.seconds} s. Axes: ${axes || 'none'}.</p>
<table><thead><tr><th>cell</th><th>expectation</th><th>provision</th>${checks.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}<th>bug</th><th>snapshot layers</th><th>time</th><th></th></tr></thead>
<tbody>
${body.join('\n')}
</tbody></table>
</body></html>
`;
}

/** One suite per cell, named after the scenario and the cell's values; its cases are its run's. */
export function matrixJunitXml(summary: MatrixSummary, rows: GridRow[]): string {
  return junitDocument(
    `matrix ${summary.scenario}`,
    rows.map(({ result, run }) => ({
      name: `${summary.scenario} [${result.label}]`,
      timestamp: run?.startedAt ?? '',
      cases: run
        ? junitCases(run).map((c) => ({ ...c, classname: `${c.classname}[${result.label}]` }))
        : [
            {
              classname: `${summary.scenario}[${result.label}]`,
              name: 'run',
              seconds: result.seconds,
              status: 'failed' as const,
              message: 'the cell wrote no summary',
            },
          ],
    })),
  );
}

/** Writes summary.json, index.html and junit.xml into the matrix's folder, from its cells' own summaries. */
export function writeMatrixReport(dir: string, summary: MatrixSummary): void {
  const rows: GridRow[] = summary.cells.map((result) => {
    const file = join(dir, result.folder, 'summary.json');
    return { result, ...(existsSync(file) ? { run: JSON.parse(readFileSync(file, 'utf8')) as RunSummary } : {}) };
  });
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(join(dir, 'index.html'), matrixHtml(summary, rows));
  writeFileSync(join(dir, 'junit.xml'), matrixJunitXml(summary, rows));
}

/**
 * `lab matrix merge <dir>...`: one matrix report from the shards' folders (each runner's
 * reports/matrix-...): the cells in their places in the whole matrix, each cell's folder copied in.
 * Shards of different scenarios or axes are bad input (the caller's InputError).
 */
export function mergeMatrices(dirs: string[], into: string): { summary: MatrixSummary; problems: string[] } {
  const shards = dirs.map((dir) => ({ dir, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as MatrixSummary }));
  const first = shards[0]?.summary;
  const problems = shards
    .filter(({ summary }) => summary.scenario !== first?.scenario || JSON.stringify(summary.axes) !== JSON.stringify(first?.axes))
    .map(
      ({ dir, summary }) =>
        `${dir} is a matrix of ${summary.scenario} over ${JSON.stringify(summary.axes)}, not of ${first?.scenario} over ${JSON.stringify(first?.axes)}`,
    );
  const cells = shards.flatMap(({ dir, summary }) => summary.cells.map((cell) => ({ dir, cell })));
  const twice = cells.find((c, i) => cells.findIndex((d) => d.cell.index === c.cell.index) !== i);
  if (twice) problems.push(`cell ${twice.cell.label} is in more than one of the folders`);
  const summary: MatrixSummary = {
    scenario: first?.scenario ?? '',
    axes: first?.axes ?? [],
    cells: cells.sort((a, b) => a.cell.index - b.cell.index).map(({ cell }) => cell),
    // The shards ran side by side on their runners: the matrix took as long as the longest.
    seconds: Math.max(0, ...shards.map(({ summary }) => summary.seconds)),
  };
  if (problems.length) return { summary, problems };
  mkdirSync(into, { recursive: true });
  for (const { dir, cell } of cells)
    if (existsSync(join(dir, cell.folder))) cpSync(join(dir, cell.folder), join(into, cell.folder), { recursive: true });
  writeMatrixReport(into, summary);
  return { summary, problems };
}
