/**
 * The OpenStack client of the emulated dataset agent, as Flocker 1.13/1.14's was built from
 * keystoneclient, cinderclient and novaclient: a Keystone session made with the `password` plugin
 * (v2.0 or v3 by the auth_url's version), the catalog's endpoints for the configured region,
 * Cinder tried as v2 then v1 (the first whose `GET volumes?limit=1` works), Nova v2. Errors carry
 * the texts keystoneauth1's exceptions printed, which users searched for in the agent's log.
 */
import { jsonRequest, type JsonAnswer } from '../json-http.js';

export interface OpenStackConfig {
  region: string;
  authUrl: string;
  username: string;
  password: string;
  tenantName?: string;
  projectName?: string;
  userDomainName?: string;
  projectDomainName?: string;
  verifyPeer: boolean;
}

/** keystoneauth1.exceptions.http.Unauthorized. */
export class Unauthorized extends Error {
  override name = 'keystoneauth1.exceptions.http.Unauthorized';
}
/** keystoneauth1.exceptions.catalog.EndpointNotFound. */
export class EndpointNotFound extends Error {
  override name = 'keystoneauth1.exceptions.catalog.EndpointNotFound';
}
/** Any other error answer of Nova or Cinder (the clients' ClientException and NotFound). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  override name = 'ClientException';
}

interface CatalogEntry {
  type: string;
  endpoints: { region: string; url: string }[];
}

/** One request to a service; a connection that fails says where it tried, as keystoneauth1's ConnectFailure did. */
const request = (method: string, url: string, headers: Record<string, string>, body: unknown, verifyPeer: boolean): Promise<JsonAnswer> =>
  jsonRequest({
    https: url.startsWith('https:'),
    ...urlParts(new URL(url)),
    method,
    headers,
    json: body,
    rejectUnauthorized: verifyPeer,
    timeoutMs: 60_000,
    timeoutMessage: `${method} ${url}: no answer in 60 s`,
  }).catch((error: Error) => Promise.reject(new Error(`Unable to establish connection to ${url}: ${error.message}`)));

const urlParts = (url: URL) => ({ hostname: url.hostname, port: url.port || undefined, path: `${url.pathname}${url.search}` });

/** The message of an OpenStack error body: `{"<kind>": {"message": ...}}` or `{"error": {"message": ...}}`. */
const messageOf = (body: unknown): string => {
  if (body && typeof body === 'object') {
    const inner = Object.values(body as Record<string, unknown>)[0] as { message?: unknown } | undefined;
    if (inner && typeof inner.message === 'string') return inner.message;
  }
  return typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body);
};

export class OpenStackSession {
  private token: string | undefined;
  private catalog: CatalogEntry[] = [];

  constructor(readonly config: OpenStackConfig) {}

  /** Logs in (v2.0 or v3 by the URL, as the password plugin's discovery chose) and keeps the catalog. */
  async authenticate(): Promise<void> {
    const { config } = this;
    const base = config.authUrl.replace(/\/+$/, '');
    const v3 = /\/v3$/.test(base);
    const tenant = config.tenantName ?? config.projectName;
    const body = v3
      ? {
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: config.username, domain: { name: config.userDomainName ?? 'Default' }, password: config.password },
              },
            },
            ...(tenant ? { scope: { project: { name: tenant, domain: { name: config.projectDomainName ?? 'Default' } } } } : {}),
          },
        }
      : {
          auth: {
            passwordCredentials: { username: config.username, password: config.password },
            ...(tenant ? { tenantName: tenant } : {}),
          },
        };
    const answer = await request('POST', `${base}${v3 ? '/auth/tokens' : '/tokens'}`, {}, body, config.verifyPeer);
    if (answer.status === 401) throw new Unauthorized(`The request you have made requires authentication. (HTTP 401)`);
    if (answer.status >= 300) throw new ApiError(answer.status, `${messageOf(answer.body)} (HTTP ${answer.status})`);
    if (v3) {
      this.token = String(answer.headers['x-subject-token'] ?? '');
      const catalog =
        (answer.body as { token?: { catalog?: { type: string; endpoints: { region: string; interface: string; url: string }[] }[] } }).token
          ?.catalog ?? [];
      this.catalog = catalog.map((s) => ({
        type: s.type,
        endpoints: s.endpoints.filter((e) => e.interface === 'public').map((e) => ({ region: e.region, url: e.url })),
      }));
    } else {
      const access = (
        answer.body as {
          access?: { token?: { id?: string }; serviceCatalog?: { type: string; endpoints: { region: string; publicURL: string }[] }[] };
        }
      ).access;
      this.token = access?.token?.id ?? '';
      this.catalog = (access?.serviceCatalog ?? []).map((s) => ({
        type: s.type,
        endpoints: s.endpoints.map((e) => ({ region: e.region, url: e.publicURL })),
      }));
    }
  }

  /** The public endpoint of a service type in the configured region. */
  endpoint(type: string): string {
    const url = this.catalog.find((s) => s.type === type)?.endpoints.find((e) => e.region === this.config.region)?.url;
    if (!url) throw new EndpointNotFound(`public endpoint for ${type} service in ${this.config.region} region not found`);
    return url.replace(/\/+$/, '');
  }

  /** A call to a service of the catalog; an expired token is renewed once. */
  async call<T = unknown>(type: string, method: string, path: string, body?: unknown): Promise<T> {
    if (!this.token) await this.authenticate();
    for (let attempt = 0; ; attempt++) {
      const answer = await request(
        method,
        `${this.endpoint(type)}${path}`,
        { 'x-auth-token': this.token ?? '' },
        body,
        this.config.verifyPeer,
      );
      if (answer.status === 401 && attempt === 0) {
        await this.authenticate();
        continue;
      }
      if (answer.status === 401) throw new Unauthorized(`The request you have made requires authentication. (HTTP 401)`);
      if (answer.status >= 300) throw new ApiError(answer.status, `${messageOf(answer.body)} (HTTP ${answer.status})`);
      return answer.body as T;
    }
  }
}
