import { networkInterfaces } from 'node:os';
import { ENDPOINTS, NODES, Registry, SERVICES, StatusError, type KubeObject } from './registry.js';
import type { ServiceIpAllocator } from './service-ips.js';

/**
 * The `kubernetes` service in `default`: the first IP of the service range (10.0.0.1), port 443,
 * with endpoints on the master. The stand-in has no TLS port, so the endpoints name the insecure
 * port; in-cluster clients (kube2sky, the addon manager) reach the API through the service IP.
 */
export async function reconcileMasterService(
  registry: Registry,
  serviceIps: ServiceIpAllocator,
  options: { advertiseAddress: string; port: number },
): Promise<void> {
  const ip = serviceIps.masterServiceIp;
  const service: KubeObject = {
    metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { ports: [{ name: 'https', protocol: 'TCP', port: 443, targetPort: options.port }], clusterIP: ip, sessionAffinity: 'None' },
  };
  const existing = await registry.get(SERVICES, 'kubernetes', 'default').catch(ignoreNotFound);
  if (!existing) {
    await serviceIps.claim('kubernetes', ip).catch(() => undefined);
    await registry.create(SERVICES, service, 'default');
  }
  const address = options.advertiseAddress || (await advertiseAddress(registry));
  const subsets = [{ addresses: [{ ip: address }], ports: [{ name: 'https', port: options.port, protocol: 'TCP' }] }];
  const endpoints = await registry.get(ENDPOINTS, 'kubernetes', 'default').catch(ignoreNotFound);
  if (!endpoints) await registry.create(ENDPOINTS, { metadata: { name: 'kubernetes' }, subsets }, 'default');
  else if (JSON.stringify(endpoints.subsets) !== JSON.stringify(subsets)) await registry.update(ENDPOINTS, 'kubernetes', { ...endpoints, subsets }, 'default');
}

/**
 * Without --advertise-address the real apiserver takes the default route's interface, which on the
 * lab's VMs is the management NIC every VM shares an address on. The master's own registered node
 * address is the one the other nodes reach, so it is preferred; the first address is the fallback.
 */
async function advertiseAddress(registry: Registry): Promise<string> {
  const local = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a?.address ?? '');
  const nodes = ((await registry.list(NODES)).items ?? []) as KubeObject[];
  const nodeAddresses = nodes.flatMap((n) => ((n.status as { addresses?: { address: string }[] } | undefined)?.addresses ?? []).map((a) => a.address));
  return local.find((a) => nodeAddresses.includes(a)) ?? local[0] ?? '127.0.0.1';
}

const ignoreNotFound = (error: unknown): undefined => {
  if (error instanceof StatusError && error.code === 404) return undefined;
  throw error;
};
