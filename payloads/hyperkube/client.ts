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

  async call(method: string, path: string, body?: Json, timeoutMs = 10_000, signal?: AbortSignal): Promise<Json> {
    let response: Response | undefined;
    // A GET is tried twice: a kept-alive connection the server has just closed fails the first time.
    for (let attempt = 1; !response; attempt++) {
      try {
        response = await fetch(`${this.base}${path}`, {
          method,
          ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
          signal: signal ?? AbortSignal.timeout(timeoutMs),
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

/**
 * Waits for writes to some resources (the apiserver's /lab/changes long-poll, standing in for
 * watches): a component calls `wait` where it slept between two lists, and lists again as soon as
 * something it reads has changed, or after `maxMs` at the latest (its resync period). An
 * apiserver without it, or one that does not answer, costs a plain sleep.
 */
export class Changes {
  private seen?: number;

  constructor(
    private readonly api: ApiClient,
    private readonly resources: readonly string[],
  ) {}

  /**
   * The first call only marks where the component is and returns; each later one returns once
   * the resources have been written since the call before it (or after `maxMs`). Called before
   * each pass, so that a write during a pass wakes the next one.
   */
  async wait(maxMs: number, stop?: AbortSignal): Promise<void> {
    const started = Date.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), maxMs + 10_000);
    const onStop = () => controller.abort();
    stop?.addEventListener('abort', onStop);
    try {
      const query = `resources=${this.resources.join(',')}&timeoutSeconds=${Math.ceil(maxMs / 1000)}${this.seen === undefined ? '' : `&since=${this.seen}`}`;
      const answer = await this.api.call('GET', `/lab/changes?${query}`, undefined, maxMs + 10_000, controller.signal);
      this.seen = Number(answer.changes);
    } catch {
      if (!stop?.aborted) await sleep(Math.min(2000, Math.max(0, maxMs - (Date.now() - started))));
    } finally {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
    }
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
