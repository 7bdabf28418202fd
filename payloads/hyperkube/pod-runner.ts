import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import type { Json } from './client.js';
import { nowIso } from './client.js';
import { DockerError, type ContainerDetails, type ContainerSummary, type DockerClient } from './docker.js';
import type { FlockerVolumes } from './flocker-volume.js';

/**
 * Runs pods as the kubelet of 1.2/1.3 did with Docker: per pod a pause container holding the
 * network (the host's, for hostNetwork pods; otherwise docker0, i.e. the node's flannel subnet),
 * then one container per spec container joining it, named
 * k8s_<container>.<hash>_<pod>_<namespace>_<uid>_<random> and labelled io.kubernetes.*. Exited
 * containers are restarted as restartPolicy says (with the kubelet's back-off), and each pod's
 * status is computed from what Docker reports. Images come only from the node's Docker: nothing
 * is ever pulled (the lab's nodes hold the offline bundle and must not reach a registry).
 */

export interface PodSettings {
  nodeName: string;
  nodeIp: string;
  podInfraImage: string;
  clusterDns?: string;
  clusterDomain?: string;
  rootDir: string;
  log: (message: string) => void;
  /** The node's flocker volumes (FLOCKER_CONTROL_SERVICE_* of the kubelet's environment). */
  flocker?: FlockerVolumes;
}

const LABEL_NAME = 'io.kubernetes.pod.name';
const LABEL_NAMESPACE = 'io.kubernetes.pod.namespace';
const LABEL_UID = 'io.kubernetes.pod.uid';
const LABEL_CONTAINER = 'io.kubernetes.container.name';
const LABEL_RESTARTS = 'io.kubernetes.container.restartCount';
const POD_CONTAINER = 'POD';
const BACKOFF_START_MS = 10_000;
const BACKOFF_MAX_MS = 300_000;

export class PodRunner {
  /** Failed image lookups per pod container: the first is ErrImagePull, the next ones ImagePullBackOff. */
  private readonly pullFailures = new Map<string, number>();
  private readonly started = new Map<string, string>();
  /** `docker inspect` of running containers: what it says does not change while they run (TCG makes each call dear). */
  private readonly inspected = new Map<string, ContainerDetails>();

  constructor(
    private readonly docker: DockerClient,
    private readonly settings: PodSettings,
  ) {}

  /** Pods whose sync is under way (the real kubelet had one worker per pod), and each pod's last status. */
  private readonly syncing = new Map<string, Promise<void>>();
  private readonly statuses = new Map<string, Json>();
  /** Containers being removed. */
  private readonly removing = new Set<string>();
  /** Syncs still going when `sync` returned, and who waits for one of them to end. */
  private readonly slow = new Set<string>();
  private readonly settleWaiters: (() => void)[] = [];

  /**
   * Brings the node's containers to the wanted pods (missing ones created, exited ones restarted
   * as their policy says, containers of other pods removed) and returns each pod's last status by
   * UID. Each pod syncs on its own: a pod whose containers take a minute to start (Docker under
   * emulation) holds up neither the others nor the next round; this returns after at most
   * `waitMs` with what has finished.
   */
  async sync(pods: Json[], services: Json[] = [], waitMs = 1000): Promise<Map<string, Json>> {
    // Pods busy before the listing are left alone: their containers may not be in it.
    const busy = new Set(this.syncing.keys());
    const existing = await this.docker.listContainers([LABEL_UID]);
    for (const id of this.inspected.keys()) if (!existing.some((c) => c.Id === id && c.State === 'running')) this.inspected.delete(id);
    const wanted = new Set(pods.map((p) => String(p.metadata.uid)));
    for (const container of existing) {
      const uid = container.Labels[LABEL_UID] ?? '';
      if (wanted.has(uid) || this.removing.has(container.Id)) continue;
      this.removing.add(container.Id);
      this.settings.log(`Killing unwanted container ${container.Names[0] ?? container.Id}`);
      void this.docker
        .remove(container.Id)
        .then(() => rmSync(`${this.settings.rootDir}/pods/${uid}`, { recursive: true, force: true }))
        .catch((error: Error) => this.settings.log(`Failed to remove ${container.Id}: ${error.message}`))
        .finally(() => this.removing.delete(container.Id));
    }
    // What is remembered per pod goes with the pod.
    for (const uid of [...this.started.keys(), ...this.statuses.keys()]) {
      if (wanted.has(uid)) continue;
      this.started.delete(uid);
      this.statuses.delete(uid);
    }
    for (const key of this.pullFailures.keys()) if (!wanted.has(key.split('/')[0] ?? '')) this.pullFailures.delete(key);
    this.settings.flocker?.keepOnly(wanted);
    for (const pod of pods) {
      const uid = String(pod.metadata.uid);
      if (busy.has(uid)) continue;
      const mine = existing.filter((c) => c.Labels[LABEL_UID] === uid);
      const work = this.syncPod(pod, mine, services)
        .then((status) => void (wanted.has(uid) && this.statuses.set(uid, status)))
        .catch((error: Error) => this.settings.log(`Error syncing pod ${pod.metadata.name}_${pod.metadata.namespace}: ${error.message}`))
        .finally(() => {
          this.syncing.delete(uid);
          if (this.slow.delete(uid)) this.wake();
        });
      this.syncing.set(uid, work);
    }
    await Promise.race([Promise.allSettled(this.syncing.values()), new Promise((resolve) => setTimeout(resolve, waitMs))]);
    for (const uid of this.syncing.keys()) this.slow.add(uid);
    return new Map([...this.statuses].filter(([uid]) => wanted.has(uid)));
  }

  /** Resolves when a sync that outlasted its `sync` call ends (its pod has a new status to report), or on `wake`. */
  settled(): Promise<void> {
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /** Something a pod waited for is there (a flocker dataset attached): sync again now. */
  wake(): void {
    for (const resolve of this.settleWaiters.splice(0)) resolve();
  }

  private async syncPod(pod: Json, containers: ContainerSummary[], services: Json[]): Promise<Json> {
    // Volumes first, as the kubelet mounted them before it made the pod's infra container.
    const unmounted = ((pod.spec.volumes ?? []) as Json[]).filter((v) => v.flocker && !this.flockerPath(pod, v));
    if (unmounted.length > 0) return this.containerCreating(pod, this.settings.flocker?.error(pod));
    const newest = (name: string) => containers.filter((c) => c.Labels[LABEL_CONTAINER] === name).sort((a, b) => b.Created - a.Created)[0];
    let infra = newest(POD_CONTAINER);
    if (infra?.State !== 'running') {
      for (const stale of containers) await this.docker.remove(stale.Id);
      containers = [];
      if (!(await this.docker.hasImage(this.settings.podInfraImage))) return this.waitingForInfra(pod, `image ${this.settings.podInfraImage} is not present`);
      const id = await this.start(pod, POD_CONTAINER, this.infraConfig(pod), 0);
      infra = { Id: id, State: 'running' } as ContainerSummary;
    }
    const infraDetails = await this.inspect(infra.Id);
    const policy = String(pod.spec.restartPolicy ?? 'Always');
    const statuses: Json[] = [];
    for (const spec of (pod.spec.containers ?? []) as Json[]) {
      const key = `${pod.metadata.uid}/${spec.name}`;
      const current = newest(spec.name);
      const restarts = Number(current?.Labels[LABEL_RESTARTS] ?? 0);
      const base = { name: spec.name, image: spec.image, restartCount: restarts, ready: false };
      if (current) {
        const details = await this.inspect(current.Id);
        const state = stateOf(details);
        if (details.State.Running) {
          statuses.push({ ...base, state, ready: true, imageID: `docker://${details.Image}`, containerID: `docker://${details.Id}` });
          continue;
        }
        const exit = details.State.ExitCode;
        const restart = policy === 'Always' || (policy === 'OnFailure' && exit !== 0);
        if (!restart) {
          statuses.push({ ...base, state, imageID: `docker://${details.Image}`, containerID: `docker://${details.Id}` });
          continue;
        }
        const backoff = Math.min(BACKOFF_START_MS * 2 ** Math.max(0, restarts - 1), BACKOFF_MAX_MS);
        if (restarts > 0 && Date.now() - Date.parse(details.State.FinishedAt) < backoff) {
          statuses.push({
            ...base,
            state: { waiting: { reason: 'CrashLoopBackOff', message: `Back-off ${backoff / 1000}s restarting failed container=${spec.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})` } },
            lastState: state,
          });
          continue;
        }
        await this.docker.remove(current.Id);
        const id = await this.startContainer(pod, spec, infra.Id, services, restarts + 1, key);
        statuses.push(id ? { ...base, restartCount: restarts + 1, state: { running: { startedAt: nowIso() } }, lastState: state, ready: true } : this.pullStatus(pod, spec, key));
        continue;
      }
      const id = await this.startContainer(pod, spec, infra.Id, services, 0, key);
      statuses.push(id ? { ...base, state: { running: { startedAt: nowIso() } }, ready: true, containerID: `docker://${id}` } : this.pullStatus(pod, spec, key));
    }
    return this.podStatus(pod, statuses, infraDetails);
  }

  private async inspect(id: string): Promise<ContainerDetails> {
    const known = this.inspected.get(id);
    if (known) return known;
    const details = await this.docker.inspect(id);
    if (details.State.Running) this.inspected.set(id, details);
    return details;
  }

  /** Starts a spec container, or returns undefined when its image is not on the node. */
  private async startContainer(pod: Json, spec: Json, infraId: string, services: Json[], restarts: number, key: string): Promise<string | undefined> {
    if (!(await this.docker.hasImage(spec.image))) {
      const failures = (this.pullFailures.get(key) ?? 0) + 1;
      this.pullFailures.set(key, failures);
      if (failures === 1) this.settings.log(`Failed to pull image "${spec.image}": not in the node's Docker (the emulated kubelet never pulls)`);
      return undefined;
    }
    this.pullFailures.delete(key);
    return this.start(pod, spec.name, this.containerConfig(pod, spec, infraId, services), restarts);
  }

  /** How the 1.2/1.3 kubelet reported an image it could not pull: ErrImagePull once, then ImagePullBackOff. */
  private pullStatus(pod: Json, spec: Json, key: string): Json {
    const failures = this.pullFailures.get(key) ?? 1;
    const state =
      failures <= 1
        ? {
            waiting: {
              reason: 'ErrImagePull',
              message: `image pull failed for ${spec.image}, this may be because there are no credentials on this request.  details: (the image is not in the node's Docker; the lab's nodes load images only from the offline bundle)`,
            },
          }
        : { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${spec.image}"` } };
    return { name: spec.name, image: spec.image, imageID: '', restartCount: 0, ready: false, state };
  }

  private flockerPath(pod: Json, volume: Json): string | undefined {
    if (!this.settings.flocker) throw new Error(`volume ${volume.name}: this kubelet has no Flocker control service settings`);
    return this.settings.flocker.path(pod, volume);
  }

  /** A pod whose volumes are not mounted yet: no container exists, each is ContainerCreating. */
  private containerCreating(pod: Json, message?: string): Json {
    const names = ((pod.spec.containers ?? []) as Json[]).map((c) => String(c.name));
    return {
      phase: 'Pending',
      hostIP: this.settings.nodeIp,
      conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${names.join(' ')}]` }],
      containerStatuses: ((pod.spec.containers ?? []) as Json[]).map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        restartCount: 0,
        ready: false,
        state: { waiting: { reason: 'ContainerCreating', ...(message ? { message } : {}) } },
      })),
    };
  }

  private waitingForInfra(pod: Json, message: string): Json {
    this.settings.log(`Pod ${pod.metadata.name}: ${message}`);
    return { phase: 'Pending', hostIP: this.settings.nodeIp, conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message }] };
  }

  private podStatus(pod: Json, containerStatuses: Json[], infra: ContainerDetails): Json {
    const running = containerStatuses.filter((c) => c.state.running);
    const terminated = containerStatuses.filter((c) => c.state.terminated);
    const everStarted = containerStatuses.every((c) => c.state.running || c.state.terminated || c.lastState);
    let phase = 'Pending';
    if (terminated.length === containerStatuses.length) phase = terminated.every((c) => c.state.terminated.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (everStarted && (running.length > 0 || containerStatuses.some((c) => c.lastState))) phase = 'Running';
    const ready = running.length === containerStatuses.length;
    const notReady = containerStatuses.filter((c) => !c.state.running).map((c) => c.name);
    const startTime = (this.started.get(pod.metadata.uid) ?? this.started.set(pod.metadata.uid, nowIso()).get(pod.metadata.uid)) as string;
    return {
      phase,
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          ...(ready ? {} : { reason: 'ContainersNotReady', message: `containers with unready status: [${notReady.join(' ')}]` }),
        },
      ],
      hostIP: this.settings.nodeIp,
      podIP: pod.spec.hostNetwork ? this.settings.nodeIp : infra.NetworkSettings.IPAddress || undefined,
      startTime,
      containerStatuses,
    };
  }

  private async start(pod: Json, name: string, config: Json, restarts: number): Promise<string> {
    const hash = createHash('sha1').update(JSON.stringify(config)).digest('hex').slice(0, 8);
    const dockerName = `k8s_${name}.${hash}_${pod.metadata.name}_${pod.metadata.namespace}_${pod.metadata.uid}_${randomBytes(4).toString('hex')}`;
    const labels = {
      [LABEL_NAME]: String(pod.metadata.name),
      [LABEL_NAMESPACE]: String(pod.metadata.namespace),
      [LABEL_UID]: String(pod.metadata.uid),
      [LABEL_CONTAINER]: name,
      [LABEL_RESTARTS]: String(restarts),
    };
    const id = await this.docker.create(dockerName, { ...config, Labels: labels });
    try {
      await this.docker.start(id);
    } catch (error) {
      if (!(error instanceof DockerError)) throw error;
      throw new Error(`failed to start ${name} of ${pod.metadata.name}: ${error.message}`);
    }
    this.settings.log(`Started ${dockerName}`);
    return id;
  }

  private infraConfig(pod: Json): Json {
    const hostNetwork = pod.spec.hostNetwork === true;
    const clusterFirst = (pod.spec.dnsPolicy ?? 'ClusterFirst') === 'ClusterFirst';
    const dns =
      !hostNetwork && clusterFirst && this.settings.clusterDns
        ? {
            Dns: [this.settings.clusterDns],
            DnsSearch: searchPath(String(pod.metadata.namespace), this.settings.clusterDomain ?? 'cluster.local'),
            DnsOptions: ['ndots:5'],
          }
        : {};
    return {
      Image: this.settings.podInfraImage,
      // The pod's hostname is its name; the app containers share it with the network namespace.
      ...(hostNetwork ? {} : { Hostname: String(pod.metadata.name).slice(0, 63) }),
      // The app containers join its IPC namespace, which Docker allows only from a shareable one.
      HostConfig: { NetworkMode: hostNetwork ? 'host' : 'bridge', IpcMode: 'shareable', ...dns },
    };
  }

  private containerConfig(pod: Json, spec: Json, infraId: string, services: Json[]): Json {
    const hostNetwork = pod.spec.hostNetwork === true;
    const binds = ((spec.volumeMounts ?? []) as Json[]).map((mount) => {
      const volume = ((pod.spec.volumes ?? []) as Json[]).find((v) => v.name === mount.name);
      if (!volume) throw new Error(`volume ${mount.name} of ${spec.name} is not declared by pod ${pod.metadata.name}`);
      return `${this.volumePath(pod, volume)}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`;
    });
    const env = [...serviceEnv(services, String(pod.metadata.namespace)), ...((spec.env ?? []) as Json[]).map((e) => `${e.name}=${e.value ?? ''}`)];
    return {
      Image: spec.image,
      ...(spec.command ? { Entrypoint: spec.command } : {}),
      ...(spec.args ? { Cmd: spec.args } : {}),
      Env: env,
      ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
      HostConfig: {
        NetworkMode: hostNetwork ? 'host' : `container:${infraId}`,
        IpcMode: `container:${infraId}`,
        Privileged: spec.securityContext?.privileged === true,
        Binds: binds,
      },
    };
  }

  /** Where a volume lives on the node: the host path itself, or the kubelet's folder for the pod. */
  private volumePath(pod: Json, volume: Json): string {
    if (volume.hostPath) return String(volume.hostPath.path);
    if (volume.flocker) {
      const path = this.flockerPath(pod, volume);
      if (!path) throw new Error(`volume ${volume.name}: dataset ${volume.flocker.datasetName} is not attached yet`);
      return path;
    }
    if (volume.emptyDir) {
      const dir = `${this.settings.rootDir}/pods/${pod.metadata.uid}/volumes/kubernetes.io~empty-dir/${volume.name}`;
      mkdirSync(dir, { recursive: true });
      return dir;
    }
    throw new Error(`volume ${volume.name}: only emptyDir, hostPath and flocker are supported`);
  }
}

function stateOf(details: ContainerDetails): Json {
  if (details.State.Running) return { running: { startedAt: details.State.StartedAt } };
  return {
    terminated: {
      exitCode: details.State.ExitCode,
      reason: details.State.ExitCode === 0 ? 'Completed' : 'Error',
      startedAt: details.State.StartedAt,
      finishedAt: details.State.FinishedAt,
      containerID: `docker://${details.Id}`,
    },
  };
}

/** The DNS search path a pod gets: its namespace's services, all services, the cluster domain. */
export const searchPath = (namespace: string, domain: string): string[] => [`${namespace}.svc.${domain}`, `svc.${domain}`, domain];

/**
 * The variables the kubelet gives every container for the services of its namespace (and the
 * master's `kubernetes` service), e.g. KUBE_DNS_SERVICE_HOST=10.0.0.10, KUBE_DNS_SERVICE_PORT=53.
 */
export function serviceEnv(services: Json[], namespace: string): string[] {
  const visible = services.filter(
    (s) =>
      s.spec?.clusterIP &&
      s.spec.clusterIP !== 'None' &&
      (s.metadata?.namespace === namespace || (s.metadata?.namespace === 'default' && s.metadata?.name === 'kubernetes')),
  );
  return visible.flatMap((s) => {
    const prefix = String(s.metadata.name).toUpperCase().replace(/-/g, '_');
    const ports = (s.spec.ports ?? []) as Json[];
    return [
      `${prefix}_SERVICE_HOST=${s.spec.clusterIP}`,
      ...(ports[0] ? [`${prefix}_SERVICE_PORT=${ports[0].port}`] : []),
      ...ports.filter((p) => p.name).map((p) => `${prefix}_SERVICE_PORT_${String(p.name).toUpperCase().replace(/-/g, '_')}=${p.port}`),
    ];
  });
}
