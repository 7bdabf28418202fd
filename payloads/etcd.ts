/**
 * A client of etcd's v2 keys API over HTTP, for the stand-ins (flannel's leases, the apiserver's
 * registry). Several endpoints may be given (`--etcd-endpoints a,b`): a request goes to the first
 * that answers, as etcd's Go client did.
 */

export interface EtcdNode {
  key: string;
  value?: string;
  dir?: boolean;
  nodes?: EtcdNode[];
  modifiedIndex: number;
  /** Seconds left, for keys written with a TTL. */
  ttl?: number;
}

export interface EtcdAnswer {
  node?: EtcdNode;
  prevNode?: EtcdNode;
  errorCode?: number;
  message?: string;
}

/** etcd's v2 error codes that are answers rather than failures. */
export const KEY_NOT_FOUND = 100;
export const COMPARE_FAILED = 101;
export const NODE_EXIST = 105;

export interface EtcdValue {
  key: string;
  value: string;
  modifiedIndex: number;
  ttl?: number;
}

export class EtcdV2Client {
  constructor(readonly endpoints: readonly string[]) {
    if (!endpoints.length) throw new Error('no etcd endpoints given');
  }

  async get(key: string): Promise<EtcdValue | undefined> {
    const answer = await this.call('GET', key);
    return answer.errorCode === KEY_NOT_FOUND ? undefined : valueOf(answer.node, key);
  }

  /** Every value under `prefix` (recursively), in key order. */
  async list(prefix: string): Promise<EtcdValue[]> {
    const answer = await this.call('GET', prefix, { recursive: 'true', sorted: 'true' });
    const found: EtcdValue[] = [];
    const walk = (node: EtcdNode) => {
      if (node.dir) for (const child of node.nodes ?? []) walk(child);
      else if (node.value !== undefined) found.push(valueOf(node, node.key));
    };
    if (answer.node) walk(answer.node);
    return found.sort((a, b) => a.key.localeCompare(b.key));
  }

  /**
   * Waits for a change under `prefix` (etcd's wait=true, recursive) after etcd index `afterIndex`,
   * for up to `timeoutMs`: a long-poll in place of polling. Resolves with the index to wait after
   * next time (the change's, or the cluster's current one when the history was compacted).
   */
  async waitForChange(prefix: string, afterIndex: number, timeoutMs: number): Promise<number> {
    let response: Response;
    try {
      response = await fetch(keyUrl(this.endpoints[0] ?? '', prefix, `wait=true&recursive=true&waitIndex=${afterIndex + 1}`), {
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') return afterIndex;
      throw error;
    }
    const answer = (await response.json()) as EtcdAnswer;
    // 401: the index was cleared from etcd's history; start again from now.
    if (answer.errorCode === 401) return Number(response.headers.get('x-etcd-index') ?? afterIndex);
    return answer.node?.modifiedIndex ?? afterIndex;
  }

  /** The cluster's current index (X-Etcd-Index), to wait after. */
  async index(key = '/'): Promise<number> {
    const response = await fetch(keyUrl(this.endpoints[0] ?? '', key), { signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    return Number(response.headers.get('x-etcd-index') ?? 0);
  }

  /** Creates the key; false when it exists already (prevExist=false). */
  async create(key: string, value: string, options: { ttl?: number } = {}): Promise<EtcdValue | false> {
    const answer = await this.call('PUT', key, { prevExist: 'false' }, value, options.ttl);
    return answer.errorCode === NODE_EXIST ? false : valueOf(answer.node, key);
  }

  /** Writes the key unconditionally. */
  async set(key: string, value: string, options: { ttl?: number } = {}): Promise<EtcdValue> {
    return valueOf((await this.call('PUT', key, {}, value, options.ttl)).node, key);
  }

  /** A raw request: v2 answers with an errorCode are returned when they are one of the codes above. */
  async call(method: string, key: string, query: Record<string, string> = {}, value?: string, ttl?: number): Promise<EtcdAnswer> {
    const search = new URLSearchParams(query);
    const body = value === undefined ? undefined : new URLSearchParams({ value, ...(ttl === undefined ? {} : { ttl: String(ttl) }) });
    let lastError: unknown;
    for (const endpoint of this.endpoints) {
      let response: Response;
      try {
        response = await fetch(keyUrl(endpoint, key, search.toString()), {
          method,
          ...(body ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (error) {
        lastError = error;
        continue;
      }
      const answer = (await response.json()) as EtcdAnswer;
      if (answer.errorCode !== undefined && ![KEY_NOT_FOUND, COMPARE_FAILED, NODE_EXIST].includes(answer.errorCode))
        throw new Error(`etcd ${method} ${key}: ${answer.message ?? 'error'} (code ${answer.errorCode})`);
      return answer;
    }
    const cause = lastError instanceof Error ? ((lastError.cause as Error | undefined)?.message ?? lastError.message) : String(lastError);
    throw new Error(`client: etcd cluster is unavailable or misconfigured (${this.endpoints.join(', ')}: ${cause})`);
  }
}

/** The v2 keys URL of a key on one endpoint. */
const keyUrl = (endpoint: string, key: string, query = ''): string => `${endpoint.replace(/\/+$/, '')}/v2/keys${key}${query ? `?${query}` : ''}`;

/** A node of an answer as a value; an answer without one is an error. */
export function valueOf(node: EtcdNode | undefined, key: string): EtcdValue {
  if (!node || node.value === undefined) throw new Error(`etcd answered for ${key} without a value`);
  return { key: node.key, value: node.value, modifiedIndex: node.modifiedIndex, ...(node.ttl === undefined ? {} : { ttl: node.ttl }) };
}
