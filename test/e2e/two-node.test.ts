import { describe, expect, test } from 'vitest';
import { containerOf, failedAt, fullOnly, useKeptRun } from './helpers.js';

/**
 * scenarios/two-node as a user runs it: the multinode install without Flocker. Its layers are the
 * first ones of two-node-flocker, so whichever of the two runs first makes them for the other.
 * Kept, for the node-failure check (not one of its own: it cuts the worker off for two minutes).
 */
const kept = useKeptRun(['scenarios/two-node']);

describe('lab run scenarios/two-node', () => {
  test('every check of the multinode install passes', () => {
    const { summary } = kept;
    expect(summary.verdict).toBe('passed');
    expect([...new Set(summary.checks.map((c) => c.check))].sort()).toEqual(['dns', 'flannel-ping', 'node-registration', 'nodes-up']);
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
    expect(summary.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['offline-bootstrap', 'master', 'worker']));
  });
});

describe('node-failure: the worker cut off its cluster link', () => {
  test('flannel traffic stops, the node controller marks the worker after its grace period, and both come back with the link', () => {
    const verified = kept.run.verify(['node-failure']);
    expect(verified.code, verified.err).toBe(0);
    expect(verified.checks.map((c) => `${c.name.replace(/^node-failure > /, '')}: ${c.status}`)).toEqual([
      'a container on the master pings a container on worker (busybox:latest): passed',
      "worker's cluster link cut: the container on the master no longer reaches the one on worker: passed",
      'the node controller marks worker Unknown ("Kubelet stopped posting node status.") once its grace period passes: passed',
      "worker's link restored: the ping gets through again, and worker is Ready and posting: passed",
    ]);
  });

  // Nightly (6 minutes: a reset, the containers started again, 60 s of waiting for a mark that never comes).
  fullOnly('with the controller-manager paused, nothing marks the cut-off worker: the check fails at that step', () => {
    const { run } = kept;
    run.reset();
    run.succeed('master', `docker pause ${containerOf('docker', 'hyperkube controller-manager')} >/dev/null`);
    const message = failedAt(
      run.verify(['node-failure'], { NODE_LOST_WITHIN: '60' }),
      'node-failure',
      'the node controller marks worker Unknown',
    );
    expect(message).toMatch(
      /worker \(10\.77\.0\.12\) is not marked 60 s after its cluster link was cut: it says Ready=True \(KubeletReady: kubelet is posting ready status\), its last heartbeat \d+ s old; is the controller-manager's node controller running\?/,
    );
  });
});
