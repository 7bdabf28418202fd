import { describe, expect, test } from 'vitest';
import { waitFor, notYet } from '../../util/wait.js';
import { attach, step, useCluster, type ClusterNode } from '../api.js';
import { API, apiRequest, HEALTHY_WITHIN_MS, masterOf, setting, type Json } from './kube.js';

/**
 * node-registration: the apiserver on the master answers /healthz and reaches its etcd (1.2/1.3's
 * /healthz only pinged the server itself: etcd's health is in /api/v1/componentstatuses, what
 * `kubectl get componentstatuses` showed); it reports the K8S_VERSION the scenario installed;
 * every node of the scenario is registered under its cluster IP (the guide's --hostname-override),
 * Ready, and posting: the check sees its heartbeat change (the kubelet posts every 10 s; a Ready
 * condition nobody renews is the last word of a kubelet that may be gone), and the heartbeat is
 * younger than the node controller's 40 s grace period on the master's clock. Nodes get
 * NODE_READY_TIMEOUT seconds (default 60) to get there, the apiserver APISERVER_HEALTHY_WITHIN
 * (default 240: its static pod starts after master.sh returns).
 */
const lab = useCluster();
const readyWithinMs = Number(setting(lab, 'NODE_READY_TIMEOUT', '60')) * 1000;
const healthyWithinMs = Number(setting(lab, 'APISERVER_HEALTHY_WITHIN', String(HEALTHY_WITHIN_MS / 1000))) * 1000;

describe('node-registration', () => {
  test('apiserver is healthy and reaches etcd', async () => {
    const master = await masterOf(lab);
    let last = '';
    await step(`GET ${API}/healthz and /api/v1/componentstatuses on ${master.name}: ok, and etcd Healthy`, () =>
      waitFor({ what: `the apiserver on ${master.name}`, timeoutMs: healthyWithinMs, intervalMs: 3000 }, async () => {
        last = await apiserverProblem(master);
        return last ? notYet(last) : true;
      }).catch(() => {
        throw new Error(`the apiserver on ${master.name} is not healthy after ${healthyWithinMs / 1000} s: ${last}`);
      }),
    );
  });

  test(`version is ${lab.descriptor.env.K8S_VERSION ?? '(K8S_VERSION)'}`, async () => {
    const master = await masterOf(lab);
    const answer = await step(`GET ${API}/version`, () => apiRequest(master, 'GET', '/version'));
    await attach('version', JSON.stringify(answer.json, null, 2));
    expect(answer.code, `GET /version answered ${answer.code}: ${JSON.stringify(answer.json)}`).toBe(200);
    expect(
      answer.json.gitVersion,
      `the apiserver reports ${answer.json.gitVersion}, the scenario installed ${lab.descriptor.env.K8S_VERSION}`,
    ).toBe(lab.descriptor.env.K8S_VERSION);
  });

  for (const spec of lab.specs) {
    test(`${spec.name} is registered as ${spec.address}, Ready and posting its status`, async () => {
      const master = await masterOf(lab);
      let last = '';
      const seen = new Set<string>();
      await step(`wait up to ${readyWithinMs / 1000} s for node ${spec.address} to be Ready and post a new heartbeat`, () =>
        waitFor({ what: `node ${spec.address}`, timeoutMs: readyWithinMs, intervalMs: 2000 }, async () => {
          last = await nodeProblem(master, spec.address, seen);
          return last ? notYet(last) : true;
        }).catch(async () => {
          await attach('nodes', JSON.stringify((await apiRequest(master, 'GET', '/api/v1/nodes').catch(() => undefined))?.json, null, 2));
          throw new Error(`node ${spec.name} (${spec.address}) is not Ready and posting after ${readyWithinMs / 1000} s: ${last}`);
        }),
      );
    });
  }
});

/** What is wrong with the apiserver, in words, or '' when it answers and its etcd is healthy. */
async function apiserverProblem(master: ClusterNode): Promise<string> {
  const healthz = await master.exec(`curl -sS --max-time 10 -w '\\n%{http_code}' ${API}/healthz`, { timeout: 25 });
  const [body = '', code = ''] = healthz.stdout.trim().split('\n');
  if (healthz.code !== 0) return `no answer on ${API} (${healthz.stderr.trim() || `curl exit ${healthz.code}`})`;
  if (code !== '200' || body !== 'ok') return `/healthz answered ${code}: ${body}`;
  const components = await apiRequest(master, 'GET', '/api/v1/componentstatuses').catch((error: Error) => ({ code: 0, json: { message: error.message } as Json }));
  if (components.code !== 200) return `GET /api/v1/componentstatuses answered ${components.code}: ${components.json.message ?? JSON.stringify(components.json)}`;
  const etcd = ((components.json.items ?? []) as Json[]).filter((c) => String(c.metadata?.name).startsWith('etcd-'));
  if (!etcd.length) return 'componentstatuses lists no etcd';
  const sick = etcd.filter((c) => ((c.conditions ?? []) as Json[]).find((k) => k.type === 'Healthy')?.status !== 'True');
  return sick
    .map((c) => {
      const healthy = ((c.conditions ?? []) as Json[]).find((k) => k.type === 'Healthy') ?? {};
      return `the apiserver cannot reach its etcd: ${c.metadata.name} is not Healthy (${healthy.error ?? healthy.message ?? 'no condition'})`;
    })
    .join('; ');
}

/** The node controller's grace period: a heartbeat older than this is a node the controller marks. */
const GRACE_S = 40;

/**
 * What keeps a node from counting, in words, or '' when it is registered, Ready and posting. One
 * cause at a time, as seen: the apiserver's answer, the node missing, its Ready condition, the age
 * of its last heartbeat on the master's clock, or no new heartbeat since the check began (`seen`
 * holds the heartbeats seen so far).
 */
async function nodeProblem(master: ClusterNode, name: string, seen: Set<string>): Promise<string> {
  const answer = await apiRequest(master, 'GET', `/api/v1/nodes/${name}`).catch((error: Error) => ({ code: 0, json: { message: error.message } as Json }));
  if (answer.code === 404) {
    const list = await apiRequest(master, 'GET', '/api/v1/nodes').catch(() => undefined);
    const names = ((list?.json.items ?? []) as Json[]).map((n) => n.metadata?.name).join(', ') || 'none';
    return `not registered (registered nodes: ${names})`;
  }
  if (answer.code !== 200) return `the apiserver did not answer for the node: ${answer.code || 'no answer'} ${answer.json.message ?? ''}`.trim();
  const ready = ((answer.json.status?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready');
  if (!ready) return 'registered, but it never posted a Ready condition';
  const now = Number((await master.exec('date +%s', { timeout: 15 })).stdout.trim());
  const age = Math.round(now - Date.parse(ready.lastHeartbeatTime) / 1000);
  const condition = `Ready=${ready.status}${ready.reason ? ` (${ready.reason}: ${ready.message ?? ''})` : ''}`;
  if (ready.status !== 'True') return `${condition}, last heartbeat ${age} s ago`;
  if (age > GRACE_S) return `its last heartbeat is ${age} s old (the kubelet posts every 10 s; it still says ${condition})`;
  const fresh = seen.size > 0 && !seen.has(ready.lastHeartbeatTime);
  seen.add(ready.lastHeartbeatTime);
  return fresh ? '' : `no new heartbeat yet (the last one is ${age} s old; the kubelet posts every 10 s; it says ${condition})`;
}
