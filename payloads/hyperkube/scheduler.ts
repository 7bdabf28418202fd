import { glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, Changes, type Json } from './client.js';
import { serveHealthz } from './healthz.js';
import { selects } from './selectors.js';

/**
 * The scheduler: binds each pending pod without a node to a Ready node that fits it (nodeSelector),
 * preferring the node with the fewest pods of the same controller, then the fewest pods, as the
 * 1.2/1.3 default priorities spread replicas. A pod that fits nowhere gets PodScheduled=False.
 */

// A safety net only: every write to pods or nodes wakes the scheduler at once.
const RESYNC_MS = 30_000;

export type Placement = { node: string } | { node?: undefined; reason: string };

const isReady = (node: Json) =>
  ((node.status?.conditions ?? []) as Json[]).some((c) => c.type === 'Ready' && c.status === 'True') && node.spec?.unschedulable !== true;
const isActive = (pod: Json) => !['Succeeded', 'Failed'].includes(pod.status?.phase);
const ownerOf = (pod: Json): string => pod.metadata?.ownerReferences?.[0]?.uid ?? JSON.stringify(pod.metadata?.labels ?? {});

export function chooseNode(pod: Json, nodes: Json[], pods: Json[]): Placement {
  const selector = (pod.spec?.nodeSelector ?? {}) as Record<string, string>;
  const ready = nodes.filter(isReady);
  const fitting = ready.filter((n) => Object.keys(selector).length === 0 || selects(selector, n.metadata?.labels));
  if (fitting.length === 0) {
    const reasons = [
      ...(nodes.length > ready.length ? [`NodeNotReady (${nodes.length - ready.length})`] : []),
      ...(ready.length > fitting.length ? [`MatchNodeSelector (${ready.length - fitting.length})`] : []),
    ];
    return {
      reason: nodes.length === 0 ? 'no nodes available to schedule pods' : `pod (${pod.metadata?.name}) failed to fit in any node: ${reasons.join(', ')}`,
    };
  }
  const owner = ownerOf(pod);
  const load = (node: Json): [number, number] => {
    const here = pods.filter((p) => p.spec?.nodeName === node.metadata.name && isActive(p));
    return [here.filter((p) => p.metadata?.namespace === pod.metadata?.namespace && ownerOf(p) === owner).length, here.length];
  };
  const best = fitting
    .map((node) => ({ name: String(node.metadata.name), load: load(node) }))
    .sort((a, b) => a.load[0] - b.load[0] || a.load[1] - b.load[1] || a.name.localeCompare(b.name))[0];
  return { node: best?.name ?? '' };
}

export async function scheduler(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube scheduler', argv, {
    master: '',
    kubeconfig: '',
    'leader-elect': false,
    address: '127.0.0.1',
    port: '10251',
    'algorithm-provider': 'DefaultProvider',
    v: '0',
    logtostderr: true,
  });
  const where = 'scheduler.go';
  if (!flags.master && !flags.kubeconfig) {
    glog('F', where, 'Neither --kubeconfig nor --master was specified');
    process.exit(255);
  }
  serveHealthz(flags.address, Number(flags.port), where);
  const api = new ApiClient(flags.master);
  glog('I', where, `Scheduler started, master ${api.base}`);
  const unschedulable = new Map<string, string>();
  const changes = new Changes(api, ['pods', 'nodes']);
  for (;;) {
    // A pass when pods or nodes change (a new pod, a node Ready again), every 30 s at the latest.
    await changes.wait(RESYNC_MS);
    try {
      // Most passes find nothing pending: one small list, and the whole picture only when needed.
      const pending = ((await api.get(`/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=')}`)).items ?? []) as Json[];
      if (!pending.some(isActive)) continue;
      const [nodes, pods] = await Promise.all([api.get('/api/v1/nodes'), api.get('/api/v1/pods')]);
      const all = (pods.items ?? []) as Json[];
      for (const pod of all.filter((p) => !p.spec?.nodeName && isActive(p))) {
        const { name, namespace } = pod.metadata;
        const placement = chooseNode(pod, (nodes.items ?? []) as Json[], all);
        const podPath = `/api/v1/namespaces/${namespace}/pods/${name}`;
        if (placement.node !== undefined) {
          await api.post(`${podPath}/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { kind: 'Node', name: placement.node } });
          pod.spec.nodeName = placement.node;
          unschedulable.delete(pod.metadata.uid);
          glog('I', where, `Successfully assigned ${name} to ${placement.node}`);
        } else if (unschedulable.get(pod.metadata.uid) !== placement.reason) {
          unschedulable.set(pod.metadata.uid, placement.reason);
          glog('I', where, `Failed to schedule ${namespace}/${name}: ${placement.reason}`);
          const condition = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: placement.reason };
          await api.put(`${podPath}/status`, { ...pod, status: { ...pod.status, conditions: [condition] } });
        }
      }
    } catch (error) {
      glog('E', where, `Scheduling failed: ${(error as Error).message}`);
    }
  }
}
