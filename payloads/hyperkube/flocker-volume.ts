import { FlockerClient, type FlockerClientOptions } from '../flocker/client.js';
import type { Json } from './client.js';

/**
 * The kubelet's `kubernetes.io/flocker` volume (pkg/volume/flocker of 1.2/1.3, through flocker-go):
 * find the dataset by `metadata.name`, make this node its primary when it is not, wait for the
 * dataset agent to report it attached here (5 s ticks, 2 min), and give the pod its host path
 * `/flocker/<dataset_id>` (the container binds it). Teardown is a no-op, as in the plugin: the
 * dataset stays where it is until someone moves or deletes it.
 */

export const TICK_MS = 5_000;
export const DEADLINE_MS = 120_000;

/** FLOCKER_CONTROL_SERVICE_* as the plugin read them; an empty value means the default. */
export function flockerClientOptions(env: Record<string, string | undefined>): FlockerClientOptions {
  const pick = (name: string, fallback: string) => env[`FLOCKER_CONTROL_SERVICE_${name}`] || fallback;
  const port = Number.parseInt(pick('PORT', '4523'), 10);
  return {
    host: pick('HOST', 'localhost'),
    port: Number.isInteger(port) ? port : 4523,
    caFile: pick('CA_FILE', '/etc/flocker/cluster.crt'),
    keyFile: pick('CLIENT_KEY_FILE', '/etc/flocker/apiuser.key'),
    certFile: pick('CLIENT_CERT_FILE', '/etc/flocker/apiuser.crt'),
  };
}

/** What the plugin needs of the control service (flocker-go's client). */
export type FlockerApi = Pick<FlockerClient, 'listDatasets' | 'datasetStates' | 'nodes' | 'moveDataset'>;

/** Sets up one flocker volume for a kubelet on `hostIp`; resolves to the dataset's path on the node. */
export async function setUpFlockerVolume(
  api: FlockerApi,
  datasetName: string,
  hostIp: string,
  options: { tickMs?: number; deadlineMs?: number; signal?: AbortSignal } = {},
): Promise<string> {
  const configured = (await api.listDatasets()).find((d) => d.metadata?.name === datasetName && !d.deleted);
  if (!configured) throw new Error('Configuration not found by Name');
  const id = configured.dataset_id;
  let state = (await api.datasetStates()).find((s) => s.dataset_id === id);
  if (!state) throw new Error(`The volume '${datasetName}' is not available in Flocker. You need to create this manually with Flocker CLI before using it.`);
  const nodes = await api.nodes();
  const me = nodes.find((n) => n.host === hostIp);
  if (!me) throw new Error(`No node found with IP '${hostIp}', available nodes: ${nodes.map((n) => n.host).join(', ') || 'none'}`);
  if (state.primary !== me.uuid || !state.path) {
    if (configured.primary !== me.uuid) await api.moveDataset(id, me.uuid);
    const deadline = Date.now() + (options.deadlineMs ?? DEADLINE_MS);
    for (;;) {
      await sleep(options.tickMs ?? TICK_MS, options.signal);
      state = (await api.datasetStates()).find((s) => s.dataset_id === id);
      if (state?.primary === me.uuid && state.path) break;
      if (Date.now() >= deadline) throw new Error(`Timed out waiting for the dataset_id: '${id}' to be moved to the primary: '${me.uuid}'`);
    }
  }
  return String(state.path);
}

interface Attempt {
  path?: string;
  error?: string;
  running?: Promise<void>;
  finishedAt?: number;
}

/**
 * The flocker volumes of the pods on one node. Each volume is set up in the background, so one
 * pod waiting its two minutes does not hold up the others (the real kubelet had a worker per
 * pod); a failed set-up is tried again at the next sync after a tick, as the kubelet retried.
 */
export class FlockerVolumes {
  private readonly attempts = new Map<string, Attempt>();
  private client?: FlockerApi;

  constructor(
    private readonly options: {
      /** The kubelet's environment: FLOCKER_CONTROL_SERVICE_*. */
      env: Record<string, string | undefined>;
      hostIp: string;
      /** A set-up failed: the kubelet logs it and posts the pod's FailedMount event. */
      onError: (pod: Json, message: string) => void;
      /** A dataset is attached: the pod can start. */
      onAttached?: () => void;
      makeClient?: (options: FlockerClientOptions) => FlockerApi;
      retryMs?: number;
    },
  ) {}

  /** The host path of a pod's flocker volume once it is attached here; undefined while it is not (yet). */
  path(pod: Json, volume: Json): string | undefined {
    const key = `${pod.metadata.uid}/${volume.name}`;
    const attempt = this.attempts.get(key) ?? {};
    this.attempts.set(key, attempt);
    if (attempt.path) return attempt.path;
    if (!attempt.running && (attempt.finishedAt === undefined || Date.now() - attempt.finishedAt >= (this.options.retryMs ?? TICK_MS))) {
      this.client ??= (this.options.makeClient ?? ((o) => new FlockerClient(o)))(flockerClientOptions(this.options.env));
      attempt.running = setUpFlockerVolume(this.client, String(volume.flocker?.datasetName ?? ''), this.options.hostIp)
        .then((path) => {
          attempt.path = path;
          attempt.error = undefined;
          this.options.onAttached?.();
        })
        .catch((error: Error) => {
          attempt.error = error.message;
          this.options.onError(pod, `Unable to mount volumes for pod "${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})": ${error.message}`);
        })
        .finally(() => {
          attempt.running = undefined;
          attempt.finishedAt = Date.now();
        });
    }
    return undefined;
  }

  /** The last error of a pod's flocker volumes, if any. */
  error(pod: Json): string | undefined {
    for (const [key, attempt] of this.attempts) if (key.startsWith(`${pod.metadata.uid}/`) && attempt.error) return attempt.error;
    return undefined;
  }

  /** Forgets the pods that are gone (their datasets stay where they are: teardown is a no-op). */
  keepOnly(uids: Set<string>): void {
    for (const key of this.attempts.keys()) if (!uids.has(key.split('/')[0] ?? '')) this.attempts.delete(key);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });
