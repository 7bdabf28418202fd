import { readFileSync, realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { EtcdV2Client } from '../etcd.js';
import { fatal, glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, ApiError, Changes, parseDuration, sleep, type Json } from '../hyperkube/client.js';
import { nameForKey, servicesRoot, skydnsRecords } from './records.js';

/**
 * kube2sky 1.15 (the kube-dns-v11 pod): keeps the SkyDNS records of every service in etcd. Where
 * the real one watched the apiserver, this one lists services and endpoints every 2 s and makes
 * etcd's /skydns/<domain>/svc tree equal to what kube2sky would have written; keys elsewhere are
 * left alone.
 */

const WHERE = 'kube2sky.go';
// A safety net only: every write to services or endpoints wakes kube2sky at once.
const RESYNC_MS = 30_000;
const KUBERNETES_SERVICE = 'default/kubernetes';

export interface ClusterState {
  services: Json[];
  endpoints: Json[];
}

/** Services and endpoints of all namespaces, from the apiserver's v1 lists. */
export async function fetchClusterState(api: ApiClient): Promise<ClusterState> {
  const [services, endpoints] = await Promise.all([api.get('/api/v1/services'), api.get('/api/v1/endpoints')]);
  return { services: (services.items ?? []) as Json[], endpoints: (endpoints.items ?? []) as Json[] };
}

export interface RecordChanges {
  /** Keys written because they were missing or held another value. */
  set: string[];
  removed: string[];
}

/**
 * etcd v2 hides keys and directories whose name starts with '_' from every listing, recursive or
 * not; a GET of their own path still finds them. kube2sky's SRV records live there (_tcp/_https),
 * so neither a listing nor skydns' lookup of a service's name ever sees them.
 */
const isHidden = (root: string, key: string) =>
  key
    .slice(root.length)
    .split('/')
    .some((segment) => segment.startsWith('_'));

/** root/<namespace>/<service>: the directory kube2sky wrote and removed a service's records in. */
const serviceDirectory = (root: string, key: string) =>
  key
    .split('/')
    .slice(0, root.split('/').length + 2)
    .join('/');

function byServiceDirectory(root: string, records: Map<string, string>): Map<string, Map<string, string>> {
  const groups = new Map<string, Map<string, string>>();
  for (const [key, value] of records) {
    const dir = serviceDirectory(root, key);
    groups.set(dir, (groups.get(dir) ?? new Map<string, string>()).set(key, value));
  }
  return groups;
}

/**
 * Makes the etcd tree under `root` hold exactly `desired`. `written` is what the previous pass
 * wrote (undefined on the first): the only way to know the hidden keys that are there. A service
 * that is gone loses its whole directory, hidden records included, as kube2sky's removeDNS did.
 */
export async function applyRecords(
  etcd: EtcdV2Client,
  root: string,
  desired: Map<string, string>,
  written: Map<string, string> = new Map(),
): Promise<RecordChanges> {
  const listed = new Map((await etcd.list(root)).map((v) => [v.key, v.value]));
  const wanted = byServiceDirectory(root, desired);
  const seen = byServiceDirectory(root, listed);
  const remembered = byServiceDirectory(root, written);
  const changes: RecordChanges = { set: [], removed: [] };
  const none = new Map<string, string>();
  for (const dir of new Set([...seen.keys(), ...remembered.keys(), ...wanted.keys()])) {
    const [want, visible, known] = [wanted.get(dir) ?? none, seen.get(dir) ?? none, remembered.get(dir) ?? none];
    const present = [...new Set([...visible.keys(), ...known.keys()])];
    if (!want.size) {
      await etcd.call('DELETE', dir, { recursive: 'true' });
      changes.removed.push(...present);
      continue;
    }
    // Deletes first, so that a stale key never stands where a new one goes.
    const stale = present.filter((key) => !want.has(key));
    for (const key of stale) await etcd.call('DELETE', key);
    changes.removed.push(...stale);
    // Every service with records has visible ones; none listed means a new service, or an etcd that
    // lost its data (its container restarted), and then the hidden records are gone too.
    const directoryListed = visible.size > 0;
    for (const [key, value] of want) {
      const upToDate = isHidden(root, key) ? directoryListed && known.get(key) === value : visible.get(key) === value;
      if (upToDate) continue;
      await etcd.set(key, value);
      changes.set.push(key);
    }
  }
  // kube2sky removed whole service directories; without this, emptied ones would pile up.
  for (const dir of emptiedDirectories(root, changes.removed, [...desired.keys()])) {
    await etcd.call('DELETE', dir, { dir: 'true' }).catch((error: Error) => {
      if (!/code 108/.test(error.message)) throw error; // 108: not empty after all, someone else wrote there
    });
  }
  return changes;
}

/** The directories under `root` that held removed keys and hold no kept one, deepest first. */
export function emptiedDirectories(root: string, removed: string[], kept: string[]): string[] {
  const dirs = new Set<string>();
  for (const key of removed) {
    for (let dir = key.slice(0, key.lastIndexOf('/')); dir.length > root.length && dir.startsWith(`${root}/`);) {
      if (kept.some((k) => k.startsWith(`${dir}/`))) break;
      dirs.add(dir);
      dir = dir.slice(0, dir.lastIndexOf('/'));
    }
  }
  return [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
}

export interface SyncResult extends RecordChanges {
  records: Map<string, string>;
  /** Whether default/kubernetes has its record: kube2sky's condition for being ready. */
  hasKubernetesService: boolean;
}

/** kube2sky's work, one pass at a time: list from the apiserver, compute the records, write the difference to etcd. */
export class Kube2Sky {
  /** What the last successful pass left in etcd; forgotten after a failure, when the tree is in doubt. */
  private written: Map<string, string> | undefined;

  constructor(
    readonly api: ApiClient,
    readonly etcd: EtcdV2Client,
    readonly domain: string,
  ) {}

  async syncOnce(): Promise<SyncResult> {
    const state = await fetchClusterState(this.api);
    const records = skydnsRecords(state.services, state.endpoints, this.domain);
    const written = this.written;
    this.written = undefined;
    const changes = await applyRecords(this.etcd, servicesRoot(this.domain), records, written);
    this.written = records;
    const hasKubernetesService = state.services.some((s) => `${s.metadata?.namespace}/${s.metadata?.name}` === KUBERNETES_SERVICE);
    return { ...changes, records, hasKubernetesService };
  }
}

/** The master's URL as kube2sky found it: the flag (with $VARS expanded), a kubeconfig's server, or the in-cluster service. */
export function kubeMasterUrl(flag: string, kubecfgFile: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) {
    const expanded = flag.replace(
      /\$\{(\w+)\}|\$(\w+)/g,
      (_, braced: string | undefined, bare: string | undefined) => env[braced ?? bare ?? ''] ?? '',
    );
    let url: URL;
    try {
      url = new URL(expanded);
    } catch {
      throw new Error(`invalid --kube-master-url specified ${flag}`);
    }
    if (!url.hostname) throw new Error(`invalid --kube-master-url specified ${flag}`);
    return expanded.replace(/\/+$/, '');
  }
  if (kubecfgFile) {
    const server = /^\s*server:\s*["']?([^\s"']+)/m.exec(readFileSync(kubecfgFile, 'utf8'))?.[1];
    if (!server) throw new Error(`no server found in ${kubecfgFile}`);
    return server;
  }
  const [host, port] = [env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT];
  if (!host || !port)
    throw new Error('unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** kube2sky's newEtcdClient: up to 12 tries, 5 s apart, before giving up. */
async function waitForEtcd(server: string): Promise<void> {
  const attempts = 12;
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(`${server.replace(/\/+$/, '')}/version`, { signal: AbortSignal.timeout(5000) });
      if (response.ok) return;
      throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      const cause = ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
      if (attempt === attempts) fatal(WHERE, `Failed to create etcd client - failed to connect to etcd server: ${server}, error: ${cause}`);
      glog('I', WHERE, `[Attempt: ${attempt}] Attempting access to etcd after 5 second sleep`);
      await sleep(5000);
    }
  }
}

/** The readiness probe of the kube-dns-v11 pod: served once the kubernetes service has its record, and never withdrawn. */
function serveReadiness(port: number): void {
  const server = createServer((request, response) => {
    if (request.url?.split('?')[0] === '/readiness') response.end('ok\n');
    else response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
  });
  server.on('error', (error) => fatal(WHERE, `listen tcp :${port}: ${error.message}`));
  server.listen(port);
}

async function main(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/kube2sky', argv, {
    domain: 'cluster.local',
    'etcd-mutation-timeout': '10s',
    'etcd-server': 'http://127.0.0.1:4001',
    'kube-master-url': '',
    'kubecfg-file': '',
    'healthz-port': '8081',
    v: '0',
    logtostderr: true,
    alsologtostderr: false,
    'log-dir': '',
    stderrthreshold: '2',
    vmodule: '',
    'log-backtrace-at': ':0',
  });
  const domain = flags.domain.endsWith('.') ? flags.domain : `${flags.domain}.`;
  const mutationTimeout = parseDuration(flags['etcd-mutation-timeout']);

  await waitForEtcd(flags['etcd-server']);
  glog('I', WHERE, `Etcd server found: ${flags['etcd-server']}`);
  const etcd = new EtcdV2Client([flags['etcd-server']]);

  let master: string;
  try {
    master = kubeMasterUrl(flags['kube-master-url'], flags['kubecfg-file']);
  } catch (error) {
    fatal(WHERE, `Failed to create a kubernetes client: ${(error as Error).message}`);
  }
  const api = new ApiClient(master);
  glog('I', WHERE, `Using ${api.base} for kubernetes master`);
  glog('I', WHERE, 'Using kubernetes API v1');
  glog('I', WHERE, `Waiting for service: ${KUBERNETES_SERVICE}`);

  const kube2sky = new Kube2Sky(api, etcd, domain);
  let ready = false;
  let etcdFailingSince: number | undefined;
  const apiErrors = new RepeatFilter(30_000);
  // A sync when services or endpoints change, and every 30 s at the latest (kube2sky's resync).
  const changes = new Changes(api, ['services', 'endpoints']);
  for (; ; await changes.wait(RESYNC_MS)) {
    let result: SyncResult;
    try {
      result = await kube2sky.syncOnce();
      apiErrors.clear();
      etcdFailingSince = undefined;
    } catch (error) {
      const message = (error as Error).message;
      if (error instanceof ApiError) {
        // An unreachable apiserver's message names the URL (GET http://...: connect ECONNREFUSED); an HTTP error's does not.
        const where = message.includes(api.base) ? message : `${api.base}: ${message}`;
        if (apiErrors.shouldLog(where)) glog('E', 'reflector.go', `Failed to list services and endpoints: ${where}`);
        continue;
      }
      etcdFailingSince ??= Date.now();
      glog('E', WHERE, `Failed to mutate etcd: ${message}`);
      // As kube2sky's mutateEtcdOrDie: the kubelet restarts us, and we wait for etcd again.
      if (Date.now() - etcdFailingSince > mutationTimeout)
        fatal(WHERE, `Failed to mutate etcd for ${flags['etcd-mutation-timeout']} using mutator: ${message}`);
      continue;
    }
    for (const key of result.removed) glog('I', WHERE, `Removing ${nameForKey(key)} from DNS`);
    for (const key of result.set) {
      const parent = nameForKey(key.slice(0, key.lastIndexOf('/')));
      glog('I', WHERE, `Setting DNS record: ${parent} -> ${JSON.stringify(result.records.get(key))}, with recordKey: ${nameForKey(key)}`);
    }
    if (!ready && result.hasKubernetesService) {
      ready = true;
      glog('I', WHERE, 'Successfully added DNS record for Kubernetes service.');
      serveReadiness(Number(flags['healthz-port']));
    }
  }
}

/** Logs a repeated error once, then again only when it changes or every `intervalMs`. */
class RepeatFilter {
  private last?: { message: string; at: number };
  constructor(private readonly intervalMs: number) {}
  shouldLog(message: string): boolean {
    const now = Date.now();
    if (this.last?.message === message && now - this.last.at < this.intervalMs) return false;
    this.last = { message, at: now };
    return true;
  }
  clear(): void {
    this.last = undefined;
  }
}

const invokedDirectly = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
  main(process.argv.slice(2)).catch((error: Error) => fatal(WHERE, error.message));
}
