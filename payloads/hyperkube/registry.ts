import { randomInt, randomUUID } from 'node:crypto';
import { PREPARE, type Problem } from './objects.js';
import { matches, SelectorError } from './selectors.js';
import { IndexMismatch, KeyExists, KeyMissing, type KeyValueStore, type StoredValue } from './store.js';

/**
 * The apiserver stand-in's object registry: v1 objects kept in etcd under /registry/<resource>/,
 * as Kubernetes 1.2/1.3 kept them, with the metadata the server owns (uid, resourceVersion from
 * etcd's index, creationTimestamp, selfLink) and errors in the v1 Status shape kubectl reads.
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  selfLink?: string;
  labels?: Record<string, string>;
  [field: string]: unknown;
}

export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** A v1 Status failure: what the apiserver answers with its HTTP code. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
  }

  toStatus(): KubeObject {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      details: this.details,
      code: this.code,
    };
  }
}

export interface ResourceType {
  /** Plural, as in the URL: nodes, namespaces. */
  resource: string;
  kind: string;
  namespaced: boolean;
  /** Where 1.2/1.3 kept them under /registry, when not the plural. */
  storage?: string;
  shortNames: string[];
}

export const NODES: ResourceType = { resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'] };
export const NAMESPACES: ResourceType = { resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'] };
export const PODS: ResourceType = { resource: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'] };
export const SERVICES: ResourceType = { resource: 'services', kind: 'Service', namespaced: true, storage: 'services/specs', shortNames: ['svc'] };
export const ENDPOINTS: ResourceType = {
  resource: 'endpoints',
  kind: 'Endpoints',
  namespaced: true,
  storage: 'services/endpoints',
  shortNames: ['ep'],
};
export const REPLICATION_CONTROLLERS: ResourceType = {
  resource: 'replicationcontrollers',
  kind: 'ReplicationController',
  namespaced: true,
  storage: 'controllers',
  shortNames: ['rc'],
};
export const EVENTS: ResourceType = { resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'] };
export const RESOURCE_TYPES = [NODES, NAMESPACES, PODS, SERVICES, ENDPOINTS, REPLICATION_CONTROLLERS, EVENTS];

/** Which part of an object a PUT replaces: the spec side (status kept) or only the status. */
export type UpdatePart = 'main' | 'status';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export class Registry {
  /**
   * Lists served again until this registry writes objects of their kind (a node's heartbeat leaves
   * the cached pods as they are): components list often, and under emulation each etcd read and
   * decode is dear. Only this apiserver writes under /registry. A list's generation is the count
   * of writes to its kind (`writes` below).
   */
  private readonly lists = new Map<string, { generation: number; list: KubeObject }>();
  /** Writes per resource, and who waits for the next one (the stand-ins' long-poll in place of watches). */
  private readonly writes = new Map<string, number>();
  private readonly waiting = new Set<() => void>();

  constructor(private readonly store: KeyValueStore) {}

  async create(type: ResourceType, object: KubeObject, namespace?: string): Promise<KubeObject> {
    if (type.namespaced) await this.get(NAMESPACES, namespace ?? '');
    const generate = object.metadata?.generateName;
    if (!object.metadata?.name && generate) object = { ...object, metadata: { ...object.metadata, name: `${generate}${randomSuffix()}` } };
    const name = this.validName(type, object);
    object = structuredClone(object);
    const problems = PREPARE[type.resource]?.(object) ?? [];
    if (problems.length) throw invalidAll(type, name, problems);
    const key = this.key(type, name, namespace);
    const full: KubeObject = {
      ...object,
      kind: type.kind,
      apiVersion: 'v1',
      metadata: {
        ...object.metadata,
        name,
        ...(type.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        selfLink: this.selfLink(type, name, namespace),
      },
    };
    delete full.metadata?.resourceVersion;
    try {
      return this.decode(await this.written(type, this.store.create(key, JSON.stringify(full))));
    } catch (error) {
      if (error instanceof KeyExists)
        throw new StatusError(409, 'AlreadyExists', `${type.resource} "${name}" already exists`, { name, kind: type.resource });
      throw error;
    }
  }

  async get(type: ResourceType, name: string, namespace?: string): Promise<KubeObject> {
    const stored = await this.store.get(this.key(type, name, namespace));
    if (!stored) throw notFound(type, name);
    return this.decode(stored);
  }

  /** A v1 List of the objects of the type (in one namespace, or all), filtered by label and field selectors. */
  async list(type: ResourceType, namespace?: string, selectors: { labels?: string; fields?: string } = {}): Promise<KubeObject> {
    const cacheKey = JSON.stringify([type.resource, namespace, selectors.labels, selectors.fields]);
    const cached = this.lists.get(cacheKey);
    const generation = this.writes.get(type.resource) ?? 0;
    if (cached?.generation === generation) return structuredClone(cached.list);
    const list = await this.listFromStore(type, namespace, selectors);
    this.lists.set(cacheKey, { generation, list });
    return structuredClone(list);
  }

  private async listFromStore(type: ResourceType, namespace?: string, selectors: { labels?: string; fields?: string } = {}): Promise<KubeObject> {
    const prefix = `/registry/${storageOf(type)}${type.namespaced && namespace ? `/${namespace}` : ''}`;
    const stored = await this.store.list(prefix);
    let items: KubeObject[];
    try {
      items = stored.map((v) => this.decode(v)).filter((o) => matches(o, selectors.labels ?? '', selectors.fields ?? ''));
    } catch (error) {
      if (error instanceof SelectorError) throw new StatusError(400, 'BadRequest', error.message, {});
      throw error;
    }
    const latest = Math.max(0, ...items.map((i) => Number(i.metadata?.resourceVersion)));
    return {
      kind: `${type.kind}List`,
      apiVersion: 'v1',
      metadata: { selfLink: this.selfLink(type, undefined, namespace), resourceVersion: String(latest) },
      items,
    };
  }

  /**
   * Replaces an object; a stale metadata.resourceVersion is a conflict, as in Kubernetes. A main
   * update keeps the stored status, a status update keeps everything else.
   */
  async update(type: ResourceType, name: string, object: KubeObject, namespace?: string, part: UpdatePart = 'main'): Promise<KubeObject> {
    const current = await this.get(type, name, namespace);
    if (object.metadata?.name !== undefined && object.metadata.name !== name)
      throw invalid(type, name, 'metadata.name', 'FieldValueInvalid', `Invalid value: "${object.metadata.name}": field is immutable`);
    const wanted = object.metadata?.resourceVersion;
    const base = part === 'status' ? { ...current, status: object.status } : { ...object, status: object.status ?? current.status };
    const next: KubeObject = {
      ...base,
      kind: type.kind,
      apiVersion: 'v1',
      metadata: {
        ...(part === 'status' ? current.metadata : object.metadata),
        ...pick(current.metadata, ['name', 'namespace', 'uid', 'creationTimestamp', 'selfLink']),
      },
    };
    if (part === 'main' && type !== NODES && type !== NAMESPACES) {
      const problems = PREPARE[type.resource]?.(next) ?? [];
      if (problems.length) throw invalidAll(type, name, problems);
    }
    delete next.metadata?.resourceVersion;
    try {
      const prevIndex = wanted === undefined ? undefined : Number(wanted);
      return this.decode(await this.written(type, this.store.update(this.key(type, name, namespace), JSON.stringify(next), prevIndex)));
    } catch (error) {
      if (error instanceof IndexMismatch)
        throw new StatusError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${type.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, kind: type.resource },
        );
      if (error instanceof KeyMissing) throw notFound(type, name);
      throw error;
    }
  }

  async delete(type: ResourceType, name: string, namespace?: string): Promise<KubeObject> {
    try {
      return this.decode(await this.written(type, this.store.delete(this.key(type, name, namespace))));
    } catch (error) {
      if (error instanceof KeyMissing) throw notFound(type, name);
      throw error;
    }
  }

  /** Any write (even one that fails: its outcome may be unknown) makes the cached lists stale and wakes the waiters. */
  private written<T>(type: ResourceType, write: Promise<T>): Promise<T> {
    return write.finally(() => {
      this.writes.set(type.resource, (this.writes.get(type.resource) ?? 0) + 1);
      for (const wake of this.waiting) wake();
    });
  }

  /** How many writes these resources have had (a number that only grows). */
  changes(resources: readonly string[]): number {
    return resources.reduce((sum, resource) => sum + (this.writes.get(resource) ?? 0), 0);
  }

  /** Resolves with changes(resources) once it differs from `since`, or after `timeoutMs`. */
  waitForChange(resources: readonly string[], since: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.changes(resources) === since) return;
        done();
      };
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve(this.changes(resources));
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }

  private validName(type: ResourceType, object: KubeObject): string {
    const name = object.metadata?.name;
    if (!name) throw invalid(type, '', 'metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required');
    const pattern = type === NAMESPACES ? DNS_LABEL : DNS_SUBDOMAIN;
    if (!pattern.test(name) || name.length > 253)
      throw invalid(
        type,
        name,
        'metadata.name',
        'FieldValueInvalid',
        `Invalid value: "${name}": must be a DNS ${type === NAMESPACES ? 'label' : 'subdomain'}`,
      );
    return name;
  }

  private key(type: ResourceType, name: string, namespace?: string): string {
    const base = `/registry/${storageOf(type)}`;
    return type.namespaced ? `${base}/${namespace}/${name}` : `${base}/${name}`;
  }

  private selfLink(type: ResourceType, name?: string, namespace?: string): string {
    const base = type.namespaced ? `/api/v1/namespaces/${namespace}/${type.resource}` : `/api/v1/${type.resource}`;
    return name === undefined ? base : `${base}/${name}`;
  }

  private decode(stored: StoredValue): KubeObject {
    const object = JSON.parse(stored.value) as KubeObject;
    object.metadata = { ...object.metadata, resourceVersion: String(stored.modifiedIndex) };
    return object;
  }
}

/** Where a kind's objects live under /registry (services/specs, controllers, ... as Kubernetes kept them). */
const storageOf = (type: ResourceType): string => type.storage ?? type.resource;

const notFound = (type: ResourceType, name: string) =>
  new StatusError(404, 'NotFound', `${type.resource} "${name}" not found`, { name, kind: type.resource });

function invalid(type: ResourceType, name: string, field: string, reason: string, message: string): StatusError {
  return invalidAll(type, name, [[field, reason as Problem[1], message]]);
}

/** One 422 naming every problem, as the apiserver listed them: `[field: message, field: message]`. */
export function invalidAll(type: ResourceType, name: string, problems: Problem[]): StatusError {
  const text = problems.map(([field, , message]) => `${field}: ${message}`);
  return new StatusError(422, 'Invalid', `${type.kind} "${name}" is invalid: ${text.length === 1 ? text[0] : `[${text.join(', ')}]`}`, {
    name,
    kind: type.kind,
    causes: problems.map(([field, reason, message]) => ({ reason, message, field })),
  });
}

/** generateName's suffix: five characters of the alphabet Kubernetes uses (no vowels, no look-alikes). */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from({ length: 5 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

function pick(meta: ObjectMeta | undefined, keys: (keyof ObjectMeta)[]): ObjectMeta {
  return Object.fromEntries(keys.filter((k) => meta?.[k] !== undefined).map((k) => [k, meta?.[k]])) as ObjectMeta;
}
