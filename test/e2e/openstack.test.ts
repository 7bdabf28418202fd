import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { failedAt, useKeptRun } from './helpers.js';

/**
 * scenarios/two-node-flocker-openstack, kept: Flocker 1.14.0's openstack backend on the run's
 * emulated OpenStack. Every check passes, flocker-attach's move included: the dataset's Cinder
 * volume, hot-plugged into the worker's VM, leaves it and is plugged into the master's, whose pod
 * reads the file the worker's pod wrote. Then a wrong cloud password on the worker: the pod never
 * runs there, and the check names Keystone's refusal from the agent's log.
 */
// CI keeps test/scenarios/flocker-openstack: the same layers, checked by nodes-up and flocker-attach
// only (the multinode checks pass on them in two-node-flocker's run); nightly, the scenario whole.
const FULL = process.env.LAB_E2E_FULL === '1';
const kept = useKeptRun([FULL ? 'scenarios/two-node-flocker-openstack' : 'test/scenarios/flocker-openstack']);

/** The cloud's request log, which the run keeps with its report. */
const cloudLog = (): string => readFileSync(join(kept.dir, 'logs', 'cloud.log'), 'utf8');

describe(`${FULL ? 'scenarios/two-node-flocker-openstack' : 'its test/scenarios/flocker-openstack'} (Flocker 1.14.0, openstack backend), kept`, () => {
  test('every check passes; the dataset moved from the worker to the master through Nova', () => {
    const { summary } = kept;
    expect(summary.verdict).toBe('passed');
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
    expect(summary.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'flocker-attach > the dataset is a file system on a Cinder volume under /flocker/<dataset_id> on worker, holding what the pod writes',
        'flocker-attach > the dataset moves to master with its file: a pod there names it, its disk leaves worker',
      ]),
    );
    // What Nova did for the agents: one volume, plugged into the worker, out, into the master, out, gone.
    const log = cloudLog();
    const attached = [...log.matchAll(/attached volume (\S+) to (\w+) as/g)].map((m) => `${m[2]} ${m[1]}`);
    const detached = [...log.matchAll(/detached volume (\S+) from (\w+)/g)].map((m) => `${m[2]} ${m[1]}`);
    const volume = attached[0]?.split(' ')[1] ?? '';
    expect(attached).toEqual([`worker ${volume}`, `master ${volume}`]);
    expect(detached).toEqual([`worker ${volume}`, `master ${volume}`]);
    expect(log).toMatch(new RegExp(`volume: DELETE /v2/[0-9a-f]+/volumes/${volume} -> 202`));
  });

  test("a wrong cloud password in the worker's agent.yml: the pod never runs there, and the check names Keystone's refusal", () => {
    const { run } = kept;
    run.reset();
    run.succeed(
      'worker',
      'sed -i \'s/^  password: .*/  password: "not-the-cloud-password"/\' /etc/flocker/agent.yml && docker restart flocker-dataset-agent >/dev/null',
    );
    const message = failedAt(run.verify(['flocker-attach'], { FLOCKER_ATTACH_WITHIN: '60' }), 'flocker-attach', 'runs on worker');
    expect(message).toMatch(/is Pending on worker after 60 s/);
    expect(message).toMatch(
      /the dataset agent on worker says: .*keystoneauth1\.exceptions\.http\.Unauthorized: The request you have made requires authentication\. \(HTTP 401\)/,
    );
  });
});
