import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

/**
 * scenarios/two-node as a user runs it: the multinode install without Flocker. Its layers are the
 * first ones of two-node-flocker, so whichever of the two runs first makes them for the other.
 */
describe('lab run scenarios/two-node', () => {
  test('every check of the multinode install passes, and nothing is left', async () => {
    const result = await runLab(['run', 'scenarios/two-node']);
    expect(result.code, result.output).toBe(0);
    const { runId, summary } = onlyRun(result);
    expect(summary.verdict).toBe('passed');
    expect([...new Set(summary.checks.map((c) => c.check))].sort()).toEqual(['dns', 'flannel-ping', 'node-registration', 'nodes-up']);
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
    expect(summary.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['offline-bootstrap', 'master', 'worker']));
    expect(leftovers(runId)).toEqual([]);
  });
});
