import type { KubeObject } from './registry.js';

/**
 * The server-side printing today's kubectl asks for (Accept: ...;as=Table;g=meta.k8s.io): the
 * columns `kubectl get` showed for these kinds in 1.2/1.3, so Debian's kubectl prints READY,
 * STATUS, CLUSTER-IP... instead of only NAME and AGE.
 */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Column {
  name: string;
  /** 0: always shown; 1: with -o wide. */
  priority?: number;
  cell: (object: Json) => string | number;
}

const age = (object: Json): string => {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(object.metadata?.creationTimestamp)) / 1000));
  if (Number.isNaN(seconds)) return '<unknown>';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return `${minutes}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
};

const name: Column = { name: 'Name', cell: (o) => o.metadata?.name ?? '' };
const ageColumn: Column = { name: 'Age', cell: age };

function podStatus(pod: Json): string {
  const statuses = (pod.status?.containerStatuses ?? []) as Json[];
  const waiting = statuses.map((c) => c.state?.waiting?.reason).find(Boolean);
  const terminated = statuses.map((c) => c.state?.terminated?.reason).find(Boolean);
  return waiting ?? (pod.status?.phase === 'Running' ? 'Running' : (terminated ?? pod.status?.phase ?? 'Unknown'));
}

const COLUMNS: Record<string, Column[]> = {
  pods: [
    name,
    {
      name: 'Ready',
      cell: (p) => `${((p.status?.containerStatuses ?? []) as Json[]).filter((c) => c.ready).length}/${(p.spec?.containers ?? []).length}`,
    },
    { name: 'Status', cell: podStatus },
    { name: 'Restarts', cell: (p) => ((p.status?.containerStatuses ?? []) as Json[]).reduce((n, c) => n + Number(c.restartCount ?? 0), 0) },
    ageColumn,
    { name: 'IP', priority: 1, cell: (p) => p.status?.podIP ?? '<none>' },
    { name: 'Node', priority: 1, cell: (p) => p.spec?.nodeName || '<none>' },
  ],
  nodes: [
    name,
    {
      name: 'Status',
      cell: (n) => (((n.status?.conditions ?? []) as Json[]).some((c) => c.type === 'Ready' && c.status === 'True') ? 'Ready' : 'NotReady'),
    },
    ageColumn,
    { name: 'Version', cell: (n) => n.status?.nodeInfo?.kubeletVersion ?? '' },
  ],
  services: [
    name,
    { name: 'Cluster-IP', cell: (s) => s.spec?.clusterIP ?? '' },
    { name: 'External-IP', cell: () => '<none>' },
    { name: 'Port(s)', cell: (s) => ((s.spec?.ports ?? []) as Json[]).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') },
    ageColumn,
    {
      name: 'Selector',
      priority: 1,
      cell: (s) =>
        Object.entries(s.spec?.selector ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '<none>',
    },
  ],
  replicationcontrollers: [
    name,
    { name: 'Desired', cell: (r) => r.spec?.replicas ?? 0 },
    { name: 'Current', cell: (r) => r.status?.replicas ?? 0 },
    ageColumn,
  ],
  endpoints: [
    name,
    {
      name: 'Endpoints',
      cell: (e) =>
        ((e.subsets ?? []) as Json[])
          .flatMap((s) => ((s.addresses ?? []) as Json[]).flatMap((a) => ((s.ports ?? []) as Json[]).map((p) => `${a.ip}:${p.port}`)))
          .join(',') || '<none>',
    },
    ageColumn,
  ],
  namespaces: [name, { name: 'Status', cell: () => 'Active' }, ageColumn],
};

/** Whether the client asked for a Table (kubectl get does; -o json/yaml does not). */
export const wantsTable = (accept: string | undefined): boolean => /as=Table/.test(accept ?? '');

export function asTable(resource: string, listOrObject: KubeObject): KubeObject {
  const columns = COLUMNS[resource] ?? [name, ageColumn];
  const items = (Array.isArray(listOrObject.items) ? listOrObject.items : [listOrObject]) as Json[];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: listOrObject.metadata?.resourceVersion ?? '' },
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: typeof c.cell({}) === 'number' ? 'integer' : 'string',
      format: c === name ? 'name' : '',
      description: '',
      priority: c.priority ?? 0,
    })),
    rows: items.map((item) => ({
      cells: columns.map((c) => c.cell(item)),
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: item.metadata },
    })),
  };
}
