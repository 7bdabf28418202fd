import { glog, parseFlagsOrExit } from '../flags.js';
import { serveHealthz } from './healthz.js';
import { ApiClient, Changes, nowIso, parseDuration, sleep, type Json } from './client.js';
import { endpointSubsets } from './endpoints.js';
import { orphans, podFromTemplate, podsOf, replicaPlan } from './replication.js';

/**
 * controller-manager: the node controller marks a node's Ready condition Unknown ("Kubelet
 * stopped posting node status.") once it has seen no new heartbeat for
 * --node-monitor-grace-period, which kubectl shows as NotReady; the replication manager keeps
 * every RC's replicas (and collects the pods of deleted RCs); the endpoints controller fills
 * endpoints from selectors. /healthz on --port (10252).
 */
export async function controllerManager(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube controller-manager', argv, {
    master: '',
    'node-monitor-grace-period': '40s',
    'node-monitor-period': '5s',
    'pod-eviction-timeout': '5m0s',
    'service-account-private-key-file': '',
    'root-ca-file': '',
    'min-resync-period': '12h0m0s',
    'cluster-cidr': '',
    'allocate-node-cidrs': false,
    'leader-elect': false,
    address: '0.0.0.0',
    port: '10252',
    v: '0',
    logtostderr: true,
  });
  const where = 'nodecontroller.go';
  if (!flags.master) {
    glog('F', 'controllermanager.go', 'Invalid API configuration: no configuration has been provided');
    process.exit(255);
  }
  const api = new ApiClient(flags.master);
  const grace = parseDuration(flags['node-monitor-grace-period']);
  const period = parseDuration(flags['node-monitor-period']);
  serveHealthz(flags.address, Number(flags.port), 'controllermanager.go');
  glog('I', where, `Node controller: grace period ${flags['node-monitor-grace-period']}, checking every ${flags['node-monitor-period']}`);
  const workloads = new Changes(api, WORKLOAD_RESOURCES);
  const nodes = new NodeMonitor(grace, STARTUP_GRACE_MS);
  await Promise.all([
    every(() => sleep(period), 'nodecontroller.go', 'Error monitoring node status', () => monitorNodes(api, nodes)),
    every(() => workloads.wait(WORKLOAD_RESYNC_MS), 'controllermanager.go', 'Error syncing replication controllers and endpoints', () => syncWorkloads(api)),
  ]);
}

/**
 * RCs and endpoints are reconciled in one pass over one listing of each kind (every request costs
 * the emulated master dearly under TCG), when one of them changes, and every 30 s at the latest.
 */
export const WORKLOAD_RESOURCES = ['replicationcontrollers', 'pods', 'services', 'endpoints'];
const WORKLOAD_RESYNC_MS = 30_000;

async function syncWorkloads(api: ApiClient): Promise<void> {
  const [rcs, pods, services, endpoints] = await Promise.all(
    WORKLOAD_RESOURCES.map(async (r) => ((await api.get(`/api/v1/${r}`)).items ?? []) as Json[]),
  );
  await syncReplication(api, rcs as Json[], pods as Json[]);
  await syncEndpoints(api, services as Json[], pods as Json[], endpoints as Json[]);
}

/** Runs one controller's pass forever, after each wait, logging (not dying on) a failed pass. */
async function every(wait: () => Promise<void>, where: string, what: string, pass: () => Promise<void>): Promise<never> {
  for (;;) {
    await wait();
    await pass().catch((error: Error) => glog('E', where, `${what}: ${error.message}`));
  }
}

/** --node-startup-grace-period: how long a node that never posted its status is given. */
const STARTUP_GRACE_MS = 60_000;

/**
 * What the node controller remembers of each node, as 1.2/1.3's nodeStatusMap did: the heartbeat
 * it last saw and when it saw it change, on the controller's own clock. A node is stale when no
 * new heartbeat was seen for the grace period; the heartbeat's own time is never compared with
 * the controller's clock.
 */
export class NodeMonitor {
  private readonly seen = new Map<string, { heartbeat: string; probedAt: number }>();

  constructor(
    private readonly graceMs: number,
    private readonly startupGraceMs: number,
  ) {}

  /** Why the node must be marked Unknown now, or undefined while it is fresh (or already marked). */
  stale(node: Json, now: number): { reason: string; message: string; silentMs: number } | undefined {
    const name = String(node.metadata.name);
    const ready = ((node.status?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready');
    const saved = this.seen.get(name);
    if (!saved) {
      // First sight: a node that never posted counts from its creation, with the startup grace.
      const probedAt = ready ? now : Date.parse(node.metadata.creationTimestamp);
      this.seen.set(name, { heartbeat: ready?.lastHeartbeatTime ?? '', probedAt });
    } else if (ready && ready.lastHeartbeatTime !== saved.heartbeat) {
      this.seen.set(name, { heartbeat: ready.lastHeartbeatTime, probedAt: now });
    }
    const { probedAt } = this.seen.get(name) as { probedAt: number };
    const grace = ready ? this.graceMs : this.startupGraceMs;
    if (now <= probedAt + grace || ready?.status === 'Unknown') return undefined;
    return ready
      ? { reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', silentMs: now - probedAt }
      : { reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', silentMs: now - probedAt };
  }

  forget(names: Set<string>): void {
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
  }
}

async function monitorNodes(api: ApiClient, monitor: NodeMonitor): Promise<void> {
  const where = 'nodecontroller.go';
  const nodes = ((await api.get('/api/v1/nodes')).items ?? []) as Json[];
  monitor.forget(new Set(nodes.map((n) => String(n.metadata.name))));
  for (const node of nodes) {
    const stale = monitor.stale(node, Date.now());
    if (!stale) continue;
    const ready = ((node.status?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready');
    glog('I', where, `node ${node.metadata.name} hasn't been updated for ${Math.round(stale.silentMs / 1000)}s. Last ready condition is: ${ready?.status ?? 'none'}`);
    const unknown = {
      type: 'Ready',
      status: 'Unknown',
      lastHeartbeatTime: ready?.lastHeartbeatTime ?? node.metadata.creationTimestamp,
      lastTransitionTime: nowIso(),
      reason: stale.reason,
      message: stale.message,
    };
    node.status = {
      ...node.status,
      conditions: [...((node.status?.conditions ?? []) as Json[]).filter((c) => c.type !== 'Ready'), unknown],
    };
    await api
      .put(`/api/v1/nodes/${encodeURIComponent(node.metadata.name)}/status`, node)
      .catch((error: Error) => glog('E', where, `Error updating node ${node.metadata.name}: ${error.message}`));
  }
}

/** Every RC gets its replicas (pods created from the template, extra ones deleted); pods of deleted RCs go. */
async function syncReplication(api: ApiClient, rcs: Json[], pods: Json[]): Promise<void> {
  const where = 'replication_controller.go';
  for (const rc of rcs) {
    const { namespace, name } = rc.metadata;
    const plan = replicaPlan(rc, pods);
    for (let i = 0; i < plan.create; i++) {
      const pod = await api.post(`/api/v1/namespaces/${namespace}/pods`, podFromTemplate(rc));
      glog('I', where, `Created pod ${pod.metadata.name} for replication controller ${namespace}/${name}`);
    }
    for (const pod of plan.remove) {
      await api.call('DELETE', `/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
      glog('I', where, `Deleted pod ${pod.metadata.name} of replication controller ${namespace}/${name} (too many replicas)`);
    }
    const replicas = podsOf(rc, pods).length + plan.create - plan.remove.length;
    if (rc.status?.replicas !== replicas || rc.status?.observedGeneration === undefined)
      await api.put(`/api/v1/namespaces/${namespace}/replicationcontrollers/${name}/status`, {
        ...rc,
        status: { replicas, observedGeneration: 1 },
      });
  }
  for (const pod of orphans(pods, rcs)) {
    await api.call('DELETE', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`);
    glog('I', 'garbagecollector.go', `Deleted pod ${pod.metadata.namespace}/${pod.metadata.name}: its replication controller is gone`);
  }
}

/** Every service with a selector gets Endpoints of the same name listing its pods; endpoints of deleted services go. */
async function syncEndpoints(api: ApiClient, services: Json[], pods: Json[], endpoints: Json[]): Promise<void> {
  const where = 'endpoints_controller.go';
  const existing = new Map(endpoints.map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]));
  for (const service of services) {
    if (!service.spec?.selector || Object.keys(service.spec.selector).length === 0) continue;
    const { namespace, name } = service.metadata;
    const subsets = endpointSubsets(service, pods);
    const current = existing.get(`${namespace}/${name}`);
    const path = `/api/v1/namespaces/${namespace}/endpoints`;
    if (!current) await api.post(path, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, labels: service.metadata.labels }, subsets });
    else if (JSON.stringify(current.subsets ?? []) !== JSON.stringify(subsets)) await api.put(`${path}/${name}`, { ...current, subsets });
    else continue;
    glog('I', where, `Endpoints of ${namespace}/${name}: ${subsets.flatMap((s) => (s.addresses ?? []).map((a: Json) => a.ip)).join(', ') || 'none ready'}`);
  }
  const serviceKeys = new Set(services.map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
  for (const [key, endpoints] of existing) {
    if (serviceKeys.has(key)) continue;
    await api.call('DELETE', `/api/v1/namespaces/${endpoints.metadata.namespace}/endpoints/${endpoints.metadata.name}`);
  }
}
