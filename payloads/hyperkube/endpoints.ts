import type { Json } from './client.js';
import { selects } from './selectors.js';

/**
 * The endpoints controller's computation, pure for tests: a service's Endpoints subsets from the
 * pods its selector picks, with ready pods in `addresses` and the others in `notReadyAddresses`,
 * and each service port's targetPort resolved (a number, or a container port's name).
 */

const isReady = (pod: Json) => ((pod.status?.conditions ?? []) as Json[]).some((c) => c.type === 'Ready' && c.status === 'True');

function targetPortOf(pod: Json, servicePort: Json): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(String(target))) return Number(target);
  for (const container of (pod.spec?.containers ?? []) as Json[])
    for (const port of (container.ports ?? []) as Json[]) if (port.name === target) return Number(port.containerPort);
  return undefined;
}

export function endpointSubsets(service: Json, pods: Json[]): Json[] {
  const selected = pods.filter(
    (p) => p.metadata?.namespace === service.metadata?.namespace && p.status?.podIP && selects(service.spec?.selector, p.metadata?.labels),
  );
  const groups = new Map<string, { ports: Json[]; addresses: Json[]; notReadyAddresses: Json[] }>();
  for (const pod of selected) {
    const ports = ((service.spec?.ports ?? []) as Json[]).flatMap((sp) => {
      const port = targetPortOf(pod, sp);
      return port === undefined ? [] : [{ ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP' }];
    });
    if (ports.length === 0) continue;
    const key = JSON.stringify(ports);
    const group = groups.get(key) ?? { ports, addresses: [], notReadyAddresses: [] };
    groups.set(key, group);
    const address = {
      ip: pod.status.podIP,
      nodeName: pod.spec?.nodeName,
      targetRef: { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
    };
    (isReady(pod) ? group.addresses : group.notReadyAddresses).push(address);
  }
  return [...groups.values()].map((g) => ({
    ...(g.addresses.length ? { addresses: sortByIp(g.addresses) } : {}),
    ...(g.notReadyAddresses.length ? { notReadyAddresses: sortByIp(g.notReadyAddresses) } : {}),
    ports: g.ports,
  }));
}

const sortByIp = (addresses: Json[]) => [...addresses].sort((a, b) => String(a.ip).localeCompare(String(b.ip)));
