import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, ApiError, Changes, nowIso, parseDuration, sleep, type Json } from './client.js';
import { DockerClient } from './docker.js';
import { FlockerVolumes } from './flocker-volume.js';
import { PodRunner } from './pod-runner.js';
import { goArch, kubeVersion } from './version.js';

/**
 * The kubelet stand-in: registers its node under --hostname-override, posts the node's status
 * (Ready, addresses, capacity, versions) every --node-status-update-frequency, runs the static
 * pods of --config and the pods bound to it as Docker containers, and serves the read-only port.
 */
export async function kubelet(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube kubelet', argv, {
    'api-servers': '',
    config: '',
    'hostname-override': '',
    'cluster-dns': '',
    'cluster-domain': '',
    'allow-privileged': false,
    address: '0.0.0.0',
    port: '10250',
    containerized: false,
    'network-plugin': '',
    'network-plugin-dir': '',
    'node-status-update-frequency': '10s',
    'sync-frequency': '10s',
    'docker-endpoint': 'unix:///var/run/docker.sock',
    'pod-infra-container-image': `gcr.io/google_containers/pause-${goArch()}:3.0`,
    'root-dir': '/var/lib/kubelet',
    kubeconfig: '',
    'require-kubeconfig': false,
    'cloud-provider': '',
    'read-only-port': '10255',
    v: '0',
    logtostderr: true,
  });
  const where = 'kubelet.go';
  const log = (message: string) => glog('I', where, message);
  const nodeName = (flags['hostname-override'] || hostname()).toLowerCase();
  const nodeIp = /^\d+\.\d+\.\d+\.\d+$/.test(nodeName) ? nodeName : firstAddress();
  const statusEvery = parseDuration(flags['node-status-update-frequency']);
  const syncEvery = parseDuration(flags['sync-frequency']);
  const docker = new DockerClient(flags['docker-endpoint'].replace(/^unix:\/\//, ''));
  const api = flags['api-servers'] ? new ApiClient(flags['api-servers']) : undefined;
  const events = api ? new EventRecorder(api, nodeName) : undefined;
  const runner = new PodRunner(docker, {
    nodeName,
    nodeIp,
    podInfraImage: flags['pod-infra-container-image'],
    clusterDns: flags['cluster-dns'] || undefined,
    clusterDomain: flags['cluster-domain'] || undefined,
    rootDir: flags['root-dir'],
    log,
    // The fork's docker-multinode passes FLOCKER_CONTROL_SERVICE_* to the kubelet container.
    flocker: new FlockerVolumes({
      env: process.env,
      hostIp: nodeIp,
      onError: (pod, message) => {
        glog('E', 'kubelet.go', message);
        events?.record(pod, 'Warning', 'FailedMount', message);
      },
      onAttached: () => runner.wake(),
    }),
  });
  if (!api) glog('W', where, 'No api server defined - no node status update will be sent.');
  log(`Kubelet ${kubeVersion()} on node ${nodeName} (${nodeIp}), static pods from ${flags.config || '(none)'}`);
  const runtime = new RuntimeState(docker);
  let running: Json[] = [];
  serveReadOnly(flags.address, Number(flags['read-only-port']), () => running);

  const statusLoop = async () => {
    let registered = false;
    for (;;) {
      try {
        if (api && !registered) {
          registered = await register(api, nodeName, nodeIp, runtime, log);
        }
        if (api && registered) await postStatus(api, nodeName, nodeIp, runtime);
      } catch (error) {
        glog(
          'E',
          where,
          `${registered ? 'Error updating node status' : `Unable to register node "${nodeName}" with API server`}: ${(error as Error).message}`,
        );
        if (error instanceof ApiError && error.code === 404) registered = false;
      }
      await sleep(registered ? statusEvery : 2000);
    }
  };
  // Pods bound to this node, from the apiserver; the last known list stays when it cannot be read.
  let apiPods: Json[] = [];
  let services: Json[] = [];
  const reported = new Map<string, string>();
  // A round when pods or services change, when a slow pod sync ends, or every --sync-frequency.
  const podChanges = api ? new Changes(api, ['pods', 'services']) : undefined;
  let settling: Promise<void> | undefined;
  const podLoop = async () => {
    for (;;) {
      const stop = new AbortController();
      settling ??= runner.settled().then(() => void (settling = undefined));
      await Promise.race([podChanges ? podChanges.wait(syncEvery, stop.signal) : sleep(Math.min(syncEvery, 2000)), settling]);
      stop.abort();
      if (api) {
        try {
          const [pods, serviceList] = await Promise.all([
            api.get(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`),
            api.get('/api/v1/services'),
          ]);
          apiPods = (pods.items ?? []) as Json[];
          services = (serviceList.items ?? []) as Json[];
        } catch (error) {
          glog('E', where, `Unable to list the pods of node ${nodeName}: ${(error as Error).message}`);
        }
      }
      try {
        const statics = staticPods(flags.config, nodeName);
        // Mirror pods stand for the static pods in the API; the pods to run are the others.
        const bound = apiPods.filter((p) => !isMirror(p));
        running = [...statics, ...bound];
        const statuses = await runner.sync(running, services);
        if (api) {
          const mirrors = await syncMirrorPods(api, statics, apiPods, nodeName);
          // A mirror pod shows its static pod's status.
          for (const [mirror, staticUid] of mirrors) {
            const status = statuses.get(staticUid);
            if (status) statuses.set(String(mirror.metadata.uid), status);
          }
          await reportStatuses(api, [...bound, ...mirrors.map(([mirror]) => mirror)], statuses, reported);
        }
      } catch (error) {
        glog('E', where, `Pod sync failed: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all([statusLoop(), podLoop(), runtime.watch()]);
}

/** maxWaitForContainerRuntime: how long the runtime may fail its checks before the node goes NotReady. */
export const RUNTIME_GRACE_MS = 5 * 60_000;
const RUNTIME_CHECK_MS = 5_000;

/**
 * The kubelet's view of Docker, as 1.2/1.3's runtimeState kept it: checked every 5 s; the node
 * stays Ready through failed checks for 5 minutes, then posts Ready=False ("container runtime is
 * down") until Docker answers again. The version is the one Docker last reported.
 */
export class RuntimeState {
  private lastOk = Date.now();
  version = '';

  constructor(private readonly docker: Pick<DockerClient, 'version'>) {}

  async check(now = Date.now()): Promise<void> {
    try {
      this.version = await this.docker.version();
      this.lastOk = now;
    } catch {
      /* counted by errors() */
    }
  }

  async watch(): Promise<never> {
    for (;;) {
      await this.check();
      await sleep(RUNTIME_CHECK_MS);
    }
  }

  errors(now = Date.now()): string[] {
    return now - this.lastOk > RUNTIME_GRACE_MS ? ['container runtime is down'] : [];
  }
}

const MIRROR = 'kubernetes.io/config.mirror';
const isMirror = (pod: Json): boolean => Boolean(pod.metadata?.annotations?.[MIRROR]);

/**
 * The 1.2/1.3 kubelet's mirror pods: each static pod of --config is also a pod object in the API
 * (annotated kubernetes.io/config.mirror with the static pod's hash, bound to this node), so that
 * `kubectl get pods` lists the master's components and the scheduler counts them on their node.
 * Missing ones are created, ones of static pods that are gone are deleted. Returns each mirror
 * pod with the UID of its static pod.
 */
async function syncMirrorPods(api: ApiClient, statics: Json[], apiPods: Json[], nodeName: string): Promise<[Json, string][]> {
  const pairs: [Json, string][] = [];
  for (const mirror of apiPods.filter(isMirror)) {
    const source = statics.find((p) => p.metadata.uid === mirror.metadata.annotations[MIRROR] && p.metadata.name === mirror.metadata.name);
    if (source) pairs.push([mirror, String(source.metadata.uid)]);
    else await api.call('DELETE', `/api/v1/namespaces/${mirror.metadata.namespace}/pods/${encodeURIComponent(mirror.metadata.name)}`).catch(() => undefined);
  }
  for (const pod of statics) {
    if (pairs.some(([, uid]) => uid === pod.metadata.uid)) continue;
    const { uid, ...metadata } = pod.metadata;
    const annotations = { ...pod.metadata.annotations, [MIRROR]: uid, 'kubernetes.io/config.hash': uid, 'kubernetes.io/config.source': 'file' };
    try {
      await api.post(`/api/v1/namespaces/${pod.metadata.namespace}/pods`, { ...pod, metadata: { ...metadata, annotations }, spec: { ...pod.spec, nodeName } });
      glog('I', 'mirror_client.go', `Created mirror pod ${pod.metadata.namespace}/${pod.metadata.name}`);
    } catch (error) {
      // Its namespace may not exist yet (v1.2 leaves kube-system to the user), or an old one is still there: next round.
      if (!(error instanceof ApiError && (error.code === 404 || error.code === 409))) throw error;
    }
  }
  return pairs;
}

/** Posts each API pod's status when it changed since the last post (timestamps aside). */
async function reportStatuses(api: ApiClient, pods: Json[], statuses: Map<string, Json>, reported: Map<string, string>): Promise<void> {
  for (const pod of pods) {
    const status = statuses.get(pod.metadata.uid);
    if (!status) continue;
    const fingerprint = JSON.stringify(status, (key, value: unknown) => (/At$|startTime|Time$/.test(key) ? undefined : value));
    if (reported.get(pod.metadata.uid) === fingerprint) continue;
    const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${encodeURIComponent(pod.metadata.name)}/status`;
    const conditions = [...((pod.status?.conditions ?? []) as Json[]).filter((c) => c.type === 'PodScheduled'), ...status.conditions];
    try {
      await api.put(path, { ...pod, status: { ...status, conditions } });
      reported.set(pod.metadata.uid, fingerprint);
    } catch (error) {
      if (!(error instanceof ApiError && (error.code === 404 || error.code === 409))) throw error;
    }
  }
  for (const uid of reported.keys()) if (!pods.some((p) => p.metadata.uid === uid)) reported.delete(uid);
}

/**
 * Posts the kubelet's events about pods (what `kubectl describe pod` lists): one Event per pod,
 * reason and message, its count raised when it repeats, as the 1.2/1.3 recorder aggregated them.
 */
export class EventRecorder {
  private readonly seen = new Map<string, { name: string; count: number; first: string }>();

  constructor(
    private readonly api: ApiClient,
    private readonly host: string,
  ) {}

  record(pod: Json, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${pod.metadata.uid}/${reason}/${message}`;
    const now = nowIso();
    const known = this.seen.get(key);
    const entry = known ? { ...known, count: known.count + 1 } : { name: `${pod.metadata.name}.${Date.now().toString(16)}${this.seen.size}`, count: 1, first: now };
    this.seen.set(key, entry);
    if (this.seen.size > 500) this.seen.delete(this.seen.keys().next().value as string);
    const namespace = String(pod.metadata.namespace ?? 'default');
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: entry.name, namespace },
      involvedObject: { kind: 'Pod', namespace, name: pod.metadata.name, uid: pod.metadata.uid, apiVersion: 'v1' },
      reason,
      message,
      source: { component: 'kubelet', host: this.host },
      firstTimestamp: entry.first,
      lastTimestamp: now,
      count: entry.count,
      type,
    };
    const path = `/api/v1/namespaces/${namespace}/events`;
    const write = known ? this.api.put(`${path}/${encodeURIComponent(entry.name)}`, event) : this.api.post(path, event);
    write.catch((error: Error) => glog('E', 'event.go', `Unable to write event '${entry.name}': ${error.message}`));
  }
}

function firstAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const address of list ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  return '127.0.0.1';
}

async function register(api: ApiClient, name: string, ip: string, runtime: RuntimeState, log: (m: string) => void): Promise<boolean> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'beta.kubernetes.io/arch': goArch(), 'beta.kubernetes.io/os': 'linux' } },
    spec: { externalID: name },
    status: nodeStatus(ip, undefined, runtime),
  };
  try {
    await api.post('/api/v1/nodes', node);
    log(`Successfully registered node ${name}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 409)) throw error;
    log(`Node ${name} was previously registered`);
  }
  return true;
}

async function postStatus(api: ApiClient, name: string, ip: string, runtime: RuntimeState): Promise<void> {
  const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const node = await api.get(path);
    node.status = nodeStatus(ip, node.status as Json | undefined, runtime);
    try {
      await api.put(`${path}/status`, node);
      return;
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 409)) throw error;
    }
  }
  throw new Error('update node status exceeds retry count');
}

export function nodeStatus(ip: string, previous: Json | undefined, runtime: Pick<RuntimeState, 'errors' | 'version'>): Json {
  const now = nowIso();
  const before = ((previous?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready');
  const capacity = { cpu: String(cpus().length), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: '110' };
  const errors = runtime.errors();
  const status = errors.length ? 'False' : 'True';
  const [, minor = 0] = kubeVersion().replace(/^v/, '').split('.').map(Number);
  return {
    capacity,
    allocatable: capacity,
    conditions: [
      {
        type: 'Ready',
        status,
        lastHeartbeatTime: now,
        lastTransitionTime: before?.status === status ? before.lastTransitionTime : now,
        reason: errors.length ? 'KubeletNotReady' : 'KubeletReady',
        message: errors.length ? errors.join(',') : 'kubelet is posting ready status',
      },
    ],
    addresses: [
      { type: 'LegacyHostIP', address: ip },
      { type: 'InternalIP', address: ip },
    ],
    // No daemonEndpoints: the stand-in serves the read-only port (10255), not the kubelet port (10250).
    nodeInfo: {
      machineID: readOr('/etc/machine-id') || readOr('/var/lib/dbus/machine-id'),
      systemUUID: readOr('/sys/class/dmi/id/product_uuid'),
      bootID: readOr('/proc/sys/kernel/random/boot_id'),
      kernelVersion: release(),
      osImage: osImage(),
      containerRuntimeVersion: `docker://${runtime.version || 'Unknown'}`,
      kubeletVersion: kubeVersion(),
      kubeProxyVersion: kubeVersion(),
      // 1.3 added the platform.
      ...(minor >= 3 ? { operatingSystem: 'linux', architecture: goArch() } : {}),
    },
  };
}

/** cadvisor's operating system: PRETTY_NAME of /etc/os-release (or /usr/lib/os-release) where the kubelet runs. */
function osImage(): string {
  const text = readOr('/etc/os-release') || readOr('/usr/lib/os-release');
  return /^PRETTY_NAME="([^"\n]*)"/m.exec(text)?.[1] ?? 'Unknown';
}

/**
 * The read-only port of 1.2/1.3 (--read-only-port, 10255): /healthz, /pods (what the kubelet
 * runs, a v1 PodList) and /spec/ (the machine, as cadvisor described it). No authentication.
 */
function serveReadOnly(address: string, port: number, pods: () => Json[]): void {
  if (!port) return;
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const json = (body: unknown) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return response.end('ok');
    }
    if (path === '/pods' || path === '/pods/') return json({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: pods() });
    if (path === '/spec' || path === '/spec/')
      return json({
        num_cores: cpus().length,
        cpu_frequency_khz: Math.round((cpus()[0]?.speed ?? 0) * 1000),
        memory_capacity: totalmem(),
        machine_id: readOr('/etc/machine-id'),
        system_uuid: readOr('/sys/class/dmi/id/product_uuid'),
        boot_id: readOr('/proc/sys/kernel/random/boot_id'),
      });
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    response.end('404 page not found\n');
  });
  server.on('error', (error) => glog('E', 'server.go', `Unable to serve the read-only port ${address}:${port}: ${error.message}`));
  server.listen(port, address);
}

const readOr = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8').trim() : '');

/** The pods of the manifest folder (or file): JSON pods, each named <name>-<node> with a UID from its content. */
export function staticPods(config: string, nodeName: string): Json[] {
  if (!config || !existsSync(config)) return [];
  const files = statSync(config).isDirectory()
    ? readdirSync(config)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(config, f))
    : [config];
  return files.map((file) => {
    const text = readFileSync(file, 'utf8');
    const pod = JSON.parse(text) as Json;
    const uid = createHash('md5').update(nodeName).update(text).digest('hex');
    pod.metadata = { ...pod.metadata, name: `${pod.metadata?.name}-${nodeName}`, namespace: pod.metadata?.namespace ?? 'default', uid };
    return pod;
  });
}
