import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { fatal, glog, parseFlagsOrExit } from '../flags.js';
import { parseDuration, sleep } from '../hyperkube/client.js';

/**
 * exechealthz 1.0 (the kube-dns-v11 pod's liveness bridge): runs -cmd with /bin/sh -c every
 * -period and answers GET /healthz with 200 "ok" when the last run exited 0, 503 with the run's
 * output otherwise, or when no run finished within -latency (a command that hangs).
 */

const WHERE = 'exechealthz.go';

export interface ExecResult {
  /** stdout and stderr together, as Go's CombinedOutput. */
  output: string;
  /** Go's error text ("exit status 1"), undefined on success. */
  error?: string;
  finishedAt: Date;
}

/** Runs `cmd` with /bin/sh -c; `started` receives the child so that a stop can end it. */
export function runCommand(cmd: string, started?: (child: ChildProcess) => void): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    started?.(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (error) => resolve({ output, error: error.message, finishedAt: new Date() }));
    child.on('close', (code, signal) => {
      const error = signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : code ? `exit status ${code}` : undefined;
      resolve({ output, ...(error ? { error } : {}), finishedAt: new Date() });
    });
  });
}

export interface ExecHealthzOptions {
  cmd: string;
  port: number;
  /** All interfaces when unset, as the real one listened on :port. */
  host?: string;
  periodMs: number;
  latencyMs: number;
}

export interface ExecHealthz {
  port: number;
  close(): Promise<void>;
}

/** Go's time.Time.String(): 2015-07-08 17:59:45.698 +0000 UTC. */
const goTime = (date: Date) => `${date.toISOString().replace('T', ' ').replace('Z', '')} +0000 UTC`;

/** The /healthz answer for the last result: status and body. */
export function healthzAnswer(last: ExecResult | undefined, latencyMs: number, now = Date.now()): { status: number; body: string } {
  if (!last) return { status: 503, body: 'Healthz probe error: the command has not finished a run yet' };
  const age = now - last.finishedAt.getTime();
  if (last.error === undefined && age <= latencyMs) return { status: 200, body: 'ok' };
  let body = `Healthz probe error: Result of last exec: ${last.output}, at ${goTime(last.finishedAt)}, error ${last.error ?? '<nil>'}`;
  if (age > latencyMs) body += `, last run finished ${Math.round(age / 1000)}s ago, more than the allowed latency ${latencyMs / 1000}s`;
  return { status: 503, body };
}

/** Starts the worker (first run at once) and the HTTP server. */
export async function startExecHealthz(options: ExecHealthzOptions): Promise<ExecHealthz> {
  let last: ExecResult | undefined;
  let running: ChildProcess | undefined;
  let stopped = false;

  const worker = (async () => {
    while (!stopped) {
      const result = await runCommand(options.cmd, (child) => (running = child));
      running = undefined;
      // Log only the changes between healthy and failing: the probe runs every 2 s for ever.
      if ((result.error === undefined) !== (last?.error === undefined) || !last)
        glog(
          result.error ? 'W' : 'I',
          WHERE,
          result.error ? `${options.cmd}: ${result.error}: ${result.output.trim()}` : `${options.cmd}: ok`,
        );
      last = result;
      if (!stopped) await sleep(options.periodMs);
    }
  })();

  const server = createServer((request, response) => {
    if (request.url?.split('?')[0] !== '/healthz') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      return;
    }
    const { status, body } = healthzAnswer(last, options.latencyMs);
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(status === 200 ? body : `${body}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      stopped = true;
      running?.kill('SIGKILL');
      await new Promise((resolve) => server.close(resolve));
      await worker;
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/exechealthz', argv, {
    cmd: 'echo healthz',
    port: '8080',
    // exechealthz 1.0 ran it every 2 s; the lab's default is 10 s: under emulation an nslookup
    // every 2 s kept a quarter of a worker's vCPU busy, and only a probe of /healthz sees the pace.
    period: '10s',
    latency: '30s',
    quiet: false,
    v: '0',
    logtostderr: true,
    alsologtostderr: false,
  });
  let periodMs: number;
  let latencyMs: number;
  try {
    [periodMs, latencyMs] = [parseDuration(flags.period), parseDuration(flags.latency)];
  } catch (error) {
    fatal(WHERE, (error as Error).message);
  }
  const port = Number(flags.port);
  glog('I', WHERE, `Worker running ${flags.cmd} every ${flags.period}; serving /healthz on :${port}`);
  await startExecHealthz({ cmd: flags.cmd, port, periodMs, latencyMs }).catch((error: Error) =>
    fatal(WHERE, `listen tcp :${port}: ${error.message}`),
  );
}

const invokedDirectly = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
  main(process.argv.slice(2)).catch((error: Error) => fatal(WHERE, error.message));
}
