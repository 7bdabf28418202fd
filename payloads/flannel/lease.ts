import { formatIp, parseCidr, parseIp, type Cidr } from '../../lab/net/addressing.js';

/**
 * The formats flannel 0.5.5/0.6.1 keeps in etcd and on disk, for the flannel stand-in: the network
 * config at <prefix>/config, one lease per host at <prefix>/subnets/<a.b.c.d>-<len>, and
 * /run/flannel/subnet.env. Pure functions; the daemon around them talks to etcd and the kernel.
 */

export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
export type BackendType = 'udp' | 'vxlan';

/** Encapsulation overhead per backend: udp adds an IP and a UDP header (20 + 8); vxlan, the kernel's 50. */
const OVERHEAD: Record<BackendType, number> = { udp: 28, vxlan: 50 };
/** The backends' UDP ports (udp's `Port`, the kernel's vxlan port). */
export const BACKEND_PORT: Record<BackendType, number> = { udp: 8285, vxlan: 8472 };

export interface NetworkConfig {
  network: Cidr;
  subnetLen: number;
  subnetMin: number;
  subnetMax: number;
  backend: { type: BackendType; port: number; vni: number };
}

/** Parses <prefix>/config as flannel does: Network required, SubnetLen 24, Backend.Type udp by default. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let raw: {
    Network?: unknown;
    SubnetLen?: unknown;
    SubnetMin?: unknown;
    SubnetMax?: unknown;
    Backend?: { Type?: unknown; Port?: unknown; VNI?: unknown };
  };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (error) {
    throw new Error(`failed to decode config: ${(error as Error).message}`);
  }
  if (typeof raw.Network !== 'string') throw new Error('failed to parse network config: Network is required');
  const network = parseCidr(raw.Network);
  if (!network) throw new Error(`failed to parse network config: invalid Network "${raw.Network}"`);
  const subnetLen = raw.SubnetLen === undefined ? 24 : Number(raw.SubnetLen);
  if (!Number.isInteger(subnetLen) || subnetLen <= network.prefix || subnetLen > 30)
    throw new Error(`failed to parse network config: SubnetLen ${String(raw.SubnetLen)} does not fit in ${raw.Network}`);
  const size = 2 ** (32 - subnetLen);
  const last = network.network + 2 ** (32 - network.prefix) - size;
  // Like flannel: the first and the last subnet of the network are not handed out by default.
  const subnetMin = raw.SubnetMin === undefined ? network.network + size : parseIp(String(raw.SubnetMin));
  const subnetMax = raw.SubnetMax === undefined ? last - size : parseIp(String(raw.SubnetMax));
  if (subnetMin === undefined || subnetMax === undefined || subnetMin > subnetMax)
    throw new Error('failed to parse network config: SubnetMin/SubnetMax are not a range of the network');
  const type = raw.Backend?.Type === undefined ? 'udp' : String(raw.Backend.Type);
  if (type !== 'udp' && type !== 'vxlan') throw new Error(`failed to create backend: unknown backend type: ${type}`);
  const port = raw.Backend?.Port === undefined ? BACKEND_PORT[type] : Number(raw.Backend.Port);
  const vni = raw.Backend?.VNI === undefined ? 1 : Number(raw.Backend.VNI);
  return { network, subnetLen, subnetMin, subnetMax, backend: { type, port, vni } };
}

/** A subnet as the key of its lease: 10.1.15.0/24 -> 10.1.15.0-24. */
export const subnetKey = (subnet: number, len: number): string => `${formatIp(subnet)}-${len}`;

/** The subnet a lease key names, or undefined when the key is not a lease. */
export function parseSubnetKey(key: string): { subnet: number; len: number } | undefined {
  const match = /(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
  const subnet = match ? parseIp(match[1] as string) : undefined;
  return match && subnet !== undefined ? { subnet, len: Number(match[2]) } : undefined;
}

/** The lease's value (LeaseAttrs): udp leaves the backend type out, vxlan names it and its VTEP MAC. */
export function leaseAttrs(publicIp: string, backend: BackendType, vtepMac?: string): string {
  if (backend === 'udp') return JSON.stringify({ PublicIP: publicIp });
  return JSON.stringify({ PublicIP: publicIp, BackendType: 'vxlan', BackendData: { VtepMAC: vtepMac } });
}

/** The vxlan VTEP's MAC: locally administered, unicast, made from the host's public IP (10.77.0.11 -> 0e:fa:0a:4d:00:0b). */
export const vtepMacFor = (publicIp: string): string =>
  ['0e', 'fa', ...publicIp.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0'))].join(':');

/** A free subnet between SubnetMin and SubnetMax, chosen by `pick` among the free ones (flannel picks at random). */
export function allocateSubnet(config: NetworkConfig, takenKeys: readonly string[], pick = Math.random): number {
  const taken = new Set(takenKeys.map((k) => parseSubnetKey(k)?.subnet));
  const size = 2 ** (32 - config.subnetLen);
  const free: number[] = [];
  for (let subnet = config.subnetMin; subnet <= config.subnetMax; subnet += size) if (!taken.has(subnet)) free.push(subnet);
  if (!free.length) throw new Error('out of subnets');
  return free[Math.floor(pick() * free.length)] as number;
}

/** The MTU of the flannel device: the external interface's minus the backend's overhead. */
export const backendMtu = (backend: BackendType, externalMtu: number): number => externalMtu - OVERHEAD[backend];

/** /run/flannel/subnet.env: FLANNEL_SUBNET is the lease's first address, with the lease's length. */
export function subnetEnv(options: { network: Cidr; subnet: number; subnetLen: number; mtu: number; ipMasq: boolean }): string {
  return [
    `FLANNEL_NETWORK=${formatIp(options.network.network)}/${options.network.prefix}`,
    `FLANNEL_SUBNET=${formatIp(options.subnet + 1)}/${options.subnetLen}`,
    `FLANNEL_MTU=${options.mtu}`,
    `FLANNEL_IPMASQ=${options.ipMasq}`,
    '',
  ].join('\n');
}
