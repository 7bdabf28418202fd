import type { Json } from './client.js';
import { selects } from './selectors.js';

/**
 * The replication manager's decisions, kept pure for tests: how many pods an RC lacks, which of
 * its pods go when it has too many (unscheduled first, then pending, then the newest, as 1.2/1.3
 * ranked them), and the pod it creates from its template.
 */

export const isTerminated = (pod: Json): boolean => ['Succeeded', 'Failed'].includes(pod.status?.phase);

/** The RC's active pods: in its namespace, matching its selector, not finished. */
export function podsOf(rc: Json, pods: Json[]): Json[] {
  return pods.filter(
    (p) => p.metadata?.namespace === rc.metadata?.namespace && !isTerminated(p) && selects(rc.spec?.selector, p.metadata?.labels),
  );
}

export interface ReplicaPlan {
  create: number;
  remove: Json[];
}

export function replicaPlan(rc: Json, pods: Json[]): ReplicaPlan {
  const mine = podsOf(rc, pods);
  const wanted = Number(rc.spec?.replicas ?? 1);
  if (mine.length < wanted) return { create: wanted - mine.length, remove: [] };
  const rank = (p: Json) => [p.spec?.nodeName ? 1 : 0, p.status?.phase === 'Running' ? 1 : 0];
  const ordered = [...mine].sort((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    return (
      (ra[0] as number) - (rb[0] as number) ||
      (ra[1] as number) - (rb[1] as number) ||
      String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp))
    );
  });
  return { create: 0, remove: ordered.slice(0, mine.length - wanted) };
}

/** A new pod of the RC: its template, a generated name, and a reference back to the RC. */
export function podFromTemplate(rc: Json): Json {
  const template = rc.spec.template as Json;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${rc.metadata.name}-`,
      namespace: rc.metadata.namespace,
      labels: { ...template.metadata?.labels },
      annotations: {
        ...template.metadata?.annotations,
        'kubernetes.io/created-by': JSON.stringify({
          kind: 'SerializedReference',
          apiVersion: 'v1',
          reference: { kind: 'ReplicationController', namespace: rc.metadata.namespace, name: rc.metadata.name, uid: rc.metadata.uid },
        }),
      },
      ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: rc.metadata.name, uid: rc.metadata.uid, controller: true }],
    },
    spec: structuredClone(template.spec),
  };
}

/** Pods whose controlling RC is gone: the garbage collector deletes them (kubectl delete rc relies on it). */
export function orphans(pods: Json[], rcs: Json[]): Json[] {
  const alive = new Set(rcs.map((rc) => rc.metadata?.uid));
  return pods.filter((p) => {
    const owner = ((p.metadata?.ownerReferences ?? []) as Json[]).find((o) => o.controller && o.kind === 'ReplicationController');
    return owner && !alive.has(owner.uid);
  });
}
