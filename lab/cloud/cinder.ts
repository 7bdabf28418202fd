import { randomUUID } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { badRequest, json, notFound, route, type Request, type Route } from './http.js';
import type { EndpointsFor, Tokens } from './keystone.js';
import type { CloudIdentity, Volume, VolumeStore } from './state.js';

/**
 * Cinder's volumes API v1 (display_name), v2 and v3 (name; v3 with microversions): create, list,
 * detail, show, update, delete, metadata. A volume is a sparse file of its size on the host; it is
 * `creating` until the file is there, then `available`; Nova's attach moves it through
 * `attaching` to `in-use` and back through `detaching`. Only an available (or failed) volume can
 * be deleted, as Cinder refused the rest.
 */

/** The microversions this v3 serves (3.0 is Mitaka's; 3.27 Ocata's, which today's clients negotiate down to). */
const V3_MIN = '3.0';
const V3_MAX = '3.27';
/** How long a new volume stays `creating` and a deleted one `deleting`: clients that poll must see the states. */
export const TRANSITION_MS = 300;

const GIB = 1 << 30;

const versionEntry = (base: string, id: string, status: string, version = '', minVersion = '') => ({
  id,
  status,
  version,
  min_version: minVersion,
  updated: '2016-02-08T12:20:21Z',
  links: [{ rel: 'self', href: `${base}/${id.replace(/\.0$/, '')}/` }],
  'media-types': [{ base: 'application/json', type: `application/vnd.openstack.volume+json;version=${id.slice(1, 2)}` }],
});

const DELETE_REFUSED =
  'Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.';

export function cinderRoutes(identity: CloudIdentity, tokens: Tokens, store: VolumeStore, endpoints: EndpointsFor): Route[] {
  const base = (request: Request) => endpoints(request.host).volume;
  const versions = (request: Request) => [
    versionEntry(base(request), 'v1.0', 'DEPRECATED'),
    versionEntry(base(request), 'v2.0', 'SUPPORTED'),
    versionEntry(base(request), 'v3.0', 'CURRENT', V3_MAX, V3_MIN),
  ];

  /** Every API call: a valid token, the cloud's project in the path, the API version (1, 2, 3). */
  function api(request: Request): { version: number; headers: Record<string, string> } {
    tokens.check(request);
    const [major, project] = request.params;
    if (project !== identity.projectId) throw notFound(`Project ${project} could not be found.`);
    const version = Number(major);
    if (version !== 3) return { version, headers: {} };
    const asked = /volume\s+(\d+\.\d+|latest)/i.exec(String(request.headers['openstack-api-version'] ?? ''))?.[1];
    const micro = !asked ? V3_MIN : asked === 'latest' ? V3_MAX : asked;
    return { version, headers: { 'openstack-api-version': `volume ${micro}`, vary: 'OpenStack-API-Version' } };
  }

  const self = (request: Request, id: string) => `${base(request)}/v${request.params[0]}/${identity.projectId}/volumes/${id}`;

  function view(request: Request, volume: Volume, version: number) {
    const attachments = volume.attachment
      ? [
          {
            id: volume.id,
            volume_id: volume.id,
            server_id: volume.attachment.serverId,
            host_name: null,
            device: volume.attachment.device,
            ...(version > 1 ? { attachment_id: volume.attachment.id, attached_at: volume.attachment.attachedAt } : {}),
          },
        ]
      : [];
    const common = {
      id: volume.id,
      status: volume.status,
      size: volume.size,
      availability_zone: 'nova',
      created_at: volume.createdAt,
      attachments,
      metadata: volume.metadata,
      volume_type: 'lvmdriver-1',
      snapshot_id: null,
      source_volid: null,
      bootable: 'false',
      encrypted: false,
      multiattach: false,
    };
    if (version === 1) return { ...common, display_name: volume.name || null, display_description: volume.description || null };
    return {
      ...common,
      name: volume.name || null,
      description: volume.description || null,
      updated_at: volume.updatedAt,
      user_id: identity.userId,
      'os-vol-tenant-attr:tenant_id': identity.projectId,
      replication_status: null,
      consistencygroup_id: null,
      links: [{ rel: 'self', href: self(request, volume.id) }],
    };
  }

  const summary = (request: Request, volume: Volume, version: number) =>
    version === 1
      ? view(request, volume, 1)
      : { id: volume.id, name: volume.name || null, links: [{ rel: 'self', href: self(request, volume.id) }] };

  function find(id: string): Volume {
    const volume = store.get(id);
    if (!volume) throw notFound(`Volume ${id} could not be found.`);
    return volume;
  }

  function filtered(request: Request): Volume[] {
    const { query } = request;
    const name = query.get('name') ?? query.get('display_name');
    const status = query.get('status');
    let volumes = store.list().filter((v) => (name === null || v.name === name) && (status === null || v.status === status));
    const marker = query.get('marker');
    if (marker) {
      const at = volumes.findIndex((v) => v.id === marker);
      if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
      volumes = volumes.slice(at + 1);
    }
    const limit = query.get('limit');
    return limit === null ? volumes : volumes.slice(0, Math.max(0, Number(limit)));
  }

  const stringMap = (value: unknown, what: string): Record<string, string> => {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`Invalid input received: ${what} must be a dictionary.`);
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  };

  function create(request: Request) {
    const { version, headers } = api(request);
    const body = (request.body as { volume?: Record<string, unknown> })?.volume;
    if (!body || typeof body !== 'object') throw badRequest("Missing required element 'volume' in request body.");
    const size = Number(body.size);
    if (!Number.isInteger(size) || size <= 0)
      throw badRequest(`Invalid input received: Volume size '${String(body.size ?? '')}' must be an integer and greater than 0.`);
    for (const source of ['snapshot_id', 'source_volid', 'imageRef', 'source_replica', 'backup_id'])
      if (body[source]) throw badRequest(`Invalid input received: this cloud makes empty volumes only (${source} given).`);
    const now = new Date().toISOString();
    const volume: Volume = {
      id: randomUUID(),
      name: String(body.name ?? body.display_name ?? ''),
      description: String(body.description ?? body.display_description ?? ''),
      size,
      status: 'creating',
      metadata: stringMap(body.metadata, 'metadata'),
      createdAt: now,
      updatedAt: now,
    };
    store.put(volume);
    setTimeout(() => {
      const fd = openSync(store.file(volume.id), 'w', 0o600);
      ftruncateSync(fd, size * GIB);
      closeSync(fd);
      if (store.get(volume.id)?.status === 'creating') store.put({ ...volume, status: 'available' });
    }, TRANSITION_MS);
    return json(202, { volume: view(request, volume, version) }, headers);
  }

  function remove(request: Request) {
    const { headers } = api(request);
    const volume = find(request.params[2] as string);
    if (!['available', 'error'].includes(volume.status)) throw badRequest(DELETE_REFUSED);
    store.put({ ...volume, status: 'deleting' });
    setTimeout(() => {
      rmSync(store.file(volume.id), { force: true });
      store.remove(volume.id);
    }, TRANSITION_MS);
    return json(202, undefined, headers);
  }

  function update(request: Request) {
    const { version, headers } = api(request);
    const volume = find(request.params[2] as string);
    const body = (request.body as { volume?: Record<string, unknown> })?.volume;
    if (!body) throw badRequest("Missing required element 'volume' in request body.");
    const name = body.name ?? body.display_name;
    const description = body.description ?? body.display_description;
    const updated: Volume = {
      ...volume,
      ...(name !== undefined ? { name: String(name) } : {}),
      ...(description !== undefined ? { description: String(description) } : {}),
      ...(body.metadata !== undefined ? { metadata: stringMap(body.metadata, 'metadata') } : {}),
    };
    store.put(updated);
    return json(200, { volume: view(request, updated, version) }, headers);
  }

  /** POST merges keys into the metadata, PUT replaces it. */
  function setMetadata(replace: boolean) {
    return (request: Request) => {
      const { headers } = api(request);
      const volume = find(request.params[2] as string);
      const given = stringMap((request.body as { metadata?: unknown })?.metadata, 'metadata');
      const metadata = replace ? given : { ...volume.metadata, ...given };
      store.put({ ...volume, metadata });
      return json(200, { metadata }, headers);
    };
  }

  const prefix = String.raw`^\/v([123])\/([^/]+)\/volumes`;
  const at = (suffix: string) => new RegExp(`${prefix}${suffix}$`);
  return [
    route('GET', /^\/$/, (request) => json(300, { versions: versions(request) })),
    route('GET', /^\/v([123])$/, (request) => {
      const id = `v${request.params[0]}.0`;
      return json(200, { versions: versions(request).filter((v) => v.id === id) });
    }),
    route('GET', at(''), (request) => {
      const { version, headers } = api(request);
      return json(200, { volumes: filtered(request).map((v) => summary(request, v, version)) }, headers);
    }),
    route('GET', at(String.raw`\/detail`), (request) => {
      const { version, headers } = api(request);
      return json(200, { volumes: filtered(request).map((v) => view(request, v, version)) }, headers);
    }),
    route('POST', at(''), create),
    route('GET', at(String.raw`\/([^/]+)`), (request) => {
      const { version, headers } = api(request);
      return json(200, { volume: view(request, find(request.params[2] as string), version) }, headers);
    }),
    route('PUT', at(String.raw`\/([^/]+)`), update),
    route('DELETE', at(String.raw`\/([^/]+)`), remove),
    route('GET', at(String.raw`\/([^/]+)\/metadata`), (request) => {
      const { headers } = api(request);
      return json(200, { metadata: find(request.params[2] as string).metadata }, headers);
    }),
    route('POST', at(String.raw`\/([^/]+)\/metadata`), setMetadata(false)),
    route('PUT', at(String.raw`\/([^/]+)\/metadata`), setMetadata(true)),
    route('PUT', at(String.raw`\/([^/]+)\/metadata\/([^/]+)`), (request) => {
      const { headers } = api(request);
      const volume = find(request.params[2] as string);
      const key = request.params[3] as string;
      const meta = stringMap((request.body as { meta?: unknown })?.meta, 'meta');
      if (Object.keys(meta).length !== 1 || !(key in meta)) throw badRequest('Request body and URI mismatch');
      store.put({ ...volume, metadata: { ...volume.metadata, ...meta } });
      return json(200, { meta }, headers);
    }),
    route('DELETE', at(String.raw`\/([^/]+)\/metadata\/([^/]+)`), (request) => {
      const { headers } = api(request);
      const volume = find(request.params[2] as string);
      const key = request.params[3] as string;
      if (!(key in volume.metadata)) throw notFound(`Volume ${volume.id} has no metadata with key ${key}.`);
      const { [key]: _gone, ...metadata } = volume.metadata;
      store.put({ ...volume, metadata });
      return json(200, undefined, headers);
    }),
  ];
}
