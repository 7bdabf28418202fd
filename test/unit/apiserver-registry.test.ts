import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freeLoopbackPort } from '../../lab/net/ports.js';
import { cacheDir } from '../../lab/util/paths.js';
import type { AddressInfo } from 'node:net';
import { createApiServer } from '../../payloads/hyperkube/apiserver.js';
import { NAMESPACES, NODES, PODS, Registry, SERVICES, StatusError } from '../../payloads/hyperkube/registry.js';
import { ServiceIpAllocator } from '../../payloads/hyperkube/service-ips.js';
import { EtcdV2Store, MemoryStore, type KeyValueStore } from '../../payloads/hyperkube/store.js';
import { ApiClient, Changes } from '../../payloads/hyperkube/client.js';

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

  test('a list is read from the store again after a write of its kind, not after writes of others', async () => {
    const store = await makeStore();
    const reads: string[] = [];
    const counted: KeyValueStore = Object.assign(Object.create(store) as KeyValueStore, {
      list: (prefix: string) => (reads.push(prefix), store.list(prefix)),
    });
    const registry = new Registry(counted);
    await registry.create(NAMESPACES, { metadata: { name: 'default' } });
    await registry.create(NODES, { metadata: { name: '10.77.0.12' } });
    await registry.create(PODS, busyboxPod('web-1', { app: 'web' }), 'default');
    expect((await registry.list(PODS)).items).toHaveLength(1);
    // A node's heartbeat leaves the cached pods as they are...
    const node = await registry.get(NODES, '10.77.0.12');
    await registry.update(NODES, '10.77.0.12', { ...node, status: { conditions: [{ type: 'Ready', status: 'True' }] } }, undefined, 'status');
    expect((await registry.list(PODS)).items).toHaveLength(1);
    expect(reads.filter((p) => p.startsWith('/registry/pods'))).toHaveLength(1);
    // ...a pod written makes them stale, and the list shows it.
    await registry.create(PODS, busyboxPod('web-2', { app: 'web' }), 'default');
    expect((await registry.list(PODS)).items).toHaveLength(2);
    expect(reads.filter((p) => p.startsWith('/registry/pods'))).toHaveLength(2);
    expect((await registry.list(NODES)).items).toHaveLength(1);
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
    const server = createApiServer({ registry: new Registry(await freshEtcd()), version: 'v1.3.0', arch: 'amd64' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const call = async (path: string, init?: RequestInit) => {
      const response = await fetch(`${base}${path}`, init);
      const text = await response.text();
      return { code: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
    };
    try {
      expect((await call('/healthz')).text).toBe('ok');
      // What the v1.3.0 release binaries reported.
      expect((await call('/version')).json()).toEqual({
        major: '1',
        minor: '3',
        gitVersion: 'v1.3.0',
        gitCommit: '283137936a498aed572ee22af6774b6fb6e9fd94',
        gitTreeState: 'clean',
        buildDate: '2016-07-01T19:19:19Z',
        goVersion: 'go1.6.2',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
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

  test('componentstatuses asks etcd and the master components; /healthz stays ok without etcd, as in 1.2/1.3', async () => {
    // A port nobody listens on: a member of etcd that is down.
    const port = await freeLoopbackPort();
    const down = `http://127.0.0.1:${port}/health`;
    const server = createApiServer({
      registry: new Registry(await freshEtcd()),
      version: 'v1.3.0',
      arch: 'amd64',
      components: { 'etcd-0': `${etcdEndpoint}/health`, 'etcd-1': down },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const list = (await (await fetch(`${base}/api/v1/componentstatuses`)).json()) as { kind: string; items: { metadata: { name: string }; conditions: Record<string, string>[] }[] };
      expect(list.kind).toBe('ComponentStatusList');
      const byName = Object.fromEntries(list.items.map((i) => [i.metadata.name, i.conditions[0]]));
      expect(byName['etcd-0']).toMatchObject({ type: 'Healthy', status: 'True' });
      expect(byName['etcd-0']?.message).toMatch(/"health":\s*"true"/);
      expect(byName['etcd-1']).toMatchObject({ type: 'Healthy', status: 'False' });
      expect(byName['etcd-1']?.error).toBe(`Get ${down}: connect ECONNREFUSED 127.0.0.1:${port}`);
      expect((await fetch(`${base}/healthz`).then((r) => r.text()))).toBe('ok');
      expect((await fetch(`${base}/api/v1/componentstatuses/etcd-1`).then((r) => r.json())) as object).toMatchObject({ kind: 'ComponentStatus', metadata: { name: 'etcd-1' } });
      expect((await fetch(`${base}/api/v1/componentstatuses/nope`)).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("Debian's kubectl (kubernetes-client) reads the version and the nodes", async () => {
    const kubectl = debianKubectl();
    const server = createApiServer({ registry: new Registry(await freshEtcd()), version: 'v1.2.4', arch: 'amd64' });
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
      // 1.2 reported five fields, with the release's commit.
      expect(JSON.parse(version.out.slice(version.out.indexOf('{'))).serverVersion, version.out).toMatchObject({
        major: '1',
        minor: '2',
        gitVersion: 'v1.2.4',
        gitCommit: '3eed1e3be6848b877ff80a93da3785d9034d0a4f',
        gitTreeState: 'clean',
      });
      expect(Object.keys((await (await fetch(`${base}/version`)).json()) as object).sort()).toEqual(['gitCommit', 'gitTreeState', 'gitVersion', 'major', 'minor']);
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

/** An apiserver on 127.0.0.1 over a fresh etcd, with the guide's service range. */
async function startApi(version = 'v1.3.0') {
  const store = await freshEtcd();
  const registry = new Registry(store);
  for (const name of ['default', 'kube-system']) await registry.create(NAMESPACES, { metadata: { name } });
  const serviceIps = new ServiceIpAllocator(store, '10.0.0.1/24');
  const server = createApiServer({ registry, serviceIps, version, arch: 'amd64' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { code: response.status, json: (await response.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  return { registry, base, call, close: () => new Promise((resolve) => server.close(resolve)) };
}

const busyboxPod = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: { containers: [{ name: 'busybox', image: 'busybox', command: ['sleep', '3600'] }] },
});

describe('apiserver stand-in: pods, services and replication controllers', () => {
  test('a pod gets the defaults 1.2/1.3 gave it; a pod without containers is a 422 naming the field', async () => {
    const registry = new Registry(await freshEtcd());
    await registry.create(NAMESPACES, { metadata: { name: 'default' } });
    const pod = await registry.create(PODS, busyboxPod('busybox'), 'default');
    expect(pod.spec).toMatchObject({ restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', terminationGracePeriodSeconds: 30 });
    expect(pod.status).toEqual({ phase: 'Pending' });
    expect(pod.metadata?.selfLink).toBe('/api/v1/namespaces/default/pods/busybox');
    const empty = await statusOf(registry.create(PODS, { metadata: { name: 'empty' }, spec: { containers: [] } }, 'default'));
    expect(empty).toMatchObject({ code: 422, message: 'Pod "empty" is invalid: spec.containers: Required value' });
    const policy = await statusOf(
      registry.create(PODS, { metadata: { name: 'p' }, spec: { restartPolicy: 'Sometimes', containers: [{ name: 'c' }] } }, 'default'),
    );
    expect(String(policy.message)).toBe(
      'Pod "p" is invalid: [spec.containers[0].image: Required value, spec.restartPolicy: Unsupported value: "Sometimes": supported values: Always, OnFailure, Never]',
    );
    expect(await statusOf(registry.create(PODS, busyboxPod('x'), 'nowhere'))).toMatchObject({ code: 404, message: 'namespaces "nowhere" not found' });
  });

  test('lists filter by label and field selectors, across namespaces or in one', async () => {
    const api = await startApi();
    try {
      await api.call('POST', '/api/v1/namespaces/default/pods', busyboxPod('web-1', { app: 'web' }));
      await api.call('POST', '/api/v1/namespaces/default/pods', busyboxPod('db-1', { app: 'db' }));
      await api.call('POST', '/api/v1/namespaces/kube-system/pods', busyboxPod('web-2', { app: 'web' }));
      const names = async (query: string, ns?: string) =>
        ((await api.call('GET', `/api/v1${ns ? `/namespaces/${ns}` : ''}/pods${query}`)).json.items as { metadata: { name: string } }[]).map(
          (p) => p.metadata.name,
        );
      expect(await names('')).toEqual(['db-1', 'web-1', 'web-2']);
      expect(await names('', 'default')).toEqual(['db-1', 'web-1']);
      expect(await names('?labelSelector=app%3Dweb')).toEqual(['web-1', 'web-2']);
      expect(await names('?fieldSelector=metadata.name%3Dweb-2')).toEqual(['web-2']);
      expect(await names('?fieldSelector=spec.nodeName%3D')).toEqual(['db-1', 'web-1', 'web-2']);
      expect((await api.call('GET', '/api/v1/pods?fieldSelector=spec.hostIP%3D1')).code).toBe(400);
    } finally {
      await api.close();
    }
  });

  test('binding puts a pod on a node once; a status update leaves the spec alone', async () => {
    const api = await startApi();
    try {
      await api.call('POST', '/api/v1/namespaces/default/pods', busyboxPod('busybox'));
      const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'busybox' }, target: { kind: 'Node', name: '10.77.0.12' } };
      expect((await api.call('POST', '/api/v1/namespaces/default/pods/busybox/binding', binding)).code).toBe(201);
      const again = await api.call('POST', '/api/v1/namespaces/default/pods/busybox/binding', { ...binding, target: { name: '10.77.0.11' } });
      expect(again.json).toMatchObject({ code: 409, message: expect.stringContaining('is already assigned to node "10.77.0.12"') });
      const pod = (await api.call('GET', '/api/v1/namespaces/default/pods/busybox')).json;
      expect(pod.spec.nodeName).toBe('10.77.0.12');
      const updated = await api.call('PUT', '/api/v1/namespaces/default/pods/busybox/status', {
        ...pod,
        spec: { ...pod.spec, nodeName: 'elsewhere' },
        status: { phase: 'Running', podIP: '10.1.5.2' },
      });
      expect(updated.json.spec.nodeName).toBe('10.77.0.12');
      expect(updated.json.status).toEqual({ phase: 'Running', podIP: '10.1.5.2' });
    } finally {
      await api.close();
    }
  });

  test('services get cluster IPs from the range: a wanted one, a random free one, never one taken twice', async () => {
    const api = await startApi();
    const service = (name: string, clusterIP?: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name },
      spec: { selector: { app: name }, ports: [{ port: 53, protocol: 'UDP' }], ...(clusterIP ? { clusterIP } : {}) },
    });
    try {
      const dns = await api.call('POST', '/api/v1/namespaces/kube-system/services', service('kube-dns', '10.0.0.10'));
      expect(dns.json.spec).toMatchObject({ clusterIP: '10.0.0.10', type: 'ClusterIP', ports: [{ port: 53, protocol: 'UDP', targetPort: 53 }] });
      // Creating it again is a 409 (what the addon manager expects), not a complaint about its own IP.
      const again = await api.call('POST', '/api/v1/namespaces/kube-system/services', service('kube-dns', '10.0.0.10'));
      expect(again.json).toMatchObject({ code: 409, reason: 'AlreadyExists' });
      const taken = await api.call('POST', '/api/v1/namespaces/default/services', service('copy', '10.0.0.10'));
      expect(taken.json).toMatchObject({ code: 422, message: 'Service "copy" is invalid: spec.clusterIP: Invalid value: "10.0.0.10": provided IP is already allocated' });
      const outside = await api.call('POST', '/api/v1/namespaces/default/services', service('far', '10.9.0.1'));
      expect(outside.json.message).toContain('provided IP is not in the valid range');
      const random = await api.call('POST', '/api/v1/namespaces/default/services', service('web'));
      expect(random.json.spec.clusterIP).toMatch(/^10\.0\.0\.(\d+)$/);
      expect(random.json.spec.clusterIP).not.toBe('10.0.0.10');
      // A failed create gives its IP back, and so does a delete.
      expect((await api.call('POST', '/api/v1/namespaces/default/services', service('web', '10.0.0.20'))).code).toBe(409);
      expect((await api.call('POST', '/api/v1/namespaces/default/services', service('other', '10.0.0.20'))).code).toBe(201);
      await api.call('DELETE', '/api/v1/namespaces/kube-system/services/kube-dns');
      expect((await api.call('POST', '/api/v1/namespaces/default/services', service('reuse', '10.0.0.10'))).code).toBe(201);
      expect(await api.registry.list(SERVICES)).toMatchObject({ kind: 'ServiceList' });
    } finally {
      await api.close();
    }
  });

  test("Debian's kubectl creates, lists, scales and deletes pods, services and RCs", async () => {
    const api = await startApi('v1.2.4');
    const dir = mkdtempSync(join(tmpdir(), 'lab-kubectl-'));
    const kubectl = (...args: string[]) => runKubectl(api.base, args);
    try {
      writeFileSync(
        join(dir, 'web.yaml'),
        [
          'apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: busybox\n',
          'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n',
          'apiVersion: v1\nkind: Pod\nmetadata:\n  name: busybox\nspec:\n  containers:\n  - name: busybox\n    image: busybox\n    command: [sleep, "3600"]\n',
        ].join('---\n'),
      );
      const created = await kubectl('create', '-f', join(dir, 'web.yaml'));
      expect(created.out, created.out).toContain('replicationcontroller/web created');
      expect(created.out).toContain('service/web created');
      expect(created.out).toContain('pod/busybox created');
      expect(created.code).toBe(0);

      const rc = JSON.parse((await kubectl('get', 'rc', 'web', '-o', 'json')).out);
      expect(rc.spec.selector).toEqual({ app: 'web' });
      const pods = await kubectl('get', 'pods');
      expect(pods.out).toMatch(/^NAME\s+/);
      expect(pods.out).toContain('busybox');
      const svc = JSON.parse((await kubectl('get', 'svc', 'web', '-o', 'json')).out);
      expect(svc.spec.clusterIP).toMatch(/^10\.0\.0\.\d+$/);

      const scaled = await kubectl('scale', 'rc', 'web', '--replicas=0');
      expect(scaled.out, scaled.out).toContain('replicationcontroller/web scaled');
      expect((await api.call('GET', '/api/v1/namespaces/default/replicationcontrollers/web')).json.spec.replicas).toBe(0);

      for (const [kind, name] of [['pod', 'busybox'], ['svc', 'web'], ['rc', 'web']]) {
        const deleted = await kubectl('delete', kind as string, name as string);
        expect(deleted.code, deleted.out).toBe(0);
        expect(deleted.out).toContain(`"${name}" deleted`);
      }
      expect((await kubectl('get', 'pod', 'busybox')).out).toContain('pods "busybox" not found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await api.close();
    }
  });
});

function runKubectl(server: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(debianKubectl(), ['--server', server, ...args], { env: { PATH: process.env.PATH, HOME: tmpdir() } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

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

describe('apiserver stand-in: /lab/changes, the long-poll the components wait on instead of polling', () => {
  test('a wait ends at the first write to a resource it names, not at writes to others, and at its deadline without any', async () => {
    const api = await startApi();
    try {
      const client = new ApiClient(api.base);
      const pods = new Changes(client, ['pods']);
      let started = Date.now();
      await pods.wait(5000); // the first call only marks where we are
      expect(Date.now() - started).toBeLessThan(1000);
      // A service write does not wake a pods waiter; a pod write does, at once.
      const woken = pods.wait(5000).then(() => Date.now());
      started = Date.now();
      await api.call('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'svc' }, spec: { ports: [{ port: 80 }] } });
      await new Promise((r) => setTimeout(r, 300));
      await api.call('POST', '/api/v1/namespaces/default/pods', busyboxPod('wakes'));
      const after = (await woken) - started;
      expect(after).toBeGreaterThanOrEqual(300);
      expect(after).toBeLessThan(3000);
      // Nothing written: the wait lasts its maximum (1 s here).
      started = Date.now();
      await pods.wait(1000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // A write between two waits is not missed: the next wait returns at once.
      await api.call('DELETE', '/api/v1/namespaces/default/pods/wakes');
      started = Date.now();
      await pods.wait(5000);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await api.close();
    }
  });

  test('an apiserver that does not answer costs a plain sleep, never a busy loop', async () => {
    const waiter = new Changes(new ApiClient('http://127.0.0.1:1'), ['pods']);
    const started = Date.now();
    await waiter.wait(1500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });
});
