import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  PODS,
  REPLICATION_CONTROLLERS,
  RESOURCE_TYPES,
  Registry,
  SERVICES,
  StatusError,
  type KubeObject,
  type ResourceType,
} from './registry.js';
import type { ServiceIpAllocator } from './service-ips.js';
import { asTable, wantsTable } from './table.js';
import { versionInfo } from './version.js';

/**
 * The apiserver stand-in's HTTP side: the v1 REST API for the resources the registry keeps
 * (with label and field selectors, the status, binding and scale subresources, merge patches),
 * plus the discovery documents, /healthz and /version that kubectl and the checks read.
 * Insecure port only, as the multinode guide's apiserver on 8080.
 */
export interface ApiServerOptions {
  registry: Registry;
  /** The tagged K8S_VERSION, e.g. v1.3.0: what /version reports. */
  version: string;
  /** GOARCH of the node, e.g. amd64. */
  arch: string;
  /** What /api/v1/componentstatuses probes: each component's health URL (etcd-0, controller-manager, scheduler). */
  components?: Record<string, string>;
  /** Cluster IPs for services; without it services cannot be created. */
  serviceIps?: ServiceIpAllocator;
}

const SUBRESOURCES: Record<string, string[]> = {
  nodes: ['status'],
  namespaces: ['status'],
  pods: ['status', 'binding'],
  services: ['status'],
  replicationcontrollers: ['status', 'scale'],
};

export function createApiServer(options: ApiServerOptions): Server {
  const server = createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      const status =
        error instanceof StatusError
          ? error
          : new StatusError(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`, {});
      send(response, status.code, status.toStatus());
    });
  });
  // Clients poll and keep their connections: outlive their idle timeouts rather than close one they are about to reuse.
  server.keepAliveTimeout = 65_000;
  return server;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** /api/v1/<resource>[/<name>[/<sub>]] and /api/v1/namespaces/<ns>/<resource>[/<name>[/<sub>]]. */
function route(path: string): Route | undefined {
  const segments = path.split('/').slice(3).map(decodeURIComponent);
  const byName = (resource?: string) => RESOURCE_TYPES.find((t) => t.resource === resource);
  if (segments[0] === 'namespaces' && segments.length >= 3) {
    const type = byName(segments[2]);
    if (!type?.namespaced || segments.length > 5) return undefined;
    return { type, namespace: segments[1], name: segments[3], subresource: segments[4] };
  }
  const type = byName(segments[0]);
  if (!type || segments.length > 3 || (type.namespaced && segments.length > 1)) return undefined;
  return { type, name: segments[1], subresource: segments[2] };
}

async function handle(options: ApiServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://apiserver');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = request.method ?? 'GET';

  // 1.2/1.3's /healthz only pinged the server itself: etcd's health shows in componentstatuses.
  if (path === '/healthz') return sendText(response, 200, 'ok');
  if (path === '/version') return sendIndented(response, 200, versionInfo(options.version, options.arch));
  if (path === '/api/v1/componentstatuses' || path.startsWith('/api/v1/componentstatuses/')) {
    const name = path.split('/')[4];
    const statuses = await componentStatuses(options.components ?? {}, name);
    if (name && !statuses.length) throw new StatusError(404, 'NotFound', `componentstatus "${name}" not found`, { name, kind: 'componentstatuses' });
    return send(response, 200, name ? statuses[0] : { kind: 'ComponentStatusList', apiVersion: 'v1', metadata: { selfLink: '/api/v1/componentstatuses' }, items: statuses });
  }
  // kubectl validates against the OpenAPI document; an empty one (1.2/1.3 had none) lets it skip.
  if (path === '/openapi/v2') {
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    return void response.end();
  }
  // The lab's stand-in for watches: the components long-poll here instead of listing every 2 s.
  // GET /lab/changes?resources=pods,services[&since=N&timeoutSeconds=T] answers {changes} once
  // the writes to those resources differ from N (at once without N), or after T seconds (max 60).
  if (path === '/lab/changes' && method === 'GET') {
    const resources = (url.searchParams.get('resources') ?? '').split(',').filter(Boolean);
    const since = url.searchParams.get('since');
    const timeoutMs = Math.min(Number(url.searchParams.get('timeoutSeconds') ?? 10) || 10, 60) * 1000;
    const changes =
      since === null ? options.registry.changes(resources) : await options.registry.waitForChange(resources, Number(since), timeoutMs);
    return send(response, 200, { changes });
  }
  if (path === '/api') return send(response, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
  if (path === '/apis') return send(response, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
  if (path === '/api/v1') return send(response, 200, discovery());

  const found = path.startsWith('/api/v1/') ? route(path) : undefined;
  if (!found) throw new StatusError(404, 'NotFound', `the server could not find the requested resource`, {});
  const { type, namespace, name, subresource } = found;
  const { registry } = options;
  if (subresource && !SUBRESOURCES[type.resource]?.includes(subresource))
    throw new StatusError(404, 'NotFound', `the server could not find the requested resource`, {});
  if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
    throw new StatusError(405, 'MethodNotAllowed', 'the emulated apiserver does not serve watches; list again instead', {});

  const table = wantsTable(request.headers.accept);
  const shown = (object: KubeObject) => (table ? asTable(type.resource, object) : object);
  if (name === undefined) {
    if (method === 'GET')
      return send(
        response,
        200,
        shown(
          await registry.list(type, namespace, {
            labels: url.searchParams.get('labelSelector') ?? '',
            fields: url.searchParams.get('fieldSelector') ?? '',
          }),
        ),
      );
    if (method === 'POST' && (namespace || !type.namespaced)) {
      const object = await readObject(request);
      if (type === SERVICES) return send(response, 201, await createService(options, object, namespace));
      return send(response, 201, await registry.create(type, object, namespace));
    }
  } else if (subresource === 'binding') {
    if (method === 'POST') return send(response, 201, await bind(registry, name, namespace, await readObject(request)));
  } else if (subresource === 'scale') {
    if (method === 'GET') return send(response, 200, scaleOf(await registry.get(type, name, namespace)));
    if (method === 'PUT' || method === 'PATCH') {
      const change = await readObject(request);
      const replicas = (change.spec as { replicas?: number } | undefined)?.replicas;
      const rc = await registry.get(REPLICATION_CONTROLLERS, name, namespace);
      if (replicas !== undefined) rc.spec = { ...(rc.spec as object), replicas };
      return send(response, 200, scaleOf(await registry.update(type, name, rc, namespace)));
    }
  } else {
    const part = subresource === 'status' ? 'status' : 'main';
    if (method === 'GET') return send(response, 200, shown(await registry.get(type, name, namespace)));
    if (method === 'PUT') return send(response, 200, await registry.update(type, name, await readObject(request), namespace, part));
    if (method === 'PATCH') {
      const patched = mergePatch(await registry.get(type, name, namespace), await readObject(request)) as KubeObject;
      return send(response, 200, await registry.update(type, name, patched, namespace, part));
    }
    if (method === 'DELETE' && !subresource) {
      const deleted = await registry.delete(type, name, namespace);
      if (type === SERVICES) await releaseServiceIp(options, deleted);
      return send(response, 200, deleted);
    }
  }
  throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, {});
}

function discovery(): KubeObject {
  return {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: RESOURCE_TYPES.flatMap((t) => [
      {
        name: t.resource,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update'],
        shortNames: t.shortNames,
      },
      ...(SUBRESOURCES[t.resource] ?? []).map((sub) =>
        sub === 'scale'
          ? { name: `${t.resource}/scale`, namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] }
          : sub === 'binding'
            ? { name: `${t.resource}/binding`, namespaced: true, kind: 'Binding', verbs: ['create'] }
            : { name: `${t.resource}/status`, namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] },
      ),
    ]),
  };
}

/** Services get their cluster IP before they are stored; a failed create gives it back. */
async function createService(options: ApiServerOptions, service: KubeObject, namespace?: string): Promise<KubeObject> {
  const spec = (service.spec ?? {}) as { clusterIP?: string };
  const name = service.metadata?.name ?? '';
  if (!options.serviceIps) throw new StatusError(500, 'InternalError', 'Internal error occurred: no service IP range', {});
  // An existing service is a 409, whatever its IP: checked before its IP would be claimed (a 422).
  const existing = await options.registry.get(SERVICES, name, namespace).catch(() => undefined);
  if (existing) throw new StatusError(409, 'AlreadyExists', `services "${name}" already exists`, { name, kind: 'services' });
  const ip = spec.clusterIP === 'None' ? 'None' : await options.serviceIps.claim(name, spec.clusterIP || undefined);
  try {
    return await options.registry.create(SERVICES, { ...service, spec: { ...spec, clusterIP: ip } }, namespace);
  } catch (error) {
    if (ip !== 'None') await options.serviceIps.release(ip);
    throw error;
  }
}

async function releaseServiceIp(options: ApiServerOptions, service: KubeObject): Promise<void> {
  const ip = (service.spec as { clusterIP?: string } | undefined)?.clusterIP;
  if (ip && ip !== 'None') await options.serviceIps?.release(ip);
}

/** POST pods/<name>/binding: what the scheduler does; a pod is bound once. */
async function bind(registry: Registry, name: string, namespace: string | undefined, binding: KubeObject): Promise<KubeObject> {
  const target = (binding.target as { name?: string } | undefined)?.name;
  if (!target) throw new StatusError(422, 'Invalid', `Binding "${name}" is invalid: target.name: Required value`, {});
  const pod = await registry.get(PODS, name, namespace);
  const spec = pod.spec as { nodeName?: string };
  if (spec.nodeName)
    throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on pods/binding "${name}": pod ${name} is already assigned to node "${spec.nodeName}"`, {
      name,
      kind: 'pods/binding',
    });
  pod.spec = { ...spec, nodeName: target };
  await registry.update(PODS, name, pod, namespace);
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
}

function scaleOf(rc: KubeObject): KubeObject {
  const spec = rc.spec as { replicas?: number; selector?: Record<string, string> };
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { ...rc.metadata, selfLink: `${rc.metadata?.selfLink}/scale` },
    spec: { replicas: spec.replicas ?? 0 },
    status: {
      replicas: (rc.status as { replicas?: number } | undefined)?.replicas ?? 0,
      selector: Object.entries(spec.selector ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    },
  };
}

/** RFC 7386 merge patch (kubectl's strategic merge patches of plain fields behave the same). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key.startsWith('$setElementOrder')) continue;
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

async function readObject(request: IncomingMessage): Promise<KubeObject> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    const object = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new Error('not an object');
    return object as KubeObject;
  } catch (error) {
    throw new StatusError(400, 'BadRequest', `the object provided is unrecognized (${(error as Error).message})`, {});
  }
}

/**
 * The apiserver's view of the master's parts, as `kubectl get componentstatuses` showed it: each
 * health URL asked once (etcd's /health answers {"health": "true"}; the others' /healthz "ok").
 */
async function componentStatuses(components: Record<string, string>, only?: string): Promise<KubeObject[]> {
  const names = Object.keys(components).filter((name) => !only || name === only);
  return Promise.all(
    names.map(async (name) => {
      const url = components[name] as string;
      let condition: Record<string, string>;
      try {
        const answer = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const body = (await answer.text()).trim();
        const healthy = answer.ok && (name.startsWith('etcd') ? /"health":\s*"true"/.test(body) : body === 'ok');
        condition = healthy
          ? { type: 'Healthy', status: 'True', message: body }
          : { type: 'Healthy', status: 'False', message: body, error: `unhealthy: ${answer.status} ${body}` };
      } catch (error) {
        const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
        condition = { type: 'Healthy', status: 'False', error: `Get ${url}: ${cause}` };
      }
      return { kind: 'ComponentStatus', apiVersion: 'v1', metadata: { name, selfLink: `/api/v1/componentstatuses/${name}` }, conditions: [condition] } as KubeObject;
    }),
  );
}

function sendIndented(response: ServerResponse, code: number, body: unknown): void {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body, null, 2)}\n`);
}

function send(response: ServerResponse, code: number, body: unknown): void {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body)}\n`);
}

function sendText(response: ServerResponse, code: number, body: string): void {
  response.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(body);
}
