import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { MatrixSummary } from '../../lab/matrix/run.js';
import type { RunSummary } from '../../lab/report/summary.js';
import { fullOnly, leftovers, root, runLab } from './helpers.js';

/**
 * `lab matrix`: the cells listed for a CI system without running anything, a matrix whose second
 * cell's provisioner fails (two cells at once), and nightly (LAB_E2E_FULL=1: CI's 90 minutes are
 * spent) scenarios/smoke over both architectures, whole and as two shards merged.
 */
const work = mkdtempSync(join(tmpdir(), 'lab-matrix-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function scenario(name: string, lines: string[]): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'scenario.yaml'), [`extends: ${join(root, 'scenarios', 'smoke')}`, `name: ${name}`, ...lines, ''].join('\n'));
  return dir;
}

const matrixOf = (output: string): { dir: string; summary: MatrixSummary } => {
  const file = /summary: (\S+matrix-[^/\s]+\/summary\.json)/.exec(output)?.[1] ?? '';
  return { dir: file.replace(/\/summary\.json$/, ''), summary: JSON.parse(readFileSync(file, 'utf8')) as MatrixSummary };
};

describe('lab matrix', () => {
  test('--list and --json print the cells (GitHub Actions include/exclude, --axis, --shard) and start nothing', async () => {
    const dir = scenario('listed', [
      'matrix:',
      '  K8S_VERSION: [v1.2.4, v1.3.0]',
      '  arch: [amd64, arm64]',
      '  exclude:',
      '    - K8S_VERSION: v1.2.4',
      '      arch: arm64',
      '  include:',
      '    - K8S_VERSION: v1.2.4',
      '      FLANNEL_BACKEND: vxlan',
    ]);
    const listed = await runLab(['matrix', dir, '--list']);
    expect(listed.code, listed.output).toBe(0);
    expect(listed.output.trim().split('\n')).toEqual([
      'K8S_VERSION=v1.2.4 arch=amd64 FLANNEL_BACKEND=vxlan',
      'K8S_VERSION=v1.3.0 arch=amd64',
      'K8S_VERSION=v1.3.0 arch=arm64',
    ]);
    const json = await runLab(['matrix', dir, '--json', '--shard', '2/2']);
    // Each cell with the one-cell shard a CI runner runs it as.
    expect(JSON.parse(json.output)).toEqual({
      include: [{ cell: 'K8S_VERSION=v1.3.0 arch=amd64', shard: '2/3', K8S_VERSION: 'v1.3.0', arch: 'amd64' }],
    });
    const axis = await runLab(['matrix', dir, '--list', '--axis', 'K8S_VERSION=v1.3.0']);
    // The include entry fits no cell once v1.2.4 is gone: as in GitHub Actions, it is a cell of its own.
    expect(axis.output.trim().split('\n')).toEqual([
      'K8S_VERSION=v1.3.0 arch=amd64',
      'K8S_VERSION=v1.3.0 arch=arm64',
      'K8S_VERSION=v1.2.4 FLANNEL_BACKEND=vxlan',
    ]);
  });

  test('bad axes and shards are bad input, at their line, before anything runs', async () => {
    const dir = scenario('bad-axes', ['matrix:', '  arch: [amd64, sparc]']);
    const bad = await runLab(['matrix', dir]);
    expect(bad.code, bad.output).toBe(2);
    expect(bad.output).toMatch(/bad-axes\/scenario\.yaml:4:17: matrix\.arch\[1\]: arch must be one of amd64, arm64, not "sparc"/);
    for (const args of [
      ['--shard', '3/2'],
      ['--axis', 'arch'],
    ]) {
      const result = await runLab(['matrix', 'scenarios/smoke', '--axis', 'arch=amd64', ...args]);
      expect(result.code, result.output).toBe(2);
    }
    const none = await runLab(['matrix', 'scenarios/smoke']);
    expect(none.code).toBe(2);
    expect(none.output).toContain('scenarios/smoke has no matrix');
  });

  fullOnly('scenarios/smoke over arch=amd64,arm64: one run per cell, its report folder named after it, both met', async () => {
    const result = await runLab(['matrix', 'scenarios/smoke', '--axis', 'arch=amd64,arm64']);
    expect(result.code, result.output).toBe(0);
    const { dir, summary } = matrixOf(result.output);
    expect(summary.cells.map((c) => [c.label, c.folder, c.verdict, c.met])).toEqual([
      ['arch=amd64', 'arch-amd64', 'passed', true],
      ['arch=arm64', 'arch-arm64', 'passed', true],
    ]);
    // The matrix's own report: the grid links each cell's report, and JUnit has a suite per cell.
    const index = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(index).toContain('2 of 2 cell(s) met their expectation');
    expect(index).toContain('<a href="arch-arm64/report.html">arch=arm64</a>');
    const junit = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testsuite name="scenarios\/smoke \[arch=amd64\]" tests="\d+" failures="0"/);
    expect(junit).toMatch(/<testsuite name="scenarios\/smoke \[arch=arm64\]" tests="\d+" failures="0"/);
    for (const arch of ['amd64', 'arm64']) {
      const run = JSON.parse(readFileSync(join(dir, `arch-${arch}`, 'summary.json'), 'utf8')) as RunSummary & { runId: string };
      expect(run.checks.find((c) => c.name.includes('architecture is'))?.name).toContain(`architecture is ${arch}`);
      // The cell's values are the run's axes: its summary and its Allure environment name them.
      expect(run.scenario.axes).toMatchObject({ arch, driver: 'qemu' });
      expect(readFileSync(join(dir, `arch-${arch}`, 'allure-results', 'environment.properties'), 'utf8')).toContain(`arch=${arch}\n`);
      expect(existsSync(join(dir, `arch-${arch}`, 'report.html'))).toBe(true);
      expect(leftovers(run.runId)).toEqual([]);
    }
  });

  fullOnly('two shards, run apart and merged, give the whole matrix report again', async () => {
    const whole = await runLab(['matrix', 'scenarios/smoke', '--axis', 'arch=amd64,arm64', '--list']);
    const shards = [];
    for (const shard of ['1/2', '2/2']) {
      const result = await runLab(['matrix', 'scenarios/smoke', '--axis', 'arch=amd64,arm64', '--shard', shard]);
      expect(result.code, result.output).toBe(0);
      shards.push(matrixOf(result.output));
    }
    expect(shards.map(({ summary }) => summary.cells.map((c) => c.label))).toEqual([['arch=amd64'], ['arch=arm64']]);
    const merged = await runLab(['matrix', 'merge', ...shards.map(({ dir }) => dir)]);
    expect(merged.code, merged.output).toBe(0);
    const { dir, summary } = matrixOf(merged.output);
    expect(summary.cells.map((c) => c.label)).toEqual(whole.output.trim().split('\n'));
    const index = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(index).toContain('2 of 2 cell(s) met their expectation');
    for (const arch of ['amd64', 'arm64']) {
      expect(index).toContain(`<a href="arch-${arch}/report.html">arch=${arch}</a>`);
      expect(existsSync(join(dir, `arch-${arch}`, 'report.html'))).toBe(true);
    }
  });

  test('a cell that fails makes the matrix fail (exit 1), the others still run and pass; --parallel 2 runs two at once', async () => {
    const dir = scenario('one-fails', [
      'env:',
      '  TOOL_VERSION: 1',
      'scripts: [./scripts]',
      'provision:',
      '  - name: hello',
      '    script: install.sh',
    ]);
    writeFileSync(
      join(dir, 'scripts', 'install.sh'),
      '#!/bin/sh\n[ "$TOOL_VERSION" != 2 ] || { echo "tool 2: --flag is required" >&2; exit 3; }\necho "tool $TOOL_VERSION installed"\n',
      { mode: 0o755 },
    );
    // Two side by side (two 2-vCPU VMs on two cores fit): each cell's lines say whose they are.
    const result = await runLab(['matrix', dir, '--axis', 'TOOL_VERSION=1,2,3', '--parallel', '2']);
    expect(result.code, result.output).toBe(1);
    const { summary } = matrixOf(result.output);
    expect(summary.cells.map((c) => [c.label, c.verdict, c.met])).toEqual([
      ['TOOL_VERSION=1', 'passed', true],
      ['TOOL_VERSION=2', 'failed', false],
      ['TOOL_VERSION=3', 'passed', true],
    ]);
    expect(result.output).toMatch(/✗ TOOL_VERSION=2: FAILED/);
    expect(result.output).toMatch(/^\[TOOL_VERSION=2\] run one-fails-/m);
    const second = JSON.parse(readFileSync(join(matrixOf(result.output).dir, 'TOOL_VERSION-2', 'summary.json'), 'utf8')) as RunSummary;
    expect(second.scenario.axes).toMatchObject({ TOOL_VERSION: '2' });
  });
});
