import { randomUUID } from 'node:crypto';
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
}

export const NODES: ResourceType = { resource: 'nodes', kind: 'Node', namespaced: false };
export const NAMESPACES: ResourceType = { resource: 'namespaces', kind: 'Namespace', namespaced: false };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export class Registry {
  constructor(private readonly store: KeyValueStore) {}

  async create(type: ResourceType, object: KubeObject, namespace?: string): Promise<KubeObject> {
    const name = this.validName(type, object);
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
      return this.decode(await this.store.create(key, JSON.stringify(full)));
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

  /** A v1 List of every object of the type (in one namespace, for namespaced types). */
  async list(type: ResourceType, namespace?: string): Promise<KubeObject> {
    const prefix = `/registry/${type.resource}${type.namespaced && namespace ? `/${namespace}` : ''}`;
    const items = (await this.store.list(prefix)).map((v) => this.decode(v));
    const latest = Math.max(0, ...items.map((i) => Number(i.metadata?.resourceVersion)));
    return {
      kind: `${type.kind}List`,
      apiVersion: 'v1',
      metadata: { selfLink: this.selfLink(type, undefined, namespace), resourceVersion: String(latest) },
      items,
    };
  }

  /** Replaces an object; a stale metadata.resourceVersion is a conflict, as in Kubernetes. */
  async update(type: ResourceType, name: string, object: KubeObject, namespace?: string): Promise<KubeObject> {
    const current = await this.get(type, name, namespace);
    if (object.metadata?.name !== undefined && object.metadata.name !== name)
      throw invalid(type, name, 'metadata.name', 'FieldValueInvalid', `Invalid value: "${object.metadata.name}": field is immutable`);
    const wanted = object.metadata?.resourceVersion;
    const next: KubeObject = {
      ...object,
      kind: type.kind,
      apiVersion: 'v1',
      metadata: { ...object.metadata, ...pick(current.metadata, ['name', 'namespace', 'uid', 'creationTimestamp', 'selfLink']) },
    };
    delete next.metadata?.resourceVersion;
    try {
      const prevIndex = wanted === undefined ? undefined : Number(wanted);
      return this.decode(await this.store.update(this.key(type, name, namespace), JSON.stringify(next), prevIndex));
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
      return this.decode(await this.store.delete(this.key(type, name, namespace)));
    } catch (error) {
      if (error instanceof KeyMissing) throw notFound(type, name);
      throw error;
    }
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
    return type.namespaced ? `/registry/${type.resource}/${namespace}/${name}` : `/registry/${type.resource}/${name}`;
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

const notFound = (type: ResourceType, name: string) =>
  new StatusError(404, 'NotFound', `${type.resource} "${name}" not found`, { name, kind: type.resource });

function invalid(type: ResourceType, name: string, field: string, reason: string, message: string): StatusError {
  return new StatusError(422, 'Invalid', `${type.kind} "${name}" is invalid: ${field}: ${message}`, {
    name,
    kind: type.kind,
    causes: [{ reason, message, field }],
  });
}

function pick(meta: ObjectMeta | undefined, keys: (keyof ObjectMeta)[]): ObjectMeta {
  return Object.fromEntries(keys.filter((k) => meta?.[k] !== undefined).map((k) => [k, meta?.[k]])) as ObjectMeta;
}
