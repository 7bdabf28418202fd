/**
 * A client of the Flocker control service's REST API, as flocker-go (the library Kubernetes'
 * flocker volume plugin used) talked to it: HTTPS to https://HOST:4523/v1 with the cluster CA,
 * presenting a `user-*` certificate, the control service's certificate checked against HOST.
 * API errors become FlockerApiError; network and TLS errors pass through with their codes.
 */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent } from 'node:https';
import { jsonRequest } from '../json-http.js';
import type { DatasetConfiguration, DatasetCreate, DatasetState, Lease, NodeInfo } from './types.js';

export const DEFAULT_API_PORT = 4523;
const TIMEOUT_MS = 30_000;

export interface FlockerClientOptions {
  host: string;
  port?: number;
  caFile: string;
  keyFile: string;
  certFile: string;
  timeoutMs?: number;
}

export class FlockerApiError extends Error {
  constructor(
    readonly status: number,
    readonly description: string,
    readonly body: unknown,
  ) {
    super(`Flocker API error ${status}: ${description}`);
    this.name = 'FlockerApiError';
  }
}

export interface ApiResponse<T> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
}

/** X-If-Configuration-Matches: do it only if the configuration is still the one with this tag. */
export interface Conditional {
  ifConfigurationMatches?: string;
}

export class FlockerClient {
  private readonly agent = new Agent({ keepAlive: true });

  constructor(readonly options: FlockerClientOptions) {}

  /** One API call; a status of 400 or more is thrown as FlockerApiError. */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const { host, caFile, keyFile, certFile } = this.options;
    const port = this.options.port ?? DEFAULT_API_PORT;
    const timeoutMs = this.options.timeoutMs ?? TIMEOUT_MS;
    const answer = await jsonRequest({
      https: true,
      host,
      port,
      method,
      path: `/v1${path}`,
      ca: readFileSync(caFile),
      key: readFileSync(keyFile),
      cert: readFileSync(certFile),
      // servername comes from host (none for an IP): the certificate must name HOST. The
      // connection is kept for the next call, as Go's http.Client in flocker-go kept it.
      agent: this.agent,
      headers,
      json: body,
      timeoutMs,
      timeoutMessage: `${method} https://${host}:${port}/v1${path}: no answer in ${timeoutMs / 1000} s`,
    });
    if (answer.status >= 400) {
      const { body } = answer;
      const description = (body as { description?: unknown } | undefined)?.description;
      throw new FlockerApiError(
        answer.status,
        typeof description === 'string' ? description : typeof body === 'string' ? body : answer.text,
        body,
      );
    }
    return { status: answer.status, headers: answer.headers, body: answer.body as T };
  }

  private async body<T>(method: string, path: string, body?: unknown, conditional?: Conditional): Promise<T> {
    const headers: Record<string, string> = conditional?.ifConfigurationMatches
      ? { 'X-If-Configuration-Matches': conditional.ifConfigurationMatches }
      : {};
    return (await this.request<T>(method, path, body, headers)).body;
  }

  /** GET /v1/version: the version string. */
  async version(): Promise<string> {
    return (await this.body<{ flocker: string }>('GET', '/version')).flocker;
  }

  listDatasets(): Promise<DatasetConfiguration[]> {
    return this.body('GET', '/configuration/datasets');
  }

  /** The configured datasets with the X-Configuration-Tag they belong to. */
  async listDatasetsWithTag(): Promise<{ datasets: DatasetConfiguration[]; tag: string }> {
    const response = await this.request<DatasetConfiguration[]>('GET', '/configuration/datasets');
    return { datasets: response.body, tag: String(response.headers['x-configuration-tag'] ?? '') };
  }

  createDataset(body: DatasetCreate, conditional?: Conditional): Promise<DatasetConfiguration> {
    return this.body('POST', '/configuration/datasets', body, conditional);
  }

  moveDataset(datasetId: string, primary: string, conditional?: Conditional): Promise<DatasetConfiguration> {
    return this.body('POST', `/configuration/datasets/${encodeURIComponent(datasetId)}`, { primary }, conditional);
  }

  deleteDataset(datasetId: string, conditional?: Conditional): Promise<DatasetConfiguration> {
    return this.body('DELETE', `/configuration/datasets/${encodeURIComponent(datasetId)}`, undefined, conditional);
  }

  datasetStates(): Promise<DatasetState[]> {
    return this.body('GET', '/state/datasets');
  }

  nodes(): Promise<NodeInfo[]> {
    return this.body('GET', '/state/nodes');
  }

  async nodeByEra(era: string): Promise<string> {
    return (await this.body<{ uuid: string }>('GET', `/state/nodes/by_era/${encodeURIComponent(era)}`)).uuid;
  }

  leases(): Promise<Lease[]> {
    return this.body('GET', '/configuration/leases');
  }

  acquireLease(datasetId: string, nodeUuid: string, expires: number | null): Promise<Lease> {
    return this.body('POST', '/configuration/leases', { dataset_id: datasetId, node_uuid: nodeUuid, expires });
  }

  releaseLease(datasetId: string): Promise<Lease> {
    return this.body('DELETE', `/configuration/leases/${encodeURIComponent(datasetId)}`);
  }
}
