import { COMPARE_FAILED, EtcdV2Client, KEY_NOT_FOUND, valueOf } from '../etcd.js';
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

/** The v2 keys API of a real etcd (Debian's, run with --enable-v2) over HTTP. */
export class EtcdV2Store implements KeyValueStore {
  private readonly client: EtcdV2Client;
  constructor(endpoints: string | readonly string[]) {
    this.client = new EtcdV2Client(typeof endpoints === 'string' ? [endpoints] : endpoints);
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.client.get(key);
  }

  list(prefix: string): Promise<StoredValue[]> {
    return this.client.list(prefix);
  }

  async create(key: string, value: string): Promise<StoredValue> {
    const created = await this.client.create(key, value);
    if (!created) throw new KeyExists(key);
    return created;
  }

  async update(key: string, value: string, prevIndex?: number): Promise<StoredValue> {
    const conditions: Record<string, string> = prevIndex === undefined ? { prevExist: 'true' } : { prevIndex: String(prevIndex) };
    const answer = await this.client.call('PUT', key, conditions, value);
    if (answer.errorCode === KEY_NOT_FOUND) throw new KeyMissing(key);
    if (answer.errorCode === COMPARE_FAILED) throw new IndexMismatch(key);
    return valueOf(answer.node, key);
  }

  async delete(key: string): Promise<StoredValue> {
    const answer = await this.client.call('DELETE', key);
    if (answer.errorCode === KEY_NOT_FOUND) throw new KeyMissing(key);
    return valueOf(answer.prevNode, key);
  }
}
