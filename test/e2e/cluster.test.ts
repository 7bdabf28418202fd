import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe('clusters of VMs', () => {
  test('two amd64 nodes boot together and reach each other by name over the cluster link', async () => {
    // --fresh: booted, whatever the snapshot cache holds.
    const result = await runLab(['run', '--fresh', 'test/scenarios/two-vms']);
    expect(result.code, result.output).toBe(0);
    const { runId, dir, summary } = onlyRun(result);
    expect(summary.nodes.map((n) => `${n.name}:${n.role}`)).toEqual(['master:master', 'worker:worker']);
    const link = summary.checks.filter((c) => c.check === 'cluster-link');
    expect(link.map((c) => `${c.name}:${c.status}`)).toEqual([
      'cluster-link > master holds 10.77.0.11 on its cluster NIC:passed',
      'cluster-link > worker holds 10.77.0.12 on its cluster NIC:passed',
      'cluster-link > master -> worker:passed',
      'cluster-link > worker -> master:passed',
    ]);
    // Both boots ran at the same time: the second started before the first finished.
    const lab = readFileSync(join(dir, 'logs/lab.log'), 'utf8');
    const started = [...lab.matchAll(/• booting (\w+)/g)].map((m) => m[1]);
    const firstDone = lab.search(/✓ booting/);
    expect(started).toHaveLength(2);
    expect(lab.lastIndexOf('• booting')).toBeLessThan(firstDone);
    // The switch and both VMs are gone.
    expect(leftovers(runId)).toEqual([]);
  });
});
