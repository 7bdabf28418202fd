/** IPv4 addressing of a run's cluster link: a CIDR from the scenario, one static address per node. */

export interface Cidr {
  /** Network address as a 32-bit number. */
  network: number;
  prefix: number;
}

export const DEFAULT_CLUSTER_CIDR = '10.77.0.0/24';
/** Addresses handed out in node order start at network + 11 (.11, .12, ... in a /24). */
const FIRST_HOST_OFFSET = 11;

export function parseIp(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export const formatIp = (n: number): string => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');

/** A CIDR whose address is its network address, prefix 8 to 30; undefined otherwise. */
export function parseCidr(text: string): Cidr | undefined {
  const [ip, bits] = text.split('/');
  const address = parseIp(ip ?? '');
  const prefix = Number(bits);
  if (address === undefined || !/^\d+$/.test(bits ?? '') || prefix < 8 || prefix > 30) return undefined;
  const network = (address & mask(prefix)) >>> 0;
  return network === address ? { network, prefix } : undefined;
}

const mask = (prefix: number): number => (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);

/** True for a usable host address of the CIDR (not its network or broadcast address). */
export function isHostIn(ip: number, cidr: Cidr): boolean {
  const size = 2 ** (32 - cidr.prefix);
  return ip > cidr.network && ip < cidr.network + size - 1;
}

/** Each node's address: the one it names, or the next free one from network + 11 in node order. */
export function assignAddresses(nodes: readonly { name: string; address?: string }[], cidr: Cidr): Map<string, string> {
  const taken = new Set(nodes.map((n) => n.address).filter((a): a is string => !!a));
  const out = new Map<string, string>();
  let next = cidr.network + FIRST_HOST_OFFSET;
  for (const node of nodes) {
    if (node.address) {
      out.set(node.name, node.address);
      continue;
    }
    while (taken.has(formatIp(next))) next++;
    if (!isHostIn(next, cidr))
      throw new Error(`the cluster network ${formatIp(cidr.network)}/${cidr.prefix} has no address left for ${node.name}`);
    out.set(node.name, formatIp(next));
    taken.add(formatIp(next));
    next++;
  }
  return out;
}

/** Locally administered, stable per node index; the image's networkd config matches on it. */
export const clusterMac = (index: number): string => `52:54:00:1a:c0:${(index + 1).toString(16).padStart(2, '0')}`;
