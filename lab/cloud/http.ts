import type { IncomingMessage, ServerResponse } from 'node:http';

/** One request as a handler sees it: the path's captures, the query, the parsed JSON body. */
export interface Request {
  method: string;
  path: string;
  params: string[];
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** The host the client addressed (no port): catalogs and links point back to where it came from. */
  host: string;
}

/** What a handler answers: a status, a JSON body (or none), extra headers. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (request: Request) => Reply | Promise<Reply>;

/** A table of routes: the first whose method and pattern match the path answers. */
export interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export const route = (method: string, pattern: RegExp, handler: Handler): Route => ({ method, pattern, handler });

export const json = (status: number, body?: unknown, headers?: Record<string, string>): Reply => ({ status, body, headers });

/** An error reply in the shape the service's own clients parse (Nova and Cinder: `{"itemNotFound": {...}}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(JSON.stringify(body));
  }
}

/** Nova's and Cinder's faults: `{"<kind>": {"message": ..., "code": ...}}`. */
export const fault = (status: number, kind: string, message: string): ApiError =>
  new ApiError(status, { [kind]: { message, code: status } });
export const notFound = (message: string) => fault(404, 'itemNotFound', message);
export const badRequest = (message: string) => fault(400, 'badRequest', message);
export const conflict = (message: string) => fault(409, 'conflictingRequest', message);

/** keystonemiddleware's answer to a missing, unknown or expired token; Keystone's own 401 has the same shape. */
export const unauthorized = (message = 'The request you have made requires authentication.') =>
  new ApiError(401, { error: { message, code: 401, title: 'Unauthorized' } });

const MAX_BODY = 1 << 20;

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw badRequest('Request is too large.');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('Malformed request body');
  }
}

/** A node http listener that answers from a route table; every request and its status go to `log`. */
export function router(routes: readonly Route[], log: (line: string) => void) {
  return async (incoming: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(incoming.url ?? '/', 'http://cloud');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    let reply: Reply;
    try {
      const candidates = routes.filter((r) => r.pattern.test(path));
      const match = candidates.find((r) => r.method === incoming.method);
      if (!match)
        throw candidates.length
          ? fault(405, 'badMethod', 'The method is not allowed for the requested URL.')
          : notFound('The resource could not be found.');
      const params = (match.pattern.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p ?? ''));
      const host = (incoming.headers.host ?? '127.0.0.1').replace(/:\d+$/, '');
      reply = await match.handler({
        method: incoming.method ?? 'GET',
        path,
        params,
        query: url.searchParams,
        headers: incoming.headers,
        body: await readBody(incoming),
        host,
      });
    } catch (error) {
      reply =
        error instanceof ApiError
          ? { status: error.status, body: error.body }
          : { status: 500, body: { computeFault: { message: String((error as Error).message ?? error), code: 500 } } };
    }
    log(`${incoming.method} ${incoming.url} -> ${reply.status}`);
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    response.writeHead(reply.status, {
      ...(text ? { 'content-type': 'application/json' } : {}),
      'content-length': Buffer.byteLength(text),
      ...reply.headers,
    });
    response.end(text);
  };
}
