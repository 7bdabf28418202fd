import { jsonRequest } from '../json-http.js';

/**
 * The few calls of the Docker Engine API the kubelet stand-in makes, over the node's socket
 * (mounted into the kubelet's container as /var/run/docker.sock, as the guide does).
 */

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Status: string;
  /** Unix seconds. */
  Created: number;
  Labels: Record<string, string>;
}

/** The parts of `docker inspect` the kubelet reads. */
export interface ContainerDetails {
  Id: string;
  Image: string;
  State: { Running: boolean; ExitCode: number; StartedAt: string; FinishedAt: string; Error?: string };
  NetworkSettings: { IPAddress?: string };
}

const RUNTIME_REQUEST_TIMEOUT_MS = 120_000;

export class DockerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class DockerClient {
  constructor(private readonly socketPath = '/var/run/docker.sock') {}

  listContainers(labels: string[] = []): Promise<ContainerSummary[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: labels }));
    return this.call('GET', `/containers/json?all=1&filters=${filters}`) as Promise<ContainerSummary[]>;
  }

  async create(name: string, config: Record<string, unknown>): Promise<string> {
    return ((await this.call('POST', `/containers/create?name=${encodeURIComponent(name)}`, config)) as { Id: string }).Id;
  }

  async start(id: string): Promise<void> {
    await this.call('POST', `/containers/${id}/start`);
  }

  inspect(id: string): Promise<ContainerDetails> {
    return this.call('GET', `/containers/${id}/json`) as Promise<ContainerDetails>;
  }

  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/containers/${id}?force=1&v=1`);
  }

  async hasImage(image: string): Promise<boolean> {
    return this.call('GET', `/images/${encodeURIComponent(image)}/json`).then(
      () => true,
      (error: unknown) => (error instanceof DockerError && error.status === 404 ? false : Promise.reject(error)),
    );
  }

  /** The engine's version ("20.10.24+dfsg1"), which is also the check that the daemon answers. */
  async version(): Promise<string> {
    return String(((await this.call('GET', '/version')) as { Version?: string }).Version ?? '');
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const answer = await jsonRequest({
      socketPath: this.socketPath,
      method,
      path,
      json: body,
      // The kubelet's --runtime-request-timeout (2m): under emulation a container start can take
      // well over 30 s, and giving up early made the kubelet remove and start it again.
      timeoutMs: RUNTIME_REQUEST_TIMEOUT_MS,
      timeoutMessage: `docker ${method} ${path}: no answer in ${RUNTIME_REQUEST_TIMEOUT_MS / 1000} s`,
    });
    if (answer.status >= 400)
      throw new DockerError(answer.status, (answer.body as { message?: string } | undefined)?.message ?? answer.text);
    return answer.body;
  }
}
