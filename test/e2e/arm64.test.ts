import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe('arm64 through QEMU', () => {
  test('lab run --arch arm64 scenarios/smoke boots an aarch64 guest and passes nodes-up', async () => {
    // --fresh: booted and provisioned here (and its snapshot layers made anew).
    const result = await runLab(['run', '--fresh', '--arch', 'arm64', 'scenarios/smoke']);
    expect(result.code, result.output).toBe(0);
    const { runId, dir, summary } = onlyRun(result);
    expect(summary.scenario.axes.arch).toBe('arm64');
    expect(summary.checks.find((c) => c.name === 'nodes-up node1 > architecture is arm64')?.status).toBe('passed');
    expect(readFileSync(join(dir, 'logs/node1/provision-hello.log'), 'utf8')).toContain('on node1 (arm64, role master');
    expect(readFileSync(join(dir, 'logs/node1/qemu.log'), 'utf8')).toMatch(/^qemu-system-aarch64 .*-M virt/m);
    expect(leftovers(runId)).toEqual([]);
  });

  test('a scenario mixes architectures: an amd64 master and an arm64 worker share the cluster link', async () => {
    const result = await runLab(['run', 'scenarios/mixed-arch']);
    expect(result.code, result.output).toBe(0);
    const { runId, summary } = onlyRun(result);
    expect(summary.nodes.map((n) => `${n.name}:${n.arch}`)).toEqual(['master:amd64', 'worker:arm64']);
    expect(summary.scenario.axes.arch).toBe('amd64+arm64');
    const passed = summary.checks.filter((c) => c.status === 'passed').map((c) => c.name);
    expect(passed).toContain('nodes-up worker > architecture is arm64');
    expect(passed).toContain('cluster-link > master -> worker');
    expect(passed).toContain('cluster-link > worker -> master');
    expect(leftovers(runId)).toEqual([]);
  });
});
