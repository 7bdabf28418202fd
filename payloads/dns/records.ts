import type { Json } from '../hyperkube/client.js';

/**
 * SkyDNS records as kube2sky 1.15 wrote them into etcd (cluster/addons/dns/kube2sky), and the
 * mapping between DNS names and etcd keys skydns uses (skydns/msg: Path, Domain).
 *
 * For service <svc> in namespace <ns> under domain cluster.local, kube2sky writes:
 *   /skydns/local/cluster/svc/<ns>/<svc>/<hash>               {"host":"<clusterIP>",...}  (A)
 *   /skydns/local/cluster/svc/<ns>/<svc>/_<proto>/_<port>/<hash> {"host":"<svc>.<ns>.svc.cluster.local.","port":N,...}  (SRV, named ports)
 * and for a headless service, the same per ready endpoint address, whose SRV records name the
 * address's own record (<hash>.<svc>.<ns>.svc.cluster.local.). <hash> is FNV-32a of the value, in hex.
 * etcd v2 hides names starting with '_' from listings, so a lookup of the service's name never
 * returns its SRV records; a lookup of _<port>._<proto>.<svc>... reads them by their own path.
 */

/** skydns/msg.Service as kube2sky filled it in (getSkyMsg). */
export interface SkyService {
  host: string;
  port?: number;
  priority?: number;
  weight?: number;
  text?: string;
  ttl?: number;
  targetstrip?: number;
  group?: string;
}

/**
 * The JSON Go's encoding/json made of kube2sky's msg.Service: fields in declaration order, port
 * omitted when 0, and targetstrip always present (its struct tag was malformed, so omitempty never applied).
 */
export function skyMessage(host: string, port = 0): string {
  return JSON.stringify({ host, ...(port ? { port } : {}), priority: 10, weight: 10, ttl: 30, targetstrip: 0 });
}

/** Go's hash/fnv New32a, printed with %x (no leading zeros), as kube2sky's getHash. */
export function fnv32aHex(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16);
}

/** skydns' msg.Path: a DNS name to its etcd key, labels reversed under /skydns ("a.b.c." -> /skydns/c/b/a). */
export function keyForName(qname: string): string {
  const labels = qname.toLowerCase().split('.').filter(Boolean).reverse();
  return ['/skydns', ...labels].join('/');
}

/** skydns' msg.Domain: an etcd key back to its DNS name, with the trailing dot. */
export function nameForKey(key: string): string {
  const labels = key.split('/').filter(Boolean).slice(1).reverse();
  return `${labels.join('.')}.`;
}

/** kube2sky's buildDNSNameString: the last label given comes first ("cluster.local.", "svc", "ns", "name" -> name.ns.svc.cluster.local.). */
function dnsName(...labels: string[]): string {
  return labels.reduce((name, label) => (name ? `${label}.${name}` : label), '');
}

/** The etcd directory holding every record kube2sky owns for a domain: /skydns/local/cluster/svc. */
export function servicesRoot(domain: string): string {
  return keyForName(dnsName(withDot(domain), 'svc'));
}

const withDot = (domain: string) => (domain.endsWith('.') ? domain : `${domain}.`);

/** "None" or unset: kapi.IsServiceIPSet is false and the service is headless. */
const isHeadless = (service: Json) => !service.spec?.clusterIP || service.spec.clusterIP === 'None';

/**
 * kube2sky's buildPortSegmentString: "_<name>._<protocol>" for a named port. The apiserver
 * defaults the protocol to TCP; an object that skipped defaulting gets the same here.
 */
function portSegment(port: Json): string | undefined {
  if (!port.name) return undefined;
  return `_${port.name}._${String(port.protocol || 'TCP').toLowerCase()}`;
}

/**
 * Every etcd key and value kube2sky 1.15 keeps for these services and endpoints (v1 objects, as
 * the apiserver lists them), keyed by etcd path.
 */
export function skydnsRecords(services: Json[], endpoints: Json[], domain: string): Map<string, string> {
  const records = new Map<string, string>();
  const write = (name: string, value: string) => records.set(keyForName(name), value);
  const endpointsByName = new Map(endpoints.map((e) => [`${e.metadata?.namespace}/${e.metadata?.name}`, e]));

  for (const service of services) {
    const { name, namespace } = service.metadata ?? {};
    if (!name || !namespace) continue;
    const subdomain = dnsName(withDot(domain), 'svc', namespace, name);

    if (!isHeadless(service)) {
      const value = skyMessage(service.spec.clusterIP);
      const label = fnv32aHex(value);
      write(dnsName(subdomain, label), value);
      for (const port of (service.spec.ports ?? []) as Json[]) {
        const segment = portSegment(port);
        if (segment) write(dnsName(subdomain, segment, label), skyMessage(subdomain, Number(port.port)));
      }
      continue;
    }

    // Headless: one A record per ready address, and SRV records naming that address's record.
    const subsets = (endpointsByName.get(`${namespace}/${name}`)?.subsets ?? []) as Json[];
    for (const subset of subsets) {
      for (const address of (subset.addresses ?? []) as Json[]) {
        if (!address.ip) continue;
        const value = skyMessage(address.ip);
        const label = fnv32aHex(value);
        const recordName = dnsName(subdomain, label);
        write(recordName, value);
        for (const port of (subset.ports ?? []) as Json[]) {
          const segment = portSegment(port);
          if (segment) write(dnsName(subdomain, segment, label), skyMessage(recordName, Number(port.port)));
        }
      }
    }
  }
  return records;
}

/** A record as skydns reads it back: the JSON value and the key it was found under. */
export interface StoredRecord extends SkyService {
  key: string;
}

/** Parses a value under /skydns; values that are not skydns JSON (skydns skipped them too) give undefined. */
export function parseRecord(key: string, value: string): StoredRecord | undefined {
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as SkyService).host !== 'string') return undefined;
    return { ...(parsed as SkyService), key };
  } catch {
    return undefined;
  }
}
