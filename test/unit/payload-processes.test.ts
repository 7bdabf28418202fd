import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freeLoopbackPort } from '../../lab/net/ports.js';
import { bundlePrograms } from '../../payloads/bundle/bundle.js';

/**
 * The stand-ins as processes, compiled exactly as the bundle compiles them: bad flags and a
 * missing etcd give what a user of the 2016 binaries saw (message, exit code), never a silent success.
 */
const dir = mkdtempSync(join(tmpdir(), 'payload-programs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const program = (name: string) => join(dir, `${name}.mjs`);

beforeAll(async () => {
  for (const p of await bundlePrograms()) writeFileSync(program(p.name), p.text);
});

function run(name: string, args: string[], options: { killAfterMs?: number; until?: RegExp } = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [program(name), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGTERM'), options.killAfterMs ?? 20_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (options.until?.test(stderr)) child.kill('SIGTERM');
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('hyperkube', () => {
  test('an unknown flag: the error, the usage, exit 2', async () => {
    const result = await run('hyperkube', ['kubelet', '--api-servers=http://127.0.0.1:1', '--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^Error: unknown flag: --no-such-flag\nUsage of \/hyperkube kubelet:/);
  });

  test('an unknown server lists the servers, exit 1', async () => {
    const result = await run('hyperkube', ['apiservr']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown server: apiservr');
    expect(result.stderr).toContain('controller-manager');
  });

  test('the apiserver without --etcd-servers or --service-cluster-ip-range is fatal (glog.Fatal: exit 255)', async () => {
    const noEtcd = await run('hyperkube', ['apiserver', '--service-cluster-ip-range=10.0.0.1/24']);
    expect([noEtcd.code, noEtcd.stderr]).toEqual([
      255,
      expect.stringMatching(/^F\d{4} .*server\.go\] specify either --etcd-servers or --etcd-config/),
    ]);
    const noRange = await run('hyperkube', ['apiserver', '--etcd-servers=http://127.0.0.1:4001']);
    expect([noRange.code, noRange.stderr]).toEqual([255, expect.stringContaining('No --service-cluster-ip-range specified')]);
  });
});

describe('flanneld', () => {
  test('without etcd it says so and keeps retrying, as flannel does', async () => {
    const port = await freeLoopbackPort();
    const result = await run('flanneld', [`--etcd-endpoints=http://127.0.0.1:${port}`, '--iface=lo'], {
      until: /Failed to retrieve network config[^\n]*\n[^\n]*Failed to retrieve network config/,
    });
    expect(result.stderr).toMatch(
      /E\d{4} [\d:.]+ +\d+ flanneld\] Failed to retrieve network config: client: etcd cluster is unavailable or misconfigured \(http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    // Stopped by us (TERM), not given up by itself.
    expect(result.code).toBe(0);
  });

  test('a bad boolean is refused with exit 2', async () => {
    const result = await run('flanneld', ['--ip-masq=sometimes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid argument "sometimes" for --ip-masq');
  });
});
