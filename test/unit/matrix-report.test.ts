import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { CheckResult } from '../../lab/checks/runner.js';
import { gridChecks, markOf, matrixHtml, matrixJunitXml, mergeMatrices, writeMatrixReport, type GridRow } from '../../lab/matrix/report.js';
import type { CellResult, MatrixSummary } from '../../lab/matrix/run.js';
import type { RunSummary } from '../../lab/report/summary.js';

const check = (name: string, status: CheckResult['status'], message?: string): CheckResult => ({
  check: name.split(' > ')[0] as string,
  name,
  status,
  seconds: 1,
  ...(message ? { message } : {}),
});

const run = (checks: CheckResult[], over: Partial<RunSummary> = {}): RunSummary =>
  ({
    runId: 'r',
    scenario: { name: 'two-node-flocker', file: '', axes: {} },
    nodes: [],
    startedAt: '2026-12-06T00:00:00Z',
    finishedAt: '',
    seconds: 10,
    verdict: checks.some((c) => c.status === 'failed') ? 'failed' : 'passed',
    phases: [],
    steps: [],
    checks,
    ...over,
  }) as RunSummary;

const cell = (label: string, met: boolean): CellResult => ({
  cell: {},
  index: 0,
  label,
  folder: label.replace(/=/g, '-').replace(/ /g, '_'),
  verdict: met ? 'passed' : 'failed',
  met,
  seconds: 12.5,
  checks: { passed: 0, total: 0 },
});

const BUG = {
  url: 'https://github.com/ClusterHQ/flocker/issues/2841',
  title: 'KeyError',
  verdict: 'reproduced' as const,
  reason: 'listed: KeyError',
  matched: [{ check: 'flocker-attach', name: 'flocker-attach > every node is listed', message: 'KeyError', signature: 0 }],
};

const rows: GridRow[] = [
  { result: cell('K8S_VERSION=v1.3.0 arch=amd64', true), run: run([check('nodes-up > ssh', 'passed'), check('dns > answers', 'passed')]) },
  {
    result: cell('K8S_VERSION=v1.2.4 arch=amd64', false),
    run: run([check('nodes-up > ssh', 'passed'), check('dns > answers', 'failed', 'no answer from 10.0.0.10')]),
  },
  {
    result: cell('FLOCKER_VERSION=1.13.0', true),
    run: run(
      [
        check('nodes-up > ssh', 'passed'),
        check('flocker-attach > every node is listed', 'failed', 'KeyError'),
        check('flocker-attach > a pod runs', 'failed', 'Pending'),
      ],
      { bug: BUG },
    ),
  },
  { result: cell('arch=arm64', false) },
];
const summary: MatrixSummary = {
  scenario: 'scenarios/two-node-flocker',
  axes: [['K8S_VERSION', ['v1.2.4', 'v1.3.0']]],
  cells: rows.map((r) => r.result),
  seconds: 99,
};

describe('the matrix report', () => {
  test("a check's mark in a cell: passed, failed, the bug's expected failure, or not run", () => {
    expect(markOf(rows[0]?.run, 'dns')).toBe('passed');
    expect(markOf(rows[1]?.run, 'dns')).toBe('failed');
    expect(markOf(rows[2]?.run, 'flocker-attach')).toBe('expected failure');
    expect(markOf(rows[2]?.run, 'dns')).toBe('not run');
    expect(markOf(undefined, 'dns')).toBe('not run');
    expect(markOf(run([check('dns > answers', 'skipped')]), 'dns')).toBe('skipped');
    expect(gridChecks(rows)).toEqual(['nodes-up', 'dns', 'flocker-attach']);
  });

  test('index.html: a row per cell linking its report, a column per check, the bug verdict; no script', () => {
    const html = matrixHtml(summary, rows);
    expect(html).toContain('2 of 4 cell(s) met their expectation, in 99 s. Axes: K8S_VERSION: v1.2.4, v1.3.0.');
    expect(html).toContain('<th>nodes-up</th><th>dns</th><th>flocker-attach</th><th>bug</th>');
    expect(html).toContain('<a href="K8S_VERSION-v1.2.4_arch-amd64/report.html">K8S_VERSION=v1.2.4 arch=amd64</a>');
    expect(html).toContain('<td class="failed" title="dns &gt; answers: no answer from 10.0.0.10">failed</td>');
    expect(html).toContain('<td class="expected-failure" title="flocker-attach &gt; every node is listed: KeyError">expected failure</td>');
    expect(html).toContain('<td class="reproduced" title="listed: KeyError">reproduced</td>');
    // The cell that wrote no summary: not met, nothing run.
    expect(html).toMatch(
      /<a href="arch-arm64\/report.html">arch=arm64<\/a><\/th><td class="not-met"[^>]*>not met<\/td><td class="not-run"/,
    );
    expect(html).not.toMatch(/<script|https?:\/\/(?!github\.com)/);
  });

  test('index.html: a check that passed with skipped steps says how many and which; each cell says what it took from the snapshot cache', () => {
    const layer = { layer: '8496c00e8855aa', madeAt: '2026-12-07T23:29:03Z', madeBy: 'r0' };
    const cached = run(
      [check('flocker-attach > a pod runs', 'passed'), check('flocker-attach > the dataset moves', 'skipped', 'loopback cannot move')],
      {
        snapshot: { mode: 'on', layers: 9, restored: { ...layer, depth: 9, name: 'step flocker-agent', seconds: 30 }, saved: [] },
      },
    );
    const cold = run([check('flocker-attach > a pod runs', 'passed')], {
      snapshot: {
        mode: 'on',
        layers: 9,
        restored: { ...layer, depth: 1, name: 'machines', seconds: 4 },
        saved: Array(8).fill({ layer: 'x', depth: 2, name: 'payload', seconds: 9, bytes: 1 }),
      },
    });
    const off = run([check('flocker-attach > a pod runs', 'failed', 'Pending')], { snapshot: { mode: 'off', layers: 9, saved: [] } });
    const html = matrixHtml(summary, [
      { result: cell('K8S_VERSION=v1.3.0', true), run: cached },
      { result: cell('K8S_VERSION=v1.2.4', true), run: cold },
      { result: cell('arch=arm64', false), run: off },
    ]);
    expect(html).toContain('<td class="passed" title="flocker-attach &gt; the dataset moves: loopback cannot move">passed, 1 skipped</td>');
    expect(html).toContain('<td class="passed" title="">passed</td>');
    expect(html).toContain('<td class="failed" title="flocker-attach &gt; a pod runs: Pending">failed</td>');
    expect(html).toContain('<th>bug</th><th>snapshot layers</th><th>time</th>');
    expect(html).toContain(
      '<td class="layers" title="restored 9 of 9 layers (snapshot 8496c00e8855, step flocker-agent, made 2026-12-07T23:29:03Z); saved 0 layer(s)">9 of 9 restored</td>',
    );
    expect(html).toContain('>1 of 9 restored, 8 saved</td>');
    expect(html).toContain('<td class="layers" title="off">off</td>');
  });

  test("junit.xml: one suite per cell named after its values, its run's cases inside", () => {
    const xml = matrixJunitXml(summary, rows);
    expect(xml).toContain('<testsuites name="matrix scenarios/two-node-flocker" tests="9" failures="2" skipped="3"');
    expect(xml).toContain(
      '<testsuite name="scenarios/two-node-flocker [K8S_VERSION=v1.2.4 arch=amd64]" tests="2" failures="1" skipped="0"',
    );
    expect(xml).toContain('classname="two-node-flocker.dns[K8S_VERSION=v1.2.4 arch=amd64]" name="dns &gt; answers"');
    expect(xml).toContain('<testsuite name="scenarios/two-node-flocker [arch=arm64]" tests="1" failures="1"');
    expect(xml).toContain('<failure message="the cell wrote no summary">');
  });
});

describe('merging shards', () => {
  const root = mkdtempSync(join(tmpdir(), 'lab-matrix-merge-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const cells = rows.slice(0, 3).map((row, index) => ({ ...row, result: { ...row.result, index } }));

  /** A shard's folder as a runner leaves it: each of its cells' run folders, then the matrix report. */
  function shard(name: string, of: typeof cells, over: Partial<MatrixSummary> = {}): string {
    const dir = join(root, name);
    for (const { result, run: summary } of of) {
      mkdirSync(join(dir, result.folder), { recursive: true });
      writeFileSync(join(dir, result.folder, 'summary.json'), JSON.stringify(summary));
    }
    writeMatrixReport(dir, { ...summary, cells: of.map((c) => c.result), ...over });
    return dir;
  }

  test('the whole matrix again: its cells in their places, each folder copied in, one grid and one JUnit', () => {
    const whole = shard('whole', cells);
    const one = shard('shard-1', [cells[0], cells[2]] as typeof cells, { shard: '1/2', seconds: 50 });
    const two = shard('shard-2', [cells[1]] as typeof cells, { shard: '2/2', seconds: 70 });
    const into = join(root, 'merged');
    const { summary: merged, problems } = mergeMatrices([two, one], into);
    expect(problems).toEqual([]);
    expect(merged.cells.map((c) => c.label)).toEqual(cells.map((c) => c.result.label));
    expect(merged.seconds).toBe(70);
    const html = (dir: string) => readFileSync(join(dir, 'index.html'), 'utf8').replace(/in \d+ s\./, '');
    expect(html(into)).toBe(html(whole));
    expect(readFileSync(join(into, 'junit.xml'), 'utf8')).toBe(readFileSync(join(whole, 'junit.xml'), 'utf8'));
    expect(JSON.parse(readFileSync(join(into, cells[1]?.result.folder ?? '', 'summary.json'), 'utf8'))).toEqual(cells[1]?.run);
  });

  test('folders of another scenario, or the same cell twice, are refused', () => {
    const one = shard('a', [cells[0]] as typeof cells);
    const other = shard('b', [cells[1]] as typeof cells, { scenario: 'scenarios/smoke' });
    expect(mergeMatrices([one, other], join(root, 'no')).problems).toEqual([
      `${other} is a matrix of scenarios/smoke over [["K8S_VERSION",["v1.2.4","v1.3.0"]]], not of scenarios/two-node-flocker over [["K8S_VERSION",["v1.2.4","v1.3.0"]]]`,
    ]);
    expect(mergeMatrices([one, one], join(root, 'no')).problems).toEqual([
      `cell ${cells[0]?.result.label} is in more than one of the folders`,
    ]);
  });
});
