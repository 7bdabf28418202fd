import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Json } from './client.js';
import { DockerError, type ContainerSummary, type DockerClient } from './docker.js';

/**
 * Runs pods as the kubelet of 1.2/1.3 did with Docker: per pod a pause container holding the
 * network (the host's, for hostNetwork pods), then one container per spec container joining it,
 * named k8s_<container>.<hash>_<pod>_<namespace>_<uid>_<random> and labelled io.kubernetes.*.
 * A container that exits is started again (restartPolicy Always, as for static pods).
 */

export interface PodSettings {
  nodeName: string;
  podInfraImage: string;
  clusterDns?: string;
  clusterDomain?: string;
  rootDir: string;
  log: (message: string) => void;
}

const LABEL_NAME = 'io.kubernetes.pod.name';
const LABEL_NAMESPACE = 'io.kubernetes.pod.namespace';
const LABEL_UID = 'io.kubernetes.pod.uid';
const LABEL_CONTAINER = 'io.kubernetes.container.name';
const POD_CONTAINER = 'POD';

export class PodRunner {
  constructor(
    private readonly docker: DockerClient,
    private readonly settings: PodSettings,
  ) {}

  /** Brings the node's containers to the wanted pods: missing ones created, exited ones restarted, others removed. */
  async sync(pods: Json[]): Promise<void> {
    const existing = await this.docker.listContainers([LABEL_UID]);
    const wanted = new Set(pods.map((p) => String(p.metadata.uid)));
    for (const container of existing) {
      if (!wanted.has(container.Labels[LABEL_UID] ?? '')) {
        this.settings.log(`Killing unwanted container ${container.Names[0] ?? container.Id}`);
        await this.docker.remove(container.Id);
      }
    }
    for (const pod of pods) {
      try {
        await this.syncPod(
          pod,
          existing.filter((c) => c.Labels[LABEL_UID] === pod.metadata.uid),
        );
      } catch (error) {
        this.settings.log(`Error syncing pod ${pod.metadata.name}_${pod.metadata.namespace}: ${(error as Error).message}`);
      }
    }
  }

  private async syncPod(pod: Json, containers: ContainerSummary[]): Promise<void> {
    const running = (name: string) => containers.find((c) => c.Labels[LABEL_CONTAINER] === name && c.State === 'running');
    let infra = running(POD_CONTAINER);
    if (!infra) {
      for (const stale of containers) await this.docker.remove(stale.Id);
      containers = [];
      const id = await this.start(pod, POD_CONTAINER, this.infraConfig(pod));
      infra = { Id: id } as ContainerSummary;
    }
    for (const spec of (pod.spec.containers ?? []) as Json[]) {
      if (running(spec.name)) continue;
      for (const old of containers.filter((c) => c.Labels[LABEL_CONTAINER] === spec.name)) await this.docker.remove(old.Id);
      await this.start(pod, spec.name, this.containerConfig(pod, spec, infra.Id));
    }
  }

  private async start(pod: Json, name: string, config: Json): Promise<string> {
    if (!(await this.docker.hasImage(config.Image))) throw new Error(`image ${config.Image} is not present on ${this.settings.nodeName}`);
    const hash = createHash('sha1').update(JSON.stringify(config)).digest('hex').slice(0, 8);
    const dockerName = `k8s_${name}.${hash}_${pod.metadata.name}_${pod.metadata.namespace}_${pod.metadata.uid}_${randomBytes(4).toString('hex')}`;
    const labels = {
      [LABEL_NAME]: String(pod.metadata.name),
      [LABEL_NAMESPACE]: String(pod.metadata.namespace),
      [LABEL_UID]: String(pod.metadata.uid),
      [LABEL_CONTAINER]: name,
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
    const dns =
      !hostNetwork && this.settings.clusterDns
        ? {
            Dns: [this.settings.clusterDns],
            DnsSearch: searchPath(String(pod.metadata.namespace), this.settings.clusterDomain ?? 'cluster.local'),
          }
        : {};
    return {
      Image: this.settings.podInfraImage,
      // The app containers join its IPC namespace, which Docker allows only from a shareable one.
      HostConfig: { NetworkMode: hostNetwork ? 'host' : 'bridge', IpcMode: 'shareable', ...dns },
    };
  }

  private containerConfig(pod: Json, spec: Json, infraId: string): Json {
    const hostNetwork = pod.spec.hostNetwork === true;
    const binds = ((spec.volumeMounts ?? []) as Json[]).map((mount) => {
      const volume = ((pod.spec.volumes ?? []) as Json[]).find((v) => v.name === mount.name);
      if (!volume) throw new Error(`volume ${mount.name} of ${spec.name} is not declared by pod ${pod.metadata.name}`);
      return `${this.volumePath(pod, volume)}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`;
    });
    return {
      Image: spec.image,
      ...(spec.command ? { Entrypoint: spec.command } : {}),
      ...(spec.args ? { Cmd: spec.args } : {}),
      Env: ((spec.env ?? []) as Json[]).map((e) => `${e.name}=${e.value ?? ''}`),
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
    if (volume.emptyDir) {
      const dir = `${this.settings.rootDir}/pods/${pod.metadata.uid}/volumes/kubernetes.io~empty-dir/${volume.name}`;
      mkdirSync(dir, { recursive: true });
      return dir;
    }
    throw new Error(`volume ${volume.name}: only emptyDir and hostPath are supported`);
  }
}

/** The DNS search path a pod gets: its namespace's services, all services, the cluster domain. */
export const searchPath = (namespace: string, domain: string): string[] => [`${namespace}.svc.${domain}`, `svc.${domain}`, domain];
