import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe("a user's own scripts", () => {
  test("found in the scenario's scripts folder with the file they source, each node's own variable, a prompt answered from stdin", async () => {
    // --snapshots=off: every step runs (a cached layer would hold them), and none is saved.
    const result = await runLab(['run', '--snapshots=off', 'test/scenarios/own-scripts']);
    expect(result.code, result.output).toBe(0);
    const { runId, dir, summary } = onlyRun(result);
    expect(summary.steps.map((s) => `${s.step} on ${s.node}: ${s.status}`)).toEqual([
      'master on master: passed',
      'master on worker: passed',
      'clean on worker: passed',
    ]);
    const log = (node: string, step: string) => readFileSync(join(dir, 'logs', node, `provision-${step}.log`), 'utf8');
    // The node's env is over the scenario's IP_ADDRESS (the management NIC's, the same on every VM).
    expect(log('master', 'master')).toMatch(/^\+\+\+ \[\d{8} [\d:]{8}\] master uses IP_ADDRESS=10\.77\.0\.11$/m);
    expect(log('worker', 'master')).toMatch(/^\+\+\+ \[\d{8} [\d:]{8}\] worker uses IP_ADDRESS=10\.77\.0\.12$/m);
    expect(log('worker', 'clean')).toMatch(/^\+\+\+ \[\d{8} [\d:]{8}\] answered Y$/m);
    expect(leftovers(runId)).toEqual([]);
  });
});
