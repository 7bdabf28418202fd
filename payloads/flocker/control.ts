/**
 * flocker-control: the lab's emulated Flocker control service (Flocker 1.14.0 cannot be installed
 * on today's systems). It keeps the cluster's dataset configuration and leases, persisted in
 * `<data-path>/current_configuration.json`, serves the REST API under /v1 on --port (4523) and
 * takes the dataset agents' state reports on --agent-port (4524).
 *
 * Both ports are HTTPS with mutual TLS against `cluster.crt`, as flocker/ca/_validation.py set
 * them up: a client without a certificate signed by the cluster CA fails the TLS handshake; the
 * REST API takes only `user-*` certificates and the agent port only `node-*` ones.
 *
 * Deviation from real Flocker: the agents spoke AMP (a Twisted RPC protocol: NodeStateCommand up,
 * ClusterStatusCommand down) on 4524. The lab's agents speak JSON over HTTPS instead: they POST
 * `/agent/v1/state` with `{node_uuid, host, era, datasets: [{dataset_id, maximum_size, path?}]}`
 * and get `{configuration: {datasets}, leases}` back. The port, the TLS policy and what the
 * reports mean are Flocker's; only the framing differs. Also: the configuration file is the lab's
 * own JSON format (Flocker's was a versioned pyrsistent serialization), the node state lives in
 * memory as Flocker's did, and the agent's datasets carry one extra key, `origin` (see types.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { glog, parseFlagsOrExit } from '../flags.js';
import {
  DEFAULT_MAXIMUM_SIZE,
  SCHEMA_ERROR_DESCRIPTION,
  validateAgentState,
  validateDatasetCreate,
  validateDatasetUpdate,
  validateLease,
} from './schema.js';
import type { AgentConfiguration, AgentDataset, AgentStateReport, DatasetConfiguration, DatasetState, Lease, NodeInfo } from './types.js';

export const DEFAULT_VERSION = '1.14.0';
export const VERSION_FILE = '/opt/lab/flocker-version';
/**
 * EXPIRATION_TIME of flocker/control/_clusterstate.py (1.13/1.14): a node's reported state is
 * wiped when nothing came from its agent for 120 s (checked every second); its agent's reports
 * and 30 s pings count as activity. A lost connection wipes nothing by itself.
 */
export const STATE_TTL_MS = 120_000;
const MAX_BODY = 1 << 20;

// The descriptions flocker/control/httpapi.py and flocker/restapi/_error.py answered with.
const DECODING_ERROR = 'The request body could not be decoded according to the value of the\nContent-Type header.';
const ILLEGAL_CONTENT_TYPE = 'The request Content-Type was not a supported type (application/json).';
const DATASET_ID_COLLISION = 'The provided dataset_id is already in use.';
const DATASET_NOT_FOUND = 'Dataset not found.';
const DATASET_DELETED = 'The dataset has been deleted.';
const LEASE_NOT_FOUND = 'Lease not found.';
const LEASE_HELD = 'Lease already held.';
const NODE_BY_ERA_NOT_FOUND = 'No node found with given era.';
const IF_MATCHES_HEADER = 'x-if-configuration-matches';

export interface ControlServiceOptions {
  apiPort: number;
  agentPort: number;
  /** Address to listen on (both ports); all IPv4 addresses by default, as Twisted's tcp: endpoints. */
  host?: string;
  dataPath: string;
  certificatesDirectory: string;
  version?: string;
  stateTtlMs?: number;
  log?: (line: string) => void;
}

export interface ControlService {
  apiPort: number;
  agentPort: number;
  close(): Promise<void>;
}

/** The version GET /v1/version reports: $FLOCKER_VERSION, else the image's version file, else 1.14.0. */
export function flockerVersion(): string {
  if (process.env.FLOCKER_VERSION) return process.env.FLOCKER_VERSION;
  try {
    return readFileSync(VERSION_FILE, 'utf8').trim() || DEFAULT_VERSION;
  } catch {
    return DEFAULT_VERSION;
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

const badRequest = (status: number, description: string): HttpError => new HttpError(status, { description });

interface DatasetRecord {
  dataset_id: string;
  primary: string;
  metadata: Record<string, string>;
  deleted: boolean;
  maximum_size: number | null;
  /** The node the dataset was created for (where a loopback volume is made). */
  origin: string;
}

interface LeaseRecord {
  dataset_id: string;
  node_uuid: string;
  /** Epoch milliseconds, or null for a lease that never expires. */
  expiration: number | null;
}

/** The desired configuration: datasets and leases, saved atomically on every change. */
export class ConfigurationStore {
  readonly datasets = new Map<string, DatasetRecord>();
  readonly leases = new Map<string, LeaseRecord>();
  readonly file: string;

  constructor(dataPath: string) {
    this.file = join(dataPath, 'current_configuration.json');
  }

  /** Reads the saved configuration, if any. A file that cannot be read is an error: never start empty over it. */
  load(): void {
    if (!existsSync(this.file)) return;
    let saved: { datasets?: DatasetRecord[]; leases?: { dataset_id: string; node_uuid: string; expiration: string | null }[] };
    try {
      saved = JSON.parse(readFileSync(this.file, 'utf8')) as typeof saved;
    } catch (error) {
      throw new Error(`cannot read the saved configuration ${this.file}: ${(error as Error).message}`);
    }
    for (const d of saved.datasets ?? []) this.datasets.set(d.dataset_id, { ...d, origin: d.origin ?? d.primary });
    for (const l of saved.leases ?? [])
      this.leases.set(l.dataset_id, {
        dataset_id: l.dataset_id,
        node_uuid: l.node_uuid,
        expiration: l.expiration === null ? null : Date.parse(l.expiration),
      });
  }

  private serialize(): string {
    return JSON.stringify(
      {
        version: 1,
        datasets: [...this.datasets.values()],
        leases: [...this.leases.values()].map((l) => ({
          ...l,
          expiration: l.expiration === null ? null : new Date(l.expiration).toISOString(),
        })),
      },
      null,
      2,
    );
  }

  /** Temp file, fsync, rename: a crash leaves the old configuration or the new one, never half of one. */
  save(): void {
    mkdirSync(join(this.file, '..'), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, `${this.serialize()}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
  }

  /** X-Configuration-Tag: a hash of the whole configuration, so any change changes it. */
  tag(): string {
    return createHash('md5').update(this.serialize()).digest('hex');
  }

  /** Drops expired leases (Flocker's lease expiry loop); true when some were. */
  pruneLeases(now: number): boolean {
    let changed = false;
    for (const [id, lease] of this.leases)
      if (lease.expiration !== null && lease.expiration <= now) {
        this.leases.delete(id);
        changed = true;
      }
    return changed;
  }

  leaseList(now: number): Lease[] {
    return [...this.leases.values()].map((l) => leaseResponse(l, now));
  }
}

function datasetResponse(d: DatasetRecord): DatasetConfiguration {
  // api_dataset_from_dataset_and_node: maximum_size only when the dataset has one.
  const result: DatasetConfiguration = { dataset_id: d.dataset_id, primary: d.primary, metadata: { ...d.metadata }, deleted: d.deleted };
  if (d.maximum_size !== null) result.maximum_size = d.maximum_size;
  return result;
}

function leaseResponse(l: LeaseRecord, now: number): Lease {
  return { dataset_id: l.dataset_id, node_uuid: l.node_uuid, expires: l.expiration === null ? null : (l.expiration - now) / 1000 };
}

interface NodeRecord {
  uuid: string;
  host: string;
  era: string;
  reportedAt: number;
  datasets: AgentStateReport['datasets'];
  expired: boolean;
}

/** What the agents report, in memory (as Flocker's ClusterStateService kept it). */
export class ClusterState {
  readonly nodes = new Map<string, NodeRecord>();
  constructor(readonly ttlMs: number) {}

  report(report: AgentStateReport, now: number): NodeRecord | undefined {
    const previous = this.nodes.get(report.node_uuid);
    this.nodes.set(report.node_uuid, {
      uuid: report.node_uuid,
      host: report.host,
      era: report.era.toLowerCase(),
      reportedAt: now,
      datasets: report.datasets,
      expired: false,
    });
    return previous;
  }

  fresh(node: NodeRecord, now: number): boolean {
    return now - node.reportedAt <= this.ttlMs;
  }

  datasets(now: number): DatasetState[] {
    const result = new Map<string, DatasetState>();
    for (const node of this.nodes.values()) {
      // A wiped node reports nothing: its volumes may be gone with it.
      if (node.expired || !this.fresh(node, now)) continue;
      for (const d of node.datasets) {
        const entry: DatasetState = { dataset_id: d.dataset_id };
        if (d.path !== undefined) entry.primary = node.uuid;
        if (d.maximum_size !== null && d.maximum_size !== undefined) entry.maximum_size = d.maximum_size;
        if (d.path !== undefined) entry.path = d.path;
        const previous = result.get(d.dataset_id);
        if (!previous || (entry.path !== undefined && previous.path === undefined)) result.set(d.dataset_id, entry);
      }
    }
    return [...result.values()];
  }

  /** The nodes whose state is not wiped: a node whose agent went silent drops out after the expiry. */
  nodeList(now: number): NodeInfo[] {
    return [...this.nodes.values()].filter((n) => !n.expired && this.fresh(n, now)).map((n) => ({ host: n.host, uuid: n.uuid }));
  }

  /** Eras are never wiped (UpdateNodeStateEra has no wiper): a silent node is still found by its era. */
  byEra(era: string): string | undefined {
    return [...this.nodes.values()].find((n) => n.era === era.toLowerCase())?.uuid;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(badRequest(413, 'The request body is too large.'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** flocker/restapi's `structured`: JSON only, decoded, checked against the schema. */
function decodeJson(req: IncomingMessage, body: Buffer, validate: (value: unknown) => string[]): Record<string, unknown> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType !== 'application/json') throw badRequest(400, ILLEGAL_CONTENT_TYPE);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest(400, DECODING_ERROR);
  }
  const errors = validate(value);
  if (errors.length) throw new HttpError(400, { description: SCHEMA_ERROR_DESCRIPTION, errors });
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function peerCommonName(socket: TLSSocket): string {
  const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
  return (Array.isArray(cn) ? cn[0] : cn) ?? '';
}

/** Parses Twisted's server endpoint strings as Flocker's --port took them: tcp:4523, tcp:port=4523:interface=10.0.0.1. */
export function parseEndpoint(text: string): { port: number; host?: string } {
  const parts = text.split(':');
  if (/^\d+$/.test(text)) return { port: Number(text) };
  if (parts[0] !== 'tcp') throw new Error(`unsupported endpoint ${JSON.stringify(text)} (expected tcp:PORT)`);
  let port: number | undefined;
  let host: string | undefined;
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    const [key, value] = eq < 0 ? ['port', part] : [part.slice(0, eq), part.slice(eq + 1)];
    if (key === 'port' && /^\d+$/.test(value)) port = Number(value);
    else if (key === 'interface') host = value;
    else if (key !== 'backlog') throw new Error(`unsupported endpoint ${JSON.stringify(text)}: ${part}`);
  }
  if (port === undefined || port > 65535) throw new Error(`endpoint ${JSON.stringify(text)} has no valid port`);
  return { port, ...(host ? { host } : {}) };
}

/** What one request brings a route: the path's captures, the decoded request, the peer's certificate UUID. */
interface Call {
  req: IncomingMessage;
  body: Buffer;
  params: string[];
  /** The client certificate's common name after its prefix (user- or node-), lower case. */
  peer: string;
  now: number;
}

/** A status, a JSON body and extra headers. */
type Answer = [number, unknown, Record<string, string>?];

/** One route of a port's table: the method, the whole path as a pattern (its groups are `params`), the handler. */
interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: RegExp;
  answer: (call: Call) => Answer;
}

/** The first route whose path and method match answers; a known path with another method is a 405, as Klein said. */
function dispatch(routes: readonly Route[], method: string, path: string, call: Omit<Call, 'params'>): Answer {
  const matching = routes.filter((r) => r.path.test(path));
  if (!matching.length) throw badRequest(404, `No such resource: ${path}`);
  const route = matching.find((r) => r.method === method);
  if (!route) throw badRequest(405, `Method ${method} not allowed on ${path}.`);
  const params = (route.path.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p ?? ''));
  return route.answer({ ...call, params });
}

/** The control service's model behind both ports: the persisted configuration and the agents' state. */
class ControlApi {
  constructor(
    readonly store: ConfigurationStore,
    readonly state: ClusterState,
    readonly version: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Expired leases go from the configuration; a node silent past the state's expiry has its state wiped. */
  prune(now = Date.now()): void {
    if (this.store.pruneLeases(now)) this.store.save();
    for (const node of this.state.nodes.values())
      if (!node.expired && !this.state.fresh(node, now)) {
        node.expired = true;
        this.log(
          `node ${node.uuid} (${node.host}): nothing from its agent for ${Math.round(this.state.ttlMs / 1000)} s; its state is wiped`,
        );
      }
  }

  /** X-If-Configuration-Matches: a write only against the configuration the client last saw. */
  private checkTag(req: IncomingMessage): void {
    const header = req.headers[IF_MATCHES_HEADER];
    if (header === undefined) return;
    const wanted = (Array.isArray(header) ? header : header.split(',')).map((t) => t.trim());
    const tag = this.store.tag();
    if (!wanted.includes(tag)) throw badRequest(412, `Tag doesn't match. Required: ${wanted[0]}, current: ${tag}`);
  }

  private dataset(id: string): DatasetRecord {
    const dataset = this.store.datasets.get(id);
    if (!dataset) throw badRequest(404, DATASET_NOT_FOUND);
    return dataset;
  }

  listDatasets(): Answer {
    return [200, [...this.store.datasets.values()].map(datasetResponse), { 'X-Configuration-Tag': this.store.tag() }];
  }

  createDataset({ req, body }: Call): Answer {
    this.checkTag(req);
    const input = decodeJson(req, body, validateDatasetCreate);
    const id = ((input.dataset_id as string | undefined) ?? randomUUID()).toLowerCase();
    if (this.store.datasets.has(id)) throw badRequest(409, DATASET_ID_COLLISION);
    const primary = (input.primary as string).toLowerCase();
    const dataset: DatasetRecord = {
      dataset_id: id,
      primary,
      metadata: (input.metadata as Record<string, string> | undefined) ?? {},
      deleted: false,
      maximum_size: input.maximum_size === undefined ? DEFAULT_MAXIMUM_SIZE : (input.maximum_size as number | null),
      origin: primary,
    };
    this.store.datasets.set(id, dataset);
    this.store.save();
    this.log(`dataset ${id}: created for node ${primary}`);
    return [201, datasetResponse(dataset)];
  }

  /** A new primary moves the dataset (the only update Flocker's API took). */
  updateDataset({ req, body, params: [id = ''] }: Call): Answer {
    this.checkTag(req);
    const input = decodeJson(req, body, validateDatasetUpdate);
    const dataset = this.dataset(id);
    if (dataset.deleted) throw badRequest(405, DATASET_DELETED);
    if (typeof input.primary === 'string' && input.primary.toLowerCase() !== dataset.primary) {
      const from = dataset.primary;
      dataset.primary = input.primary.toLowerCase();
      this.store.save();
      this.log(`dataset ${id}: moved from node ${from} to node ${dataset.primary}`);
    }
    return [200, datasetResponse(dataset)];
  }

  deleteDataset({ req, params: [id = ''] }: Call): Answer {
    this.checkTag(req);
    const dataset = this.dataset(id);
    if (!dataset.deleted) {
      dataset.deleted = true;
      this.store.save();
      this.log(`dataset ${id}: deleted`);
    }
    return [200, datasetResponse(dataset)];
  }

  nodeByEra({ params: [era = ''] }: Call): Answer {
    const uuid = this.state.byEra(era);
    if (!uuid) throw badRequest(404, NODE_BY_ERA_NOT_FOUND);
    return [200, { uuid }];
  }

  acquireLease({ req, body, now }: Call): Answer {
    const input = decodeJson(req, body, validateLease);
    const id = (input.dataset_id as string).toLowerCase();
    const node = (input.node_uuid as string).toLowerCase();
    const expires = input.expires as number | null;
    const existing = this.store.leases.get(id);
    if (existing && existing.node_uuid !== node) throw badRequest(409, LEASE_HELD);
    const lease: LeaseRecord = { dataset_id: id, node_uuid: node, expiration: expires === null ? null : now + expires * 1000 };
    this.store.leases.set(id, lease);
    this.store.save();
    this.log(
      `lease on dataset ${id} ${existing ? 'renewed' : 'acquired'} for node ${node} (${expires === null ? 'no expiry' : `${expires} s`})`,
    );
    return [existing ? 200 : 201, leaseResponse(lease, now)];
  }

  releaseLease({ params: [dataset = ''], now }: Call): Answer {
    const id = dataset.toLowerCase();
    const lease = this.store.leases.get(id);
    if (!lease) throw badRequest(404, LEASE_NOT_FOUND);
    this.store.leases.delete(id);
    this.store.save();
    this.log(`lease on dataset ${id} released`);
    return [200, leaseResponse(lease, now)];
  }

  /** The agents' port: a state report in (from the node its certificate names), the whole configuration out. */
  agentState({ req, body, peer, now }: Call): Answer {
    const report = decodeJson(req, body, validateAgentState) as unknown as AgentStateReport;
    report.node_uuid = report.node_uuid.toLowerCase();
    if (report.node_uuid !== peer)
      throw badRequest(403, `node_uuid ${report.node_uuid} does not match the client certificate (CN=node-${peer}).`);
    const previous = this.state.report(report, now);
    if (!previous || previous.expired || previous.host !== report.host || previous.era !== report.era.toLowerCase())
      this.log(`node ${report.node_uuid} reporting from ${report.host} (era ${report.era}), ${report.datasets.length} dataset(s)`);
    this.prune(now);
    const configuration: AgentConfiguration = {
      datasets: [...this.store.datasets.values()].map((d): AgentDataset => ({ ...datasetResponse(d), origin: d.origin })),
      leases: this.store.leaseList(now),
    };
    return [200, { configuration: { datasets: configuration.datasets }, leases: configuration.leases }];
  }
}

/** The REST API (port 4523), as flocker/control/httpapi.py laid it out. */
const apiRoutes = (api: ControlApi): Route[] => [
  { method: 'GET', path: /^\/v1\/version$/, answer: () => [200, { flocker: api.version }] },
  { method: 'GET', path: /^\/v1\/configuration\/datasets$/, answer: () => api.listDatasets() },
  { method: 'POST', path: /^\/v1\/configuration\/datasets$/, answer: (call) => api.createDataset(call) },
  { method: 'POST', path: /^\/v1\/configuration\/datasets\/([^/]+)$/, answer: (call) => api.updateDataset(call) },
  { method: 'DELETE', path: /^\/v1\/configuration\/datasets\/([^/]+)$/, answer: (call) => api.deleteDataset(call) },
  { method: 'GET', path: /^\/v1\/state\/datasets$/, answer: ({ now }) => [200, api.state.datasets(now)] },
  { method: 'GET', path: /^\/v1\/state\/nodes$/, answer: ({ now }) => [200, api.state.nodeList(now)] },
  { method: 'GET', path: /^\/v1\/state\/nodes\/by_era\/([^/]+)$/, answer: (call) => api.nodeByEra(call) },
  { method: 'GET', path: /^\/v1\/configuration\/leases$/, answer: ({ now }) => [200, api.store.leaseList(now)] },
  { method: 'POST', path: /^\/v1\/configuration\/leases$/, answer: (call) => api.acquireLease(call) },
  { method: 'DELETE', path: /^\/v1\/configuration\/leases\/([^/]+)$/, answer: (call) => api.releaseLease(call) },
];

/** The agents' port (4524): JSON state reports instead of Flocker's AMP (see the top of this file). */
const agentRoutes = (api: ControlApi): Route[] => [
  { method: 'POST', path: /^\/agent\/v1\/state$/, answer: (call) => api.agentState(call) },
];

/** Starts both servers; ports 0 pick free ones (the real ports come back). */
export async function startControlService(options: ControlServiceOptions): Promise<ControlService> {
  const log = options.log ?? ((line: string) => glog('I', 'control', line));
  const dir = options.certificatesDirectory;
  const files = { ca: 'cluster.crt', cert: 'control-service.crt', key: 'control-service.key' };
  const missing = Object.values(files).filter((f) => !existsSync(join(dir, f)));
  if (missing.length)
    throw new Error(
      `missing certificate files in ${dir}: ${missing.join(', ')} (create them with flocker-ca, as the Flocker install guide says)`,
    );
  const tlsOptions = {
    ca: readFileSync(join(dir, files.ca)),
    cert: readFileSync(join(dir, files.cert)),
    key: readFileSync(join(dir, files.key)),
  };

  const store = new ConfigurationStore(options.dataPath);
  store.load();
  mkdirSync(options.dataPath, { recursive: true });
  const api = new ControlApi(store, new ClusterState(options.stateTtlMs ?? STATE_TTL_MS), options.version ?? flockerVersion(), log);

  const handler =
    (name: string, prefix: string, routes: readonly Route[]) =>
    async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const method = req.method ?? 'GET';
      const path = new URL(req.url ?? '/', 'https://control').pathname;
      try {
        const cn = peerCommonName(req.socket as TLSSocket);
        // Already refused at connection time; checked again so no request can slip through.
        if (!cn.startsWith(prefix)) throw badRequest(403, 'The user is not authorized to do this operation.');
        const body = method === 'GET' || method === 'DELETE' ? Buffer.alloc(0) : await readBody(req);
        const now = Date.now();
        api.prune(now);
        const [status, result, headers] = dispatch(routes, method, path, { req, body, peer: cn.slice(prefix.length).toLowerCase(), now });
        send(res, status, result, headers);
      } catch (error) {
        if (error instanceof HttpError) {
          send(res, error.status, error.body);
          return;
        }
        // flocker/restapi's _logging: the failure is logged, the client gets an incident identifier.
        const incident = `${randomUUID()},/1`;
        log(`${name}: ${method} ${path} failed (incident ${incident}): ${(error as Error).stack ?? String(error)}`);
        if (!res.headersSent) send(res, 500, incident);
        else res.destroy();
      }
    };

  const mtlsServer = (name: string, prefix: string, routes: readonly Route[]): Server => {
    const server = createServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true }, handler(name, prefix, routes));
    // Clients keep their connection between requests (agents report every few seconds, the
    // kubelet polls every 5 s): a new handshake with 4096-bit keys each time costs both ends
    // dearly under emulation, and Node's default of 5 s is shorter than a slow round.
    server.keepAliveTimeout = 65_000;
    server.on('secureConnection', (socket: TLSSocket) => {
      const cn = peerCommonName(socket);
      if (!cn.startsWith(prefix)) {
        // Flocker refused a certificate with the wrong kind of common name in its OpenSSL verify
        // callback, inside the handshake. Node offers no per-certificate hook there, so the
        // connection is closed right after the handshake, before any request is read.
        log(
          `${name}: refused ${socket.remoteAddress ?? 'a client'}: certificate CN ${JSON.stringify(cn)} does not start with ${JSON.stringify(prefix)}`,
        );
        socket.destroy();
      }
    });
    server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      // A connection closed before any handshake (a port probe) is not a refused client.
      if (error.code === 'ECONNRESET') return;
      log(`${name}: refused ${socket.remoteAddress ?? 'a client'} in the TLS handshake: ${error.message}`);
    });
    return server;
  };

  const apiServer = mtlsServer('REST API', 'user-', apiRoutes(api));
  const agentServer = mtlsServer('agent port', 'node-', agentRoutes(api));
  const listen = (server: Server, port: number, what: string): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', (error) =>
        reject(new Error(`cannot listen on ${options.host ?? '0.0.0.0'}:${port} (${what}): ${error.message}`)),
      );
      server.listen(port, options.host ?? '0.0.0.0', () => resolve((server.address() as AddressInfo).port));
    });
  const close = async (): Promise<void> => {
    clearInterval(timer);
    await Promise.all(
      [apiServer, agentServer].map(
        (server) =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  };
  const timer = setInterval(() => api.prune(), 1000);
  timer.unref();
  try {
    const apiPort = await listen(apiServer, options.apiPort, 'REST API');
    const agentPort = await listen(agentServer, options.agentPort, 'agent port');
    log(`Flocker ${api.version} control service: REST API on port ${apiPort}, agents on port ${agentPort}, configuration in ${store.file}`);
    return { apiPort, agentPort, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** flocker-control [--port tcp:4523] [--agent-port tcp:4524] [--data-path DIR] [--certificates-directory DIR]. */
export async function main(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('flocker-control', argv, {
    port: 'tcp:4523',
    'agent-port': 'tcp:4524',
    'data-path': '/var/lib/flocker',
    'certificates-directory': '/etc/flocker',
    // Flocker's systemd unit ran it with --journald; the lab logs to stderr either way.
    journald: false,
  });
  let apiEndpoint: { port: number; host?: string };
  let agentEndpoint: { port: number; host?: string };
  try {
    apiEndpoint = parseEndpoint(flags.port);
    agentEndpoint = parseEndpoint(flags['agent-port']);
  } catch (error) {
    process.stderr.write(`flocker-control: ${(error as Error).message}\n`);
    process.exit(2);
  }
  try {
    const service = await startControlService({
      apiPort: apiEndpoint.port,
      agentPort: agentEndpoint.port,
      ...(apiEndpoint.host ? { host: apiEndpoint.host } : {}),
      dataPath: flags['data-path'],
      certificatesDirectory: flags['certificates-directory'],
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.on(signal, () => {
        void service.close().then(() => process.exit(0));
      });
  } catch (error) {
    process.stderr.write(`flocker-control: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
