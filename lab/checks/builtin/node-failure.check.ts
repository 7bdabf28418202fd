import { afterAll, describe, expect, test } from 'vitest';
import { notYet, waitFor } from '../../util/wait.js';
import { attach, step, useCluster, type ClusterNode } from '../api.js';
import { apiRequest, masterOf, setting, startSleeper, type Json } from './kube.js';

/**
 * node-failure: what the 2016 cluster does when a worker drops off its network, broken on purpose
 * with the fault verbs. With the worker's cluster link cut, containers on the master no longer
 * reach its containers over flannel, its kubelet can post no status, and the node controller marks
 * it once --node-monitor-grace-period (40 s in 1.2/1.3) passes without a heartbeat: Ready
 * "Unknown", reason NodeStatusUnknown, "Kubelet stopped posting node status." With the link back,
 * the pings get through again and the kubelet's next post makes the node Ready. The worker is
 * NODE_FAILURE_NODE (default: the first worker); the node controller gets NODE_LOST_WITHIN seconds
 * (default 90) to mark it, the cluster NODE_BACK_WITHIN (default 60) to come back. Not one of the
 * default checks: it cuts a node off for about two minutes. `lab verify --check node-failure`.
 */
const lab = useCluster();
const lostWithinMs = Number(setting(lab, 'NODE_LOST_WITHIN', '90')) * 1000;
const backWithinMs = Number(setting(lab, 'NODE_BACK_WITHIN', '60')) * 1000;
const image = setting(lab, 'FLANNEL_PING_IMAGE', 'busybox:latest');
const masterSpec = lab.specs.find((s) => s.role === 'master');
const workerSpec = lab.specs.find((s) => s.name === lab.descriptor.env.NODE_FAILURE_NODE) ?? lab.specs.find((s) => s.role === 'worker');
const worker = workerSpec?.name ?? '(no worker)';
const container = `lab-node-failure-${lab.descriptor.runId}`.slice(0, 60);
const ips = new Map<string, string>();
let blocked = false;
let unblockedAt = 0;

const workerNode = () => lab.node(worker);
const ping = async (from: ClusterNode, ip: string) => from.exec(`docker exec ${container} ping -c 2 -W 1 ${ip}`, { timeout: 20 });

/** The node's Ready condition as the apiserver has it, and how old its heartbeat is on the master's clock. */
async function readyCondition(
  master: ClusterNode,
  address: string,
): Promise<{ status: string; reason: string; message: string; heartbeatAgeS: number }> {
  const answer = await apiRequest(master, 'GET', `/api/v1/nodes/${address}`);
  if (answer.code !== 200) throw new Error(`GET /api/v1/nodes/${address} answered ${answer.code}`);
  const ready = ((answer.json.status?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready') ?? {};
  const now = Number((await master.succeed('date -u +%s', { timeout: 10 })).trim());
  return {
    status: String(ready.status),
    reason: String(ready.reason),
    message: String(ready.message),
    heartbeatAgeS: now - Date.parse(ready.lastHeartbeatTime) / 1000,
  };
}

afterAll(async () => {
  // Never leave the cluster cut off for the checks after this one.
  if (blocked) await (await workerNode()).unblock();
  for (const spec of lab.specs) await (await lab.node(spec.name)).exec(`docker rm -f ${container}`, { timeout: 60 }).catch(() => undefined);
});

describe('node-failure', () => {
  test(`a container on the master pings a container on ${worker} (${image})`, async () => {
    expect(masterSpec, 'the scenario has no master').toBeDefined();
    expect(workerSpec, 'the scenario has no worker to cut off').toBeDefined();
    for (const spec of lab.specs) {
      const node = await lab.node(spec.name);
      ips.set(spec.name, await step(`start a container on ${spec.name}`, () => startSleeper(node, container, image)));
    }
    const result = await step(`ping ${ips.get(worker)} (${worker}) from the container on the master`, async () =>
      ping(await masterOf(lab), ips.get(worker) ?? ''),
    );
    expect(result.code, `before any fault, the container on the master cannot reach the one on ${worker}:\n${result.stdout.trim()}`).toBe(
      0,
    );
  });

  test(`${worker}'s cluster link cut: the container on the master no longer reaches the one on ${worker}`, async () => {
    const node = await workerNode();
    await node.block();
    blocked = true;
    const result = await step(`ping ${ips.get(worker)} (${worker}) from the container on the master`, async () =>
      ping(await masterOf(lab), ips.get(worker) ?? ''),
    );
    await attach('ping', result.stdout + result.stderr);
    expect(
      result.code,
      `with ${worker}'s cluster link cut, the container on the master still reaches ${ips.get(worker)}: that traffic does not cross the cluster link`,
    ).not.toBe(0);
  });

  test(`the node controller marks ${worker} Unknown ("Kubelet stopped posting node status.") once its grace period passes`, async () => {
    expect(blocked, `${worker} was never cut off (the test above says why)`).toBe(true);
    const master = await masterOf(lab);
    const address = workerSpec?.address ?? '';
    let last = '';
    await step(`wait up to ${lostWithinMs / 1000} s for node ${address} to be Ready=Unknown`, () =>
      waitFor({ what: `node ${address} to be marked`, timeoutMs: lostWithinMs, intervalMs: 2000 }, async () => {
        const ready = await readyCondition(master, address);
        last = `it says Ready=${ready.status} (${ready.reason}: ${ready.message}), its last heartbeat ${Math.round(ready.heartbeatAgeS)} s old`;
        return ready.status === 'Unknown' &&
          ready.reason === 'NodeStatusUnknown' &&
          ready.message === 'Kubelet stopped posting node status.'
          ? true
          : notYet(last);
      }).catch(() => {
        throw new Error(
          `${worker} (${address}) is not marked ${lostWithinMs / 1000} s after its cluster link was cut: ${last}; is the controller-manager's node controller running?`,
        );
      }),
    );
  });

  test(`${worker}'s link restored: the ping gets through again, and ${worker} is Ready and posting`, async () => {
    const node = await workerNode();
    await node.unblock();
    blocked = false;
    unblockedAt = Date.now();
    const master = await masterOf(lab);
    let last = '';
    await step(`wait up to ${backWithinMs / 1000} s for the container on the master to reach ${worker}'s`, () =>
      waitFor({ what: `a ping to ${worker}`, timeoutMs: backWithinMs, intervalMs: 1000 }, async () => {
        const result = await ping(master, ips.get(worker) ?? '');
        return result.code === 0 ? true : notYet(result.stdout.trim().split('\n').pop() ?? `exit ${result.code}`);
      }).catch((error: Error) => {
        throw new Error(
          `the container on the master cannot reach ${worker}'s again ${backWithinMs / 1000} s after its link came back: ${error.message}`,
        );
      }),
    );
    const address = workerSpec?.address ?? '';
    await step(`wait for node ${address} to be Ready with a heartbeat since its link came back`, () =>
      waitFor({ what: `node ${address} to be Ready`, timeoutMs: backWithinMs, intervalMs: 2000 }, async () => {
        const ready = await readyCondition(master, address);
        last = `it says Ready=${ready.status} (${ready.reason}), its last heartbeat ${Math.round(ready.heartbeatAgeS)} s old`;
        const sinceBack = (Date.now() - unblockedAt) / 1000;
        return ready.status === 'True' && ready.heartbeatAgeS < sinceBack ? true : notYet(last);
      }).catch(() => {
        throw new Error(`${worker} (${address}) is not Ready again ${backWithinMs / 1000} s after its link came back: ${last}`);
      }),
    );
  });
});
