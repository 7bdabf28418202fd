import { createHash } from 'node:crypto';
import type { Json } from './client.js';

/**
 * The rules of kube-proxy 1.2/1.3's iptables Proxier (pkg/proxy/iptables/proxier.go), built from
 * v1 Services and Endpoints as `iptables-restore --noflush` input. Rules are written in the form
 * iptables-save prints them back (match order, quoted comments), so what a node shows compares
 * line for line with what was generated.
 */

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
/** The nat chains every sync rewrites. */
const NAT_CHAINS = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ];
/** Bit 14, kube-proxy's --iptables-masquerade-bit default. */
const MASQUERADE_MARK = '0x4000/0x4000';
/** The per-service and per-endpoint chains are the ones a sync may delete: their names come and go with services. */
const isPerServiceChain = (chain: string): boolean => chain.startsWith('KUBE-SVC-') || chain.startsWith('KUBE-SEP-');
/** kube-proxy 1.2 and 1.3 wrote fmt.Sprintf("%0.5f", 1/(n-i)); ten digits came in much later releases. */
const PROBABILITY_DECIMALS = 5;

export type Table = 'nat' | 'filter';
export type Protocol = 'tcp' | 'udp';

/** One port of one service, kube-proxy's unit: a ServicePortName and what it balances to. */
export interface ServicePort {
  /** `namespace/name:portName` (portName "" for an unnamed port): kube-proxy's ServicePortName. */
  name: string;
  clusterIp: string;
  port: number;
  protocol: Protocol;
  nodePort?: number;
  /** `ip:port` of each ready address, in the Endpoints object's order. */
  endpoints: string[];
}

export interface RuleOptions {
  /** --masquerade-all: SNAT everything sent to a cluster IP. */
  masqueradeAll?: boolean;
  /** --cluster-cidr: SNAT what is sent to a cluster IP from outside the pod network. */
  clusterCidr?: string;
  /** The nat table's chains now (from iptables-save): KUBE-SVC-/KUBE-SEP- chains no longer wanted are deleted. */
  existingChains?: readonly string[];
}

/** A rule hooking one of kube-proxy's chains (target) into a built-in chain, inserted first as kube-proxy's EnsureRule(Prepend) does. */
export interface JumpRule {
  table: Table;
  chain: string;
  target: string;
  /** The rule after the chain, as `iptables -C/-I/-D <chain>` takes it. */
  args: string[];
}

/** The first 16 characters of base32(sha256(text)): what kube-proxy's chain names end with (28 characters at most in all). */
export function chainHash(text: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  // 16 characters of 5 bits are the digest's first 10 bytes.
  let bits = 0n;
  for (const byte of createHash('sha256').update(text).digest().subarray(0, 10)) bits = (bits << 8n) | BigInt(byte);
  return Array.from({ length: 16 }, (_, i) => alphabet[Number((bits >> BigInt(75 - 5 * i)) & 31n)]).join('');
}

export const serviceChain = (port: Pick<ServicePort, 'name' | 'protocol'>): string => `KUBE-SVC-${chainHash(port.name + port.protocol)}`;
export const endpointChain = (port: Pick<ServicePort, 'name' | 'protocol'>, endpoint: string): string =>
  `KUBE-SEP-${chainHash(port.name + port.protocol + endpoint)}`;

/**
 * The service ports kube-proxy would proxy: services with a cluster IP (not headless), each port
 * with the ready addresses of the Endpoints port of the same name. Sorted by name, so the same
 * objects give the same rules.
 */
export function servicePorts(services: readonly Json[], endpoints: readonly Json[]): ServicePort[] {
  const endpointsByService = new Map(endpoints.map((e) => [`${e.metadata?.namespace}/${e.metadata?.name}`, e]));
  const result: ServicePort[] = [];
  for (const service of services) {
    const clusterIp = String(service.spec?.clusterIP ?? '');
    if (clusterIp === '' || clusterIp === 'None') continue;
    const id = `${service.metadata?.namespace}/${service.metadata?.name}`;
    const subsets = (endpointsByService.get(id)?.subsets ?? []) as Json[];
    for (const port of (service.spec?.ports ?? []) as Json[]) {
      const portName = String(port.name ?? '');
      const addresses = subsets.flatMap((subset) => {
        const match = ((subset.ports ?? []) as Json[]).find((p) => String(p.name ?? '') === portName);
        if (!match || !(Number(match.port) > 0)) return [];
        return ((subset.addresses ?? []) as Json[]).filter((a) => a.ip).map((a) => `${a.ip}:${match.port}`);
      });
      result.push({
        name: `${id}:${portName}`,
        clusterIp,
        port: Number(port.port),
        protocol: String(port.protocol ?? 'TCP').toLowerCase() as Protocol,
        ...(port.nodePort ? { nodePort: Number(port.nodePort) } : {}),
        endpoints: addresses,
      });
    }
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const comment = (text: string): string => `-m comment --comment "${text}"`;
const chainLine = (chain: string): string => `:${chain} - [0:0]`;
const probability = (endpoints: number, index: number): string => (1 / (endpoints - index)).toFixed(PROBABILITY_DECIMALS);

/** A table's part of the restore input: declared chains (which flushes them), then rules and deletions. */
class TableText {
  private readonly chains = new Set<string>();
  private readonly lines: string[] = [];
  constructor(private readonly table: Table) {}
  declare(chain: string): void {
    this.chains.add(chain);
  }
  has(chain: string): boolean {
    return this.chains.has(chain);
  }
  add(chain: string, ...parts: string[]): void {
    this.lines.push(`-A ${chain} ${parts.join(' ')}`);
  }
  delete(chain: string): void {
    this.declare(chain);
    this.lines.push(`-X ${chain}`);
  }
  toString(): string {
    return [`*${this.table}`, ...[...this.chains].map(chainLine), ...this.lines, 'COMMIT'].join('\n');
  }
}

/**
 * The `iptables-restore --noflush` input of one sync: the filter table's REJECTs for services
 * without endpoints, and the nat table's portals, balancing and DNAT chains. Every KUBE chain it
 * touches is declared (flushed) and rewritten; stale KUBE-SVC-/KUBE-SEP- chains are deleted.
 */
export function proxyRules(services: readonly Json[], endpoints: readonly Json[], options: RuleOptions = {}): string {
  const filter = new TableText('filter');
  const nat = new TableText('nat');
  filter.declare(KUBE_SERVICES);
  for (const chain of NAT_CHAINS) nat.declare(chain);
  nat.add(KUBE_POSTROUTING, comment('kubernetes service traffic requiring SNAT'), `-m mark --mark ${MASQUERADE_MARK} -j MASQUERADE`);
  nat.add(KUBE_MARK_MASQ, `-j MARK --set-xmark ${MASQUERADE_MARK}`);

  for (const port of servicePorts(services, endpoints)) {
    const { name, clusterIp, protocol } = port;
    const svcChain = serviceChain(port);
    nat.declare(svcChain);
    const portal = (what: string, source = '') =>
      `${source}-d ${clusterIp}/32 -p ${protocol} ${comment(`${name} ${what}`)} -m ${protocol} --dport ${port.port}`;
    if (options.masqueradeAll) nat.add(KUBE_SERVICES, portal('cluster IP'), `-j ${KUBE_MARK_MASQ}`);
    if (options.clusterCidr) nat.add(KUBE_SERVICES, portal('cluster IP', `! -s ${options.clusterCidr} `), `-j ${KUBE_MARK_MASQ}`);
    nat.add(KUBE_SERVICES, portal('cluster IP'), `-j ${svcChain}`);
    if (port.nodePort) {
      const nodePort = `-p ${protocol} ${comment(name)} -m ${protocol} --dport ${port.nodePort}`;
      nat.add(KUBE_NODEPORTS, nodePort, `-j ${KUBE_MARK_MASQ}`);
      nat.add(KUBE_NODEPORTS, nodePort, `-j ${svcChain}`);
    }
    if (port.endpoints.length === 0) {
      filter.add(KUBE_SERVICES, portal('has no endpoints'), '-j REJECT');
      continue;
    }
    port.endpoints.forEach((endpoint, i, all) => {
      const sepChain = endpointChain(port, endpoint);
      nat.declare(sepChain);
      const balance = i < all.length - 1 ? [`-m statistic --mode random --probability ${probability(all.length, i)}`] : [];
      nat.add(svcChain, comment(name), ...balance, `-j ${sepChain}`);
      // Traffic an endpoint sends to its own service comes back to it: SNAT, or it would answer itself directly.
      nat.add(sepChain, `-s ${endpoint.split(':')[0]}/32`, comment(name), `-j ${KUBE_MARK_MASQ}`);
      nat.add(sepChain, `-p ${protocol}`, comment(name), `-m ${protocol} -j DNAT --to-destination ${endpoint}`);
    });
  }
  // Last: node ports are only tried once no cluster IP matched.
  nat.add(
    KUBE_SERVICES,
    comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain'),
    `-m addrtype --dst-type LOCAL -j ${KUBE_NODEPORTS}`,
  );
  for (const chain of options.existingChains ?? []) if (isPerServiceChain(chain) && !nat.has(chain)) nat.delete(chain);
  return `${filter}\n${nat}\n`;
}

/** The rules that send traffic through kube-proxy's chains, as 1.3 ensures them on every sync. */
export function jumpRules(): JumpRule[] {
  const jump = (table: Table, chain: string, why: string, target: string): JumpRule => ({
    table,
    chain,
    target,
    args: ['-m', 'comment', '--comment', why, '-j', target],
  });
  return [
    jump('filter', 'OUTPUT', 'kubernetes service portals', KUBE_SERVICES),
    jump('nat', 'OUTPUT', 'kubernetes service portals', KUBE_SERVICES),
    jump('nat', 'PREROUTING', 'kubernetes service portals', KUBE_SERVICES),
    jump('nat', 'POSTROUTING', 'kubernetes postrouting rules', KUBE_POSTROUTING),
  ];
}

/** The chains of one table in iptables-save output (which may hold several tables). */
export function savedChains(save: string, table: Table): string[] {
  const chains: string[] = [];
  let inTable = false;
  for (const line of save.split('\n').map((l) => l.trim())) {
    if (line.startsWith('*')) inTable = line === `*${table}`;
    else if (inTable && line.startsWith(':')) chains.push(line.slice(1).split(' ')[0] as string);
  }
  return chains;
}

/**
 * --cleanup-iptables' restore input: flushes and deletes every kube-proxy chain that exists (the
 * jump rules must be gone first). Empty when there is none.
 */
export function cleanupRules(existing: Record<Table, readonly string[]>): string {
  const ours: Record<Table, (chain: string) => boolean> = {
    filter: (chain) => chain === KUBE_SERVICES,
    nat: (chain) => NAT_CHAINS.includes(chain) || isPerServiceChain(chain),
  };
  const tables = (['filter', 'nat'] as const).flatMap((table) => {
    const doomed = existing[table].filter(ours[table]);
    if (doomed.length === 0) return [];
    const text = new TableText(table);
    for (const chain of doomed) text.delete(chain);
    return [String(text)];
  });
  return tables.length ? `${tables.join('\n')}\n` : '';
}
