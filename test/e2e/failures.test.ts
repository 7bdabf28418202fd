import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe('a run that fails', () => {
  test('a provisioner exiting 3 stops the run, named in the output and the reports, and the VM is gone', async () => {
    const result = await runLab(['run', 'test/scenarios/step-fails']);
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain('provision step "exits-three" failed on node1: exit code 3');
    expect(result.output).toContain('about to fail on purpose');
    const { runId, dir, summary } = onlyRun(result);

    expect(summary.verdict).toBe('failed');
    expect(summary.steps.map((s) => `${s.step}:${s.status}:${s.exitCode}`)).toEqual(['hello:passed:0', 'exits-three:failed:3']);
    expect(summary.phases.find((p) => p.name === 'provision')?.status).toBe('failed');
    expect(summary.phases.find((p) => p.name === 'checks')?.status).toBe('skipped');
    expect(summary.phases.find((p) => p.name === 'destroy')?.status).toBe('passed');
    const junit = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testcase classname="step-fails.provision" name="exits-three on node1"[^>]*>\s*<failure message="exit code 3/);
    expect(readFileSync(join(dir, 'logs/node1/provision-exits-three.log'), 'utf8')).toContain('about to fail on purpose');

    expect(leftovers(runId)).toEqual([]);
  });

  test('nodes-up fails on a node with the wrong hostname and a skewed clock, saying which and why', async () => {
    // --snapshots=off: a layer saved after the breaking step would step the clock back to the host's.
    const result = await runLab(['run', '--snapshots=off', 'test/scenarios/broken-node']);
    expect(result.code, result.output).toBe(1);
    const { runId, summary } = onlyRun(result);

    const byName = Object.fromEntries(summary.checks.map((c) => [c.name, c]));
    expect(byName['nodes-up node1 > answers over SSH']?.status).toBe('passed');
    expect(byName['nodes-up node1 > architecture is amd64']?.status).toBe('passed');
    expect(byName['nodes-up node1 > hostname is node1']).toMatchObject({ status: 'failed' });
    expect(byName['nodes-up node1 > hostname is node1']?.message).toContain('node1 reports hostname "impostor"');
    // The guest clock was set a minute ahead; a TCG guest's clock drifts a little after that.
    const skew = /node1's clock is (\d+\.\d) s off the host's/.exec(
      byName['nodes-up node1 > clock is within 5 s of the host']?.message ?? '',
    );
    expect(Number(skew?.[1])).toBeGreaterThan(50);
    expect(Number(skew?.[1])).toBeLessThan(70);
    expect(result.output).toContain('2 of 4 checks failed');

    expect(leftovers(runId)).toEqual([]);
  });
});
