import { createSocket, type RemoteInfo } from 'node:dgram';
import { realpathSync } from 'node:fs';
import { createServer, isIPv4, isIPv6, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { EtcdV2Client } from '../etcd.js';
import { parseFlagsOrExit } from '../flags.js';
import { keyForName, nameForKey, parseRecord, type StoredRecord } from './records.js';
import {
  CLASS_IN,
  decodeHeader,
  decodeMessage,
  encodeMessage,
  fqdn,
  frameTcp,
  RCODE,
  readTcpFrames,
  TYPE,
  UDP_LIMIT,
  type DnsMessage,
  type ResourceRecord,
} from './wire.js';

/**
 * skydns (the kube-dns-v11 pod's, 2015-10-13-8c72f8c): answers DNS for the cluster domain from
 * the records kube2sky keeps in etcd (/skydns/local/cluster/...). A name is an etcd key or a
 * directory of records; its A records are the records' hosts. SRV records for `_port._proto`
 * names come from the same records. Names outside the domain would be forwarded to -nameservers;
 * the lab's guests have no upstream, so they get SERVFAIL, as skydns gave without nameservers.
 */

/** skydns' default TTL for records that name none. */
const DEFAULT_TTL = 3600;
/** skydns' default priority for records that name none. */
const DEFAULT_PRIORITY = 10;
const VERSION = '2.5.3a';

/** The records at an etcd key and below it; empty when there are none. */
export type RecordLookup = (key: string) => Promise<StoredRecord[]>;

/** etcd lookups remembered for `ttlMs`, so that a burst of queries costs one request per name. */
export function cachedEtcdLookup(etcd: EtcdV2Client, ttlMs = 1000): RecordLookup {
  const cache = new Map<string, { at: number; records: Promise<StoredRecord[]> }>();
  return (key) => {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.at < ttlMs) return hit.records;
    if (cache.size > 1000) for (const [k, entry] of cache) if (now - entry.at >= ttlMs) cache.delete(k);
    const records = etcd.list(key).then((values) =>
      values.flatMap((v) => {
        const record = parseRecord(v.key, v.value);
        if (!record) return [];
        // A key written with an etcd TTL lives no longer than that (skydns' calculateTtl).
        if (v.ttl !== undefined && (!record.ttl || v.ttl < record.ttl)) record.ttl = v.ttl;
        return [record];
      }),
    );
    cache.set(key, { at: now, records });
    records.catch(() => {
      if (cache.get(key)?.records === records) cache.delete(key);
    });
    return records;
  };
}

export interface ResolverConfig {
  /** Lower case, with the trailing dot: cluster.local. */
  domain: string;
  nameservers: string[];
  roundRobin: boolean;
  verbose: boolean;
  log: (message: string) => void;
}

/**
 * The answer skydns gives to a query; undefined for a message that is not a query (dropped).
 * `logged` holds the messages a server logs only once (that it cannot forward).
 */
export async function resolve(
  query: DnsMessage,
  lookup: RecordLookup,
  config: ResolverConfig,
  logged = new Set<string>(),
): Promise<DnsMessage | undefined> {
  if (query.header.qr) return undefined;
  const reply = (rcode: number, answers: ResourceRecord[] = [], additionals: ResourceRecord[] = [], authoritative = true): DnsMessage => ({
    header: { ...query.header, qr: true, aa: authoritative, tc: false, ra: true, rcode },
    questions: query.questions,
    answers,
    authorities: [],
    additionals,
  });
  if (query.header.opcode !== 0) return reply(RCODE.NOTIMP, [], [], false);
  const question = query.questions[0];
  if (!question || query.questions.length !== 1) return reply(RCODE.FORMERR, [], [], false);
  const name = fqdn(question.name);

  if (name !== config.domain && !name.endsWith(`.${config.domain}`)) {
    const reason = config.nameservers.length
      ? `can not forward to ${config.nameservers.join(',')}: forwarding is not part of this stand-in`
      : 'can not forward, no nameservers defined';
    if (!logged.has(reason)) config.log(reason);
    logged.add(reason);
    return reply(RCODE.SERVFAIL, [], [], false);
  }
  if (question.class !== CLASS_IN) return reply(RCODE.REFUSED, [], [], false);

  const addressTypes = [TYPE.A, TYPE.AAAA, TYPE.ANY] as number[];
  // skydns looks up the apex's own addresses under "self", or every record in the domain would answer.
  const lookupName = name === config.domain && addressTypes.includes(question.type) ? `self.${name}` : name;
  let records: StoredRecord[];
  try {
    records = isLookupable(lookupName) ? await lookup(keyForName(lookupName)) : [];
  } catch (error) {
    config.log(`got error from backend: ${(error as Error).message}`);
    return reply(RCODE.SERVFAIL);
  }
  if (!records.length) return reply(RCODE.NXDOMAIN);

  let answers: ResourceRecord[] = [];
  let additionals: ResourceRecord[] = [];
  if (addressTypes.includes(question.type)) {
    answers = addressRecords(question.name, records, question.type);
    if (config.roundRobin) rotate(answers);
  } else if (question.type === TYPE.SRV) {
    ({ answers, additionals } = await srvRecords(question.name, records, lookup, config.domain));
  }
  return reply(RCODE.NOERROR, sameTtl(dedup(answers)), dedup(additionals));
}

/** Labels skydns could have a key for; anything else (an empty label, a slash, a '?') cannot be in etcd. */
const isLookupable = (name: string) =>
  name
    .split('.')
    .slice(0, -1)
    .every((label) => /^[a-z0-9_-]+$/.test(label));

const ttlOf = (record: StoredRecord) => record.ttl || DEFAULT_TTL;

/**
 * A and AAAA records for the records whose host is an address. skydns made a CNAME of a host that
 * is a name; kube2sky writes those only as SRV records, under '_' directories that etcd listings
 * never show, so they are left out here.
 */
function addressRecords(owner: string, records: StoredRecord[], type: number): ResourceRecord[] {
  return records.flatMap((record): ResourceRecord[] => {
    const ttl = ttlOf(record);
    if (isIPv4(record.host) && type !== TYPE.AAAA)
      return [{ name: owner, type: TYPE.A, class: CLASS_IN, ttl, data: { kind: 'A', address: record.host } }];
    if (isIPv6(record.host) && type !== TYPE.A)
      return [{ name: owner, type: TYPE.AAAA, class: CLASS_IN, ttl, data: { kind: 'AAAA', address: record.host } }];
    return [];
  });
}

/**
 * SRV records as skydns made them: a record with an address as host gets a target named after
 * its key (with the address as additional A record); one with a name as host targets that name
 * (with its addresses when it is in the domain). Weights are shares of 100 within a priority.
 */
async function srvRecords(
  owner: string,
  records: StoredRecord[],
  lookup: RecordLookup,
  domain: string,
): Promise<{ answers: ResourceRecord[]; additionals: ResourceRecord[] }> {
  const totals = new Map<number, number>();
  for (const r of records)
    totals.set(r.priority || DEFAULT_PRIORITY, (totals.get(r.priority || DEFAULT_PRIORITY) ?? 0) + (r.weight || 100));
  const answers: ResourceRecord[] = [];
  const additionals: ResourceRecord[] = [];
  for (const record of records) {
    const priority = record.priority || DEFAULT_PRIORITY;
    const weight = Math.floor((100 / (totals.get(priority) as number)) * (record.weight || 100));
    const isAddress = isIPv4(record.host) || isIPv6(record.host);
    const target = stripLabels(isAddress ? nameForKey(record.key) : fqdn(record.host), record.targetstrip ?? 0);
    const ttl = ttlOf(record);
    answers.push({
      name: owner,
      type: TYPE.SRV,
      class: CLASS_IN,
      ttl,
      data: { kind: 'SRV', priority, weight, port: record.port ?? 0, target },
    });
    if (isAddress) additionals.push(...addressRecords(target, [record], TYPE.ANY));
    else if (target.endsWith(`.${domain}`) && isLookupable(target))
      additionals.push(...addressRecords(target, await lookup(keyForName(target)).catch(() => []), TYPE.ANY));
  }
  return { answers, additionals };
}

/** msg.Service's TargetStrip: drop that many labels from the left, unless that would leave nothing. */
function stripLabels(name: string, count: number): string {
  const labels = name.split('.').filter(Boolean);
  return count > 0 && count < labels.length ? `${labels.slice(count).join('.')}.` : name;
}

function dedup(records: ResourceRecord[]): ResourceRecord[] {
  const seen = new Set<string>();
  return records.filter((r) => {
    const key = JSON.stringify([r.name.toLowerCase(), r.type, r.data]);
    return !seen.has(key) && seen.add(key);
  });
}

/** skydns gives every record of an answer the smallest TTL among them. */
function sameTtl(records: ResourceRecord[]): ResourceRecord[] {
  const ttl = Math.min(...records.map((r) => r.ttl));
  return records.map((r) => ({ ...r, ttl }));
}

/** -round-robin: a different first address each time. */
function rotate(records: ResourceRecord[]): void {
  if (records.length > 1) records.push(...records.splice(0, Math.floor(Math.random() * records.length)));
}

export interface SkyDnsOptions extends Partial<Omit<ResolverConfig, 'domain'>> {
  etcd: EtcdV2Client;
  domain: string;
  host: string;
  port: number;
  /** How long an etcd lookup is reused (1 s). */
  cacheMs?: number;
}

export interface SkyDnsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Serves DNS on UDP and TCP at host:port. */
export async function startSkyDns(options: SkyDnsOptions): Promise<SkyDnsServer> {
  const config: ResolverConfig = {
    domain: fqdn(options.domain),
    nameservers: options.nameservers ?? [],
    roundRobin: options.roundRobin ?? false,
    verbose: options.verbose ?? false,
    log: options.log ?? goLog,
  };
  const lookup = cachedEtcdLookup(options.etcd, options.cacheMs ?? 1000);
  const loggedOnce = new Set<string>();

  /** The answer's bytes for a query's bytes; undefined when there is nothing to send back. */
  const answer = async (packet: Buffer, transport: 'udp' | 'tcp', from: string): Promise<Buffer | undefined> => {
    let query: DnsMessage;
    try {
      query = decodeMessage(packet);
    } catch {
      if (packet.length < 12) return undefined;
      const header = decodeHeader(packet);
      if (header.qr) return undefined;
      const formErr = { ...header, qr: true, aa: false, tc: false, ra: true, rcode: RCODE.FORMERR };
      return encodeMessage({ header: formErr, questions: [], answers: [], authorities: [], additionals: [] });
    }
    const question = query.questions[0];
    if (config.verbose && question) config.log(`received DNS Request for "${question.name}" from "${from}" with type ${question.type}`);
    const response = await resolve(query, lookup, config, loggedOnce).catch((error: Error) => {
      config.log(`failure to answer ${question?.name}: ${error.message}`);
      return {
        ...query,
        header: { ...query.header, qr: true, ra: true, rcode: RCODE.SERVFAIL },
        answers: [],
        authorities: [],
        additionals: [],
      };
    });
    if (!response) return undefined;
    const wire = encodeMessage(response);
    if (wire.length <= (transport === 'udp' ? udpLimit(query) : 0xffff)) return wire;
    // Too big for the datagram: say so (TC), and the client asks again over TCP.
    return encodeMessage({ ...response, header: { ...response.header, tc: true }, answers: [], authorities: [], additionals: [] });
  };

  const udp = createSocket(isIPv6(options.host) ? 'udp6' : 'udp4');
  udp.on('message', (packet: Buffer, peer: RemoteInfo) => {
    void answer(packet, 'udp', `${peer.address}:${peer.port}`).then((out) => out && udp.send(out, peer.port, peer.address));
  });
  const tcp = createServer((socket: Socket) =>
    serveTcpConnection(socket, (packet) => answer(packet, 'tcp', `${socket.remoteAddress}:${socket.remotePort}`)),
  );

  await new Promise<void>((resolveBind, reject) => {
    udp.once('error', reject);
    udp.bind(options.port, options.host, () => {
      udp.off('error', reject);
      resolveBind();
    });
  });
  const port = udp.address().port;
  await new Promise<void>((resolveListen, reject) => {
    tcp.once('error', (error) => {
      udp.close();
      reject(error);
    });
    tcp.listen(port, options.host, () => resolveListen());
  });
  udp.on('error', (error) => config.log(`udp: ${error.message}`));

  return {
    host: options.host,
    port,
    close: () =>
      new Promise<void>((resolveClose) => {
        udp.close();
        tcp.close(() => resolveClose());
      }),
  };
}

/** A query's UDP payload limit: 512, or more when it carries an EDNS0 OPT record saying so. */
function udpLimit(query: DnsMessage): number {
  const opt = query.additionals.find((r) => r.type === TYPE.OPT);
  return Math.max(UDP_LIMIT, opt?.class ?? 0);
}

/** One TCP connection: any number of length-framed queries, answered in turn; idle connections are closed. */
function serveTcpConnection(socket: Socket, answer: (packet: Buffer) => Promise<Buffer | undefined>): void {
  let pending: Buffer = Buffer.alloc(0);
  let queue = Promise.resolve();
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    const { messages, rest } = readTcpFrames(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const message of messages) {
      queue = queue.then(async () => {
        const out = await answer(message);
        if (out && !socket.destroyed) socket.write(frameTcp(out));
      });
    }
  });
}

/** Go's log package, as skydns logged: "2016/05/19 10:00:00 skydns: message". */
function goLog(message: string): void {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}/${pad(now.getMonth() + 1)}/${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
  process.stderr.write(`${stamp} skydns: ${message}\n`);
}

/** log.Fatalf: the message, exit 1. */
function goFatal(message: string): never {
  goLog(message);
  process.exit(1);
}

/** net.SplitHostPort plus skydns' validateHostPort: an IP address and a port in 1..65535. */
export function parseHostPort(hostPort: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(hostPort);
  if (!match) throw new Error(`address ${hostPort}: missing port in address`);
  const host = (match[1] ?? match[2]) as string;
  const port = Number(match[3]);
  if (!isIPv4(host) && !isIPv6(host)) throw new Error(`bad IP address: ${host}`);
  if (port < 1 || port > 65535) throw new Error(`bad port number ${match[3]}`);
  return { host, port };
}

async function main(argv: string[]): Promise<void> {
  const env = process.env;
  const { flags } = parseFlagsOrExit('skydns', argv, {
    domain: env.SKYDNS_DOMAIN || 'skydns.local.',
    addr: env.SKYDNS_ADDR || '127.0.0.1:53',
    nameservers: env.SKYDNS_NAMESERVERS || '',
    'no-rec': false,
    machines: env.ETCD_MACHINES || 'http://127.0.0.1:4001',
    dnssec: '',
    local: '',
    'tls-key': env.ETCD_TLSKEY || '',
    'tls-pem': env.ETCD_TLSPEM || '',
    'ca-cert': env.ETCD_CACERT || '',
    rtimeout: '2s',
    'round-robin': true,
    'ns-rotate': true,
    discover: false,
    stubzones: false,
    verbose: false,
    systemd: false,
    version: false,
    hostmaster: 'hostmaster@skydns.local.',
    scache: '10000',
    rcache: '0',
    'rcache-ttl': '60',
  });
  if (flags.version) {
    process.stdout.write(`skydns server version: ${VERSION}\n`);
    process.exit(0);
  }
  const nameservers = flags.nameservers ? flags.nameservers.split(',') : [];
  for (const nameserver of nameservers) {
    try {
      parseHostPort(nameserver);
    } catch (error) {
      goFatal(`nameserver is invalid: ${(error as Error).message}`);
    }
  }
  let addr: { host: string; port: number };
  try {
    addr = parseHostPort(flags.addr);
  } catch (error) {
    goFatal(`addr is invalid: ${(error as Error).message}`);
  }
  const domain = fqdn(flags.domain);
  await startSkyDns({
    etcd: new EtcdV2Client(flags.machines.split(',')),
    domain,
    ...addr,
    nameservers: flags['no-rec'] ? [] : nameservers,
    roundRobin: flags['round-robin'],
    verbose: flags.verbose,
  }).catch((error: Error) => goFatal(error.message));
  for (const transport of ['tcp', 'udp']) goLog(`ready for queries on ${domain} for ${transport}://${flags.addr} [rcache ${flags.rcache}]`);
}

const invokedDirectly = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
  main(process.argv.slice(2)).catch((error: Error) => goFatal(error.message));
}
