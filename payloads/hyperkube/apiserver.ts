import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { NAMESPACES, NODES, Registry, StatusError, type KubeObject, type ResourceType } from './registry.js';

/**
 * The apiserver stand-in's HTTP side: the v1 REST API for the resources the registry keeps, plus
 * the discovery documents, /healthz and /version that kubectl and the multinode checks read.
 * Insecure port only, as the multinode guide's apiserver on 8080.
 */
export interface ApiServerOptions {
  registry: Registry;
  /** The tagged K8S_VERSION, e.g. v1.3.0: what /version reports. */
  version: string;
  /** GOARCH-style platform of the node, e.g. linux/amd64. */
  platform: string;
}

const RESOURCES: ResourceType[] = [NODES, NAMESPACES];

export function createApiServer(options: ApiServerOptions): Server {
  return createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      const status =
        error instanceof StatusError
          ? error
          : new StatusError(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`, {});
      send(response, status.code, status.toStatus());
    });
  });
}

async function handle(options: ApiServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://apiserver');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = request.method ?? 'GET';

  if (path === '/healthz') return sendText(response, 200, 'ok');
  if (path === '/version') return send(response, 200, versionInfo(options));
  if (path === '/api') return send(response, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
  if (path === '/apis') return send(response, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
  if (path === '/api/v1')
    return send(response, 200, {
      kind: 'APIResourceList',
      groupVersion: 'v1',
      resources: RESOURCES.flatMap((r) => [
        { name: r.resource, namespaced: r.namespaced, kind: r.kind, verbs: ['create', 'delete', 'get', 'list', 'update'] },
        ...(r === NODES || r === NAMESPACES
          ? [{ name: `${r.resource}/status`, namespaced: false, kind: r.kind, verbs: ['get', 'update'] }]
          : []),
      ]),
    });

  // /api/v1/<resource>[/<name>[/status]]
  const match = /^\/api\/v1\/([a-z]+)(?:\/([^/]+))?(\/status)?$/.exec(path);
  const type = RESOURCES.find((r) => r.resource === match?.[1]);
  if (!match || !type) throw new StatusError(404, 'NotFound', `the server could not find the requested resource`, {});
  const name = match[2] ? decodeURIComponent(match[2]) : undefined;
  const { registry } = options;

  if (name === undefined) {
    if (method === 'GET') return send(response, 200, await registry.list(type));
    if (method === 'POST') return send(response, 201, await registry.create(type, await readObject(request)));
  } else {
    if (method === 'GET') return send(response, 200, await registry.get(type, name));
    if (method === 'PUT') return send(response, 200, await registry.update(type, name, await readObject(request)));
    if (method === 'DELETE') {
      await registry.delete(type, name);
      return send(response, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
    }
  }
  throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, {});
}

function versionInfo(options: ApiServerOptions): Record<string, string> {
  const [major = '', minor = ''] = options.version.replace(/^v/, '').split('.');
  return { major, minor, gitVersion: options.version, gitTreeState: 'clean', compiler: 'gc', platform: options.platform };
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

function send(response: ServerResponse, code: number, body: unknown): void {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body)}\n`);
}

function sendText(response: ServerResponse, code: number, body: string): void {
  response.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(body);
}
