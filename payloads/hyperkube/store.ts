/**
 * What the apiserver stand-in needs from etcd's v2 keys API: values with a modification index,
 * create-only and compare-and-swap writes. `EtcdV2Store` speaks it over HTTP to the
 * real etcd; `MemoryStore` keeps the same semantics in memory for unit tests.
 */
export interface StoredValue {
  key: string;
  value: string;
  /** etcd's modifiedIndex: the object's resourceVersion. */
  modifiedIndex: number;
}

export class KeyExists extends Error {}
export class KeyMissing extends Error {}
export class IndexMismatch extends Error {}

export interface KeyValueStore {
  get(key: string): Promise<StoredValue | undefined>;
  /** Every value whose key starts with `prefix/`, in key order. */
  list(prefix: string): Promise<StoredValue[]>;
  /** Fails with KeyExists when the key is taken (etcd: prevExist=false). */
  create(key: string, value: string): Promise<StoredValue>;
  /** Fails with KeyMissing, or IndexMismatch when `prevIndex` is given and stale (etcd: prevIndex). */
  update(key: string, value: string, prevIndex?: number): Promise<StoredValue>;
  /** Fails with KeyMissing. */
  delete(key: string): Promise<StoredValue>;
}

export class MemoryStore implements KeyValueStore {
  private index = 0;
  private readonly values = new Map<string, StoredValue>();

  async get(key: string): Promise<StoredValue | undefined> {
    return this.values.get(key);
  }

  async list(prefix: string): Promise<StoredValue[]> {
    return [...this.values.values()].filter((v) => v.key.startsWith(`${prefix}/`)).sort((a, b) => a.key.localeCompare(b.key));
  }

  async create(key: string, value: string): Promise<StoredValue> {
    if (this.values.has(key)) throw new KeyExists(key);
    return this.put(key, value);
  }

  async update(key: string, value: string, prevIndex?: number): Promise<StoredValue> {
    const old = this.values.get(key);
    if (!old) throw new KeyMissing(key);
    if (prevIndex !== undefined && old.modifiedIndex !== prevIndex) throw new IndexMismatch(key);
    return this.put(key, value);
  }

  async delete(key: string): Promise<StoredValue> {
    const old = this.values.get(key);
    if (!old) throw new KeyMissing(key);
    this.values.delete(key);
    return old;
  }

  private put(key: string, value: string): StoredValue {
    const stored = { key, value, modifiedIndex: ++this.index };
    this.values.set(key, stored);
    return stored;
  }
}

interface EtcdNode {
  key: string;
  value?: string;
  dir?: boolean;
  nodes?: EtcdNode[];
  modifiedIndex: number;
}

interface EtcdAnswer {
  node?: EtcdNode;
  prevNode?: EtcdNode;
  errorCode?: number;
  message?: string;
}

/** etcd's v2 error codes the registry turns into its own errors. */
const KEY_NOT_FOUND = 100;
const COMPARE_FAILED = 101;
const NODE_EXIST = 105;

/** The v2 keys API of a real etcd (Debian's, run with --enable-v2) over HTTP. */
export class EtcdV2Store implements KeyValueStore {
  constructor(private readonly endpoint: string) {}

  async get(key: string): Promise<StoredValue | undefined> {
    const answer = await this.call('GET', key);
    if (answer.errorCode === KEY_NOT_FOUND) return undefined;
    return this.value(answer.node, key);
  }

  async list(prefix: string): Promise<StoredValue[]> {
    const answer = await this.call('GET', prefix, { recursive: 'true', sorted: 'true' });
    if (answer.errorCode === KEY_NOT_FOUND) return [];
    const found: StoredValue[] = [];
    const walk = (node: EtcdNode) => {
      if (node.dir) for (const child of node.nodes ?? []) walk(child);
      else if (node.value !== undefined) found.push({ key: node.key, value: node.value, modifiedIndex: node.modifiedIndex });
    };
    if (answer.node) walk(answer.node);
    return found.sort((a, b) => a.key.localeCompare(b.key));
  }

  async create(key: string, value: string): Promise<StoredValue> {
    const answer = await this.call('PUT', key, { prevExist: 'false' }, value);
    if (answer.errorCode === NODE_EXIST) throw new KeyExists(key);
    return this.value(answer.node, key);
  }

  async update(key: string, value: string, prevIndex?: number): Promise<StoredValue> {
    const conditions: Record<string, string> = prevIndex === undefined ? { prevExist: 'true' } : { prevIndex: String(prevIndex) };
    const answer = await this.call('PUT', key, conditions, value);
    if (answer.errorCode === KEY_NOT_FOUND) throw new KeyMissing(key);
    if (answer.errorCode === COMPARE_FAILED) throw new IndexMismatch(key);
    return this.value(answer.node, key);
  }

  async delete(key: string): Promise<StoredValue> {
    const answer = await this.call('DELETE', key);
    if (answer.errorCode === KEY_NOT_FOUND) throw new KeyMissing(key);
    return this.value(answer.prevNode, key);
  }

  private async call(method: string, key: string, query: Record<string, string> = {}, value?: string): Promise<EtcdAnswer> {
    const url = `${this.endpoint}/v2/keys${key}${Object.keys(query).length ? `?${new URLSearchParams(query)}` : ''}`;
    const response = await fetch(url, {
      method,
      ...(value === undefined
        ? {}
        : { body: new URLSearchParams({ value }), headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    });
    const answer = (await response.json()) as EtcdAnswer;
    if (answer.errorCode !== undefined && ![KEY_NOT_FOUND, COMPARE_FAILED, NODE_EXIST].includes(answer.errorCode))
      throw new Error(`etcd ${method} ${key}: ${answer.message ?? 'error'} (code ${answer.errorCode})`);
    return answer;
  }

  private value(node: EtcdNode | undefined, key: string): StoredValue {
    if (!node || node.value === undefined) throw new Error(`etcd answered for ${key} without a value`);
    return { key: node.key, value: node.value, modifiedIndex: node.modifiedIndex };
  }
}
