import { describe, expect, test } from 'vitest';
import { useKeptRun } from './helpers.js';

/**
 * scenarios/two-node as a user runs it: the multinode install without Flocker. Its layers are the
 * first six of two-node-flocker, whose run (two-node-flocker.test.ts) passes these same checks on
 * them in every CI run; this one runs nightly (LAB_E2E_FULL=1), for the scenario file itself.
 */
describe.runIf(process.env.LAB_E2E_FULL === '1')('lab run scenarios/two-node', () => {
  const kept = useKeptRun(['scenarios/two-node']);

  test('every check of the multinode install passes', () => {
    const { summary } = kept;
    expect(summary.verdict).toBe('passed');
    expect([...new Set(summary.checks.map((c) => c.check))].sort()).toEqual(['dns', 'flannel-ping', 'node-registration', 'nodes-up']);
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
    expect(summary.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['offline-bootstrap', 'master', 'worker']));
  });
});
