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

/** Number of usable host addresses of the CIDR (without its network and broadcast addresses). */
export const hostCount = (cidr: Cidr): number => 2 ** (32 - cidr.prefix) - 2;

/** One node's planned address: the one it names, or the lab's default for it (which may lie outside the network). */
export interface PlannedAddress {
  name: string;
  address: string;
  given: boolean;
  inNetwork: boolean;
}

/** Each node's address: the one it names, or the next free one from network + 11 in node order. */
export function planAddresses(nodes: readonly { name: string; address?: string }[], cidr: Cidr): PlannedAddress[] {
  const taken = new Set(nodes.map((n) => n.address).filter((a): a is string => !!a));
  let next = cidr.network + FIRST_HOST_OFFSET;
  return nodes.map(({ name, address }) => {
    if (address) return { name, address, given: true, inNetwork: isHostIn(parseIp(address) ?? -1, cidr) };
    while (taken.has(formatIp(next))) next++;
    const planned = formatIp(next++);
    taken.add(planned);
    return { name, address: planned, given: false, inNetwork: isHostIn(parseIp(planned) as number, cidr) };
  });
}

/** The addresses a run gives its nodes; the scenario's rules have refused any outside the network. */
export function assignAddresses(nodes: readonly { name: string; address?: string }[], cidr: Cidr): Map<string, string> {
  const planned = planAddresses(nodes, cidr);
  const outside = planned.find((p) => !p.given && !p.inNetwork);
  if (outside) throw new Error(`the cluster network ${formatIp(cidr.network)}/${cidr.prefix} has no address left for ${outside.name}`);
  return new Map(planned.map((p) => [p.name, p.address]));
}

/** Locally administered, stable per node index; the image's networkd config matches on it. */
export const clusterMac = (index: number): string => `52:54:00:1a:c0:${(index + 1).toString(16).padStart(2, '0')}`;
