import { randomBytes } from 'node:crypto';
import { json, route, unauthorized, type Request, type Route } from './http.js';
import type { CloudIdentity } from './state.js';

/**
 * Keystone v2.0 and v3, as far as a cloud with one project and one user needs: password auth,
 * tokens that expire, the service catalog, version discovery. Status codes and body shapes as
 * Mitaka's Keystone answered (201 and X-Subject-Token for v3, 200 and `access` for v2.0, 401 for
 * bad credentials); nothing else of Keystone (no users, roles or projects to manage).
 */

/** Where a service of the cloud is reached from the client's side: catalogs point back to the address a client used. */
export type EndpointsFor = (host: string) => { identity: string; volume: string; compute: string; image: string };

export interface Token {
  id: string;
  issuedAt: Date;
  expiresAt: Date;
}

export class Tokens {
  private readonly tokens = new Map<string, Token>();
  constructor(private readonly identity: CloudIdentity) {}

  issue(): Token {
    const issuedAt = new Date();
    const token = {
      id: randomBytes(16).toString('hex'),
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + this.identity.tokenSeconds * 1000),
    };
    this.tokens.set(token.id, token);
    return token;
  }

  /** The token of a request to Nova or Cinder (X-Auth-Token), or a 401 as keystonemiddleware gave. */
  check(request: Request): Token {
    const header = request.headers['x-auth-token'];
    const token = typeof header === 'string' ? this.tokens.get(header) : undefined;
    if (!token || token.expiresAt.getTime() <= Date.now()) throw unauthorized();
    return token;
  }
}

const iso = (date: Date) => date.toISOString().replace(/\.\d+Z$/, '.000000Z');

/** The catalog's services: Cinder v1, v2 and v3 (Flocker 1.13/1.14 tried v2 then v1; today's clients want v3) and Nova. */
function services(identity: CloudIdentity, urls: ReturnType<EndpointsFor>) {
  const project = identity.projectId;
  return [
    { type: 'identity', name: 'keystone', url: `${urls.identity}/v3` },
    { type: 'volume', name: 'cinder', url: `${urls.volume}/v1/${project}` },
    { type: 'volumev2', name: 'cinderv2', url: `${urls.volume}/v2/${project}` },
    { type: 'volumev3', name: 'cinderv3', url: `${urls.volume}/v3/${project}` },
    { type: 'compute', name: 'nova', url: `${urls.compute}/v2.1/${project}` },
    { type: 'image', name: 'glance', url: urls.image },
  ];
}

const v3Version = (base: string) => ({
  id: 'v3.6',
  status: 'stable',
  updated: '2016-04-04T00:00:00Z',
  links: [{ rel: 'self', href: `${base}/v3/` }],
  'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
});

const v2Version = (base: string) => ({
  id: 'v2.0',
  status: 'stable',
  updated: '2014-04-17T00:00:00Z',
  links: [{ rel: 'self', href: `${base}/v2.0/` }],
  'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v2.0+json' }],
});

export function keystoneRoutes(identity: CloudIdentity, tokens: Tokens, endpoints: EndpointsFor): Route[] {
  const base = (request: Request) => endpoints(request.host).identity;
  const domain = { id: 'default', name: 'Default' };

  /** v3: the user by name (in Default) or id, the project by name or id, the password. */
  function v3Credentials(body: unknown): boolean {
    const auth = (
      body as {
        auth?: {
          identity?: { methods?: string[]; password?: { user?: Record<string, unknown> } };
          scope?: { project?: Record<string, unknown> };
        };
      }
    )?.auth;
    const user = auth?.identity?.password?.user;
    if (!auth?.identity?.methods?.includes('password') || !user) return false;
    const project = auth.scope?.project;
    const projectOk = !project || project.id === identity.projectId || project.name === identity.projectName;
    return (user.id === identity.userId || user.name === identity.userName) && user.password === identity.password && projectOk;
  }

  function v2Credentials(body: unknown): boolean {
    const auth = (
      body as { auth?: { passwordCredentials?: { username?: string; password?: string }; tenantName?: string; tenantId?: string } }
    )?.auth;
    const credentials = auth?.passwordCredentials;
    if (!credentials) return false;
    const tenantOk =
      (!auth.tenantName && !auth.tenantId) || auth.tenantName === identity.projectName || auth.tenantId === identity.projectId;
    return credentials.username === identity.userName && credentials.password === identity.password && tenantOk;
  }

  return [
    route('GET', /^\/$/, (request) => json(300, { versions: { values: [v3Version(base(request)), v2Version(base(request))] } })),
    route('GET', /^\/v3$/, (request) => json(200, { version: v3Version(base(request)) })),
    route('GET', /^\/v2\.0$/, (request) => json(200, { version: v2Version(base(request)) })),

    route('POST', /^\/v3\/auth\/tokens$/, (request) => {
      if (!v3Credentials(request.body)) throw unauthorized();
      const token = tokens.issue();
      const catalog = services(identity, endpoints(request.host)).map((service) => ({
        id: `${service.name}-service`,
        type: service.type,
        name: service.name,
        endpoints: ['public', 'internal', 'admin'].map((face) => ({
          id: `${service.name}-${face}`,
          interface: face,
          region: identity.region,
          region_id: identity.region,
          url: service.url,
        })),
      }));
      return json(
        201,
        {
          token: {
            methods: ['password'],
            user: { id: identity.userId, name: identity.userName, domain },
            project: { id: identity.projectId, name: identity.projectName, domain },
            roles: [{ id: 'member-role', name: 'member' }],
            is_domain: false,
            issued_at: iso(token.issuedAt),
            expires_at: iso(token.expiresAt),
            audit_ids: [randomBytes(8).toString('base64url')],
            catalog,
          },
        },
        { 'x-subject-token': token.id },
      );
    }),

    route('POST', /^\/v2\.0\/tokens$/, (request) => {
      if (!v2Credentials(request.body)) throw unauthorized('Invalid user / password');
      const token = tokens.issue();
      const tenant = { id: identity.projectId, name: identity.projectName, enabled: true, description: null };
      return json(200, {
        access: {
          token: {
            id: token.id,
            issued_at: iso(token.issuedAt),
            expires: token.expiresAt.toISOString().replace(/\.\d+Z$/, 'Z'),
            tenant,
            audit_ids: [],
          },
          serviceCatalog: services(identity, endpoints(request.host)).map((service) => ({
            type: service.type,
            name: service.name,
            endpoints_links: [],
            endpoints: [
              {
                id: `${service.name}-endpoint`,
                region: identity.region,
                publicURL: service.url,
                internalURL: service.url,
                adminURL: service.url,
              },
            ],
          })),
          user: { id: identity.userId, name: identity.userName, username: identity.userName, roles: [{ name: 'member' }], roles_links: [] },
          metadata: { is_admin: 0, roles: ['member-role'] },
        },
      });
    }),
  ];
}
