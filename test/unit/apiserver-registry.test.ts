import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freeLoopbackPort } from '../../lab/net/ports.js';
import { cacheDir } from '../../lab/util/paths.js';
import type { AddressInfo } from 'node:net';
import { createApiServer } from '../../payloads/hyperkube/apiserver.js';
import { NAMESPACES, NODES, Registry, StatusError } from '../../payloads/hyperkube/registry.js';
import { EtcdV2Store, MemoryStore, type KeyValueStore } from '../../payloads/hyperkube/store.js';

/** Debian's etcd on 127.0.0.1 with the v2 API, as the payload runs it; one per test file. */
let etcd: ChildProcess | undefined;
let etcdEndpoint = '';
let etcdData = '';

beforeAll(async () => {
  etcdData = mkdtempSync(join(tmpdir(), 'lab-etcd-'));
  const [client, peer] = [await freeLoopbackPort(), await freeLoopbackPort()];
  etcdEndpoint = `http://127.0.0.1:${client}`;
  etcd = spawn(
    'etcd',
    [
      '--data-dir',
      etcdData,
      '--enable-v2=true',
      '--listen-client-urls',
      etcdEndpoint,
      '--advertise-client-urls',
      etcdEndpoint,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
    ],
    { stdio: 'ignore' },
  );
  for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const healthy = await fetch(`${etcdEndpoint}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) break;
    if (Date.now() > deadline) throw new Error('etcd did not answer on 127.0.0.1 within 20 s');
  }
});

afterAll(() => {
  etcd?.kill('SIGKILL');
  rmSync(etcdData, { recursive: true, force: true });
});

/** Each test starts from an empty /registry. */
async function freshEtcd(): Promise<KeyValueStore> {
  await fetch(`${etcdEndpoint}/v2/keys/registry?recursive=true&dir=true`, { method: 'DELETE' });
  return new EtcdV2Store(etcdEndpoint);
}

/** The v1 Status a failing call answers with. */
async function statusOf(call: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StatusError);
  return (error as StatusError).toStatus();
}

describe.each([
  ['an in-memory store with etcd semantics', async () => new MemoryStore() as KeyValueStore],
  ["Debian's etcd (v2 API) on 127.0.0.1", freshEtcd],
])('apiserver stand-in: objects kept in %s', (_, makeStore) => {
  test('a node round-trips through the store with the metadata the server owns', async () => {
    const store = await makeStore();
    const registry = new Registry(store);
    const created = await registry.create(NODES, { metadata: { name: '10.77.0.12', labels: { 'kubernetes.io/hostname': '10.77.0.12' } } });
    expect(created.kind).toBe('Node');
    expect(created.metadata).toMatchObject({ name: '10.77.0.12', selfLink: '/api/v1/nodes/10.77.0.12' });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    // What etcd holds is the object itself, under Kubernetes' own key.
    const raw = await store.get('/registry/nodes/10.77.0.12');
    expect(JSON.parse(raw?.value ?? '{}').metadata.labels).toEqual({ 'kubernetes.io/hostname': '10.77.0.12' });
    // resourceVersion is etcd's modification index of the key.
    expect(created.metadata?.resourceVersion).toBe(String(raw?.modifiedIndex));
    expect(await registry.get(NODES, '10.77.0.12')).toEqual(created);
    const list = await registry.list(NODES);
    expect(list.kind).toBe('NodeList');
    expect((list.items as unknown[]).length).toBe(1);
  });

  test('404: a missing object, in the Status shape kubectl prints', async () => {
    expect(await statusOf(new Registry(await makeStore()).get(NODES, '10.77.0.99'))).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'nodes "10.77.0.99" not found',
      reason: 'NotFound',
      details: { name: '10.77.0.99', kind: 'nodes' },
      code: 404,
    });
  });

  test('409: creating an existing object, and updating from a stale resourceVersion', async () => {
    const registry = new Registry(await makeStore());
    const first = await registry.create(NAMESPACES, { metadata: { name: 'kube-system' } });
    const exists = await statusOf(registry.create(NAMESPACES, { metadata: { name: 'kube-system' } }));
    expect(exists).toMatchObject({ code: 409, reason: 'AlreadyExists', message: 'namespaces "kube-system" already exists' });
    await registry.update(NAMESPACES, 'kube-system', { ...first, metadata: { ...first.metadata, labels: { a: 'b' } } });
    const stale = await statusOf(registry.update(NAMESPACES, 'kube-system', first));
    expect(stale).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(String(stale.message)).toContain('the object has been modified');
  });

  test('422: a name that is missing or not a DNS label, with the field named in the causes', async () => {
    const registry = new Registry(await makeStore());
    const missing = await statusOf(registry.create(NODES, { metadata: {} }));
    expect(missing).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(missing.details).toMatchObject({ kind: 'Node', causes: [{ reason: 'FieldValueRequired', field: 'metadata.name' }] });
    const bad = await statusOf(registry.create(NAMESPACES, { metadata: { name: 'Not_A_Label' } }));
    expect(bad.message).toBe('Namespace "Not_A_Label" is invalid: metadata.name: Invalid value: "Not_A_Label": must be a DNS label');
  });

  test('delete removes the key, and a second delete is a 404', async () => {
    const store = await makeStore();
    const registry = new Registry(store);
    await registry.create(NODES, { metadata: { name: 'worker' } });
    await registry.delete(NODES, 'worker');
    expect(await store.get('/registry/nodes/worker')).toBeUndefined();
    expect(await statusOf(registry.delete(NODES, 'worker'))).toMatchObject({ code: 404, reason: 'NotFound' });
  });
});

describe('apiserver stand-in over HTTP, with etcd behind it', () => {
  test('healthz, version, discovery, and node create/get/list/404/409 as kubectl sees them', async () => {
    const server = createApiServer({ registry: new Registry(await freshEtcd()), version: 'v1.3.0', platform: 'linux/amd64' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const call = async (path: string, init?: RequestInit) => {
      const response = await fetch(`${base}${path}`, init);
      const text = await response.text();
      return { code: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
    };
    try {
      expect((await call('/healthz')).text).toBe('ok');
      expect((await call('/version')).json()).toMatchObject({ major: '1', minor: '3', gitVersion: 'v1.3.0', platform: 'linux/amd64' });
      expect((await call('/api')).json()).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
      expect(JSON.stringify((await call('/api/v1')).json())).toContain('"name":"nodes"');

      const node = JSON.stringify({ kind: 'Node', apiVersion: 'v1', metadata: { name: '10.77.0.11' } });
      const created = await call('/api/v1/nodes', { method: 'POST', body: node });
      expect(created.code).toBe(201);
      expect((await call('/api/v1/nodes', { method: 'POST', body: node })).json()).toMatchObject({ code: 409, reason: 'AlreadyExists' });
      const list = (await call('/api/v1/nodes')).json();
      expect(list.kind).toBe('NodeList');
      expect((list.items as { metadata: { name: string } }[]).map((i) => i.metadata.name)).toEqual(['10.77.0.11']);
      const missing = await call('/api/v1/nodes/10.77.0.99');
      expect(missing.code).toBe(404);
      expect(missing.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'nodes "10.77.0.99" not found' });
      const bad = await call('/api/v1/nodes', { method: 'POST', body: '{not json' });
      expect(bad.code).toBe(400);
      expect((await call('/api/v1/widgets')).code).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("Debian's kubectl (kubernetes-client) reads the version and the nodes", async () => {
    const kubectl = debianKubectl();
    const server = createApiServer({ registry: new Registry(await freshEtcd()), version: 'v1.2.4', platform: 'linux/amd64' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(kubectl, ['--server', base, ...args], { env: { PATH: process.env.PATH, HOME: tmpdir() } });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => resolve({ code, out }));
      });
    try {
      await fetch(`${base}/api/v1/nodes`, {
        method: 'POST',
        body: JSON.stringify({ kind: 'Node', apiVersion: 'v1', metadata: { name: '10.77.0.12' } }),
      });
      const version = await run('version', '-o', 'json');
      expect(JSON.parse(version.out.slice(version.out.indexOf('{'))).serverVersion, version.out).toMatchObject({ gitVersion: 'v1.2.4' });
      const nodes = await run('get', 'nodes', '-o', 'json');
      expect(nodes.code, nodes.out).toBe(0);
      const list = JSON.parse(nodes.out) as { items: { metadata: { name: string } }[] };
      expect(list.items.map((i) => i.metadata.name)).toEqual(['10.77.0.12']);
      const missing = await run('get', 'node', '10.77.0.99');
      expect(missing.code).toBe(1);
      expect(missing.out).toContain('nodes "10.77.0.99" not found');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/**
 * Debian's kubectl, unpacked from its package into the lab's cache rather than installed (the
 * package would conflict with a kubectl the host may have from elsewhere).
 */
function debianKubectl(): string {
  const dir = join(cacheDir(), 'tools', 'kubernetes-client');
  const binary = join(dir, 'usr', 'bin', 'kubectl');
  if (existsSync(binary)) return binary;
  const download = mkdtempSync(join(tmpdir(), 'kubectl-deb-'));
  const fetchDeb = () => spawnSync('apt-get', ['download', '-q', 'kubernetes-client'], { cwd: download, encoding: 'utf8' });
  if (fetchDeb().status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8' });
    const again = fetchDeb();
    if (again.status !== 0) throw new Error(`apt-get download kubernetes-client failed: ${again.stderr}`);
  }
  const deb = readdirSync(download).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download kubernetes-client gave no package');
  mkdirSync(dir, { recursive: true });
  const unpack = spawnSync('dpkg-deb', ['-x', join(download, deb), dir], { encoding: 'utf8' });
  if (unpack.status !== 0) throw new Error(`dpkg-deb -x failed: ${unpack.stderr}`);
  rmSync(download, { recursive: true, force: true });
  return binary;
}
