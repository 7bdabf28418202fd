/** A client of the apiserver's insecure port, for the kubelet and the controllers. */

export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class ApiClient {
  readonly base: string;
  /** `--master=127.0.0.1:8080` and `--api-servers=http://...` both name it; the scheme is optional. */
  constructor(server: string) {
    const first = server.split(',')[0] ?? '';
    this.base = (first.includes('://') ? first : `http://${first}`).replace(/\/+$/, '');
  }

  get(path: string): Promise<Json> {
    return this.call('GET', path);
  }
  post(path: string, body: Json): Promise<Json> {
    return this.call('POST', path, body);
  }
  put(path: string, body: Json): Promise<Json> {
    return this.call('PUT', path, body);
  }

  async call(method: string, path: string, body?: Json): Promise<Json> {
    let response: Response | undefined;
    // A GET is tried twice: a kept-alive connection the server has just closed fails the first time.
    for (let attempt = 1; !response; attempt++) {
      try {
        response = await fetch(`${this.base}${path}`, {
          method,
          ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (error) {
        if (method === 'GET' && attempt < 2) continue;
        const cause = ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
        throw new ApiError(0, `${method} ${this.base}${path}: ${cause}`);
      }
    }
    const text = await response.text();
    let parsed: Json;
    try {
      parsed = (text ? JSON.parse(text) : {}) as Json;
    } catch {
      parsed = { text };
    }
    if (!response.ok) throw new ApiError(response.status, String(parsed.message ?? text));
    return parsed;
  }
}

/** Go durations as the flags take them: 40s, 5m0s, 3m, 1h. */
export function parseDuration(text: string): number {
  let ms = 0;
  const units: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000, ms: 1 };
  const parts = text.match(/(\d+(?:\.\d+)?)(ms|h|m|s)/g);
  if (!parts || parts.join('') !== text) throw new Error(`time: invalid duration ${text}`);
  for (const part of parts) {
    const [, n, unit] = /(\d+(?:\.\d+)?)(ms|h|m|s)/.exec(part) as RegExpExecArray;
    ms += Number(n) * (units[unit as string] as number);
  }
  return ms;
}

export const nowIso = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
