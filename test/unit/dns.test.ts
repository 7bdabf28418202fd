import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { freeLoopbackPort } from '../../lab/net/ports.js';
import { cacheDir } from '../../lab/util/paths.js';
import { EtcdV2Client } from '../../payloads/etcd.js';
import { ApiClient, type Json } from '../../payloads/hyperkube/client.js';
import { startExecHealthz } from '../../payloads/dns/exechealthz.js';
import { emptiedDirectories, Kube2Sky, kubeMasterUrl } from '../../payloads/dns/kube2sky.js';
import { fnv32aHex, keyForName, nameForKey, skydnsRecords, skyMessage } from '../../payloads/dns/records.js';
import { startSkyDns, type SkyDnsServer } from '../../payloads/dns/skydns.js';
import {
  CLASS_IN,
  decodeMessage,
  DnsFormatError,
  encodeMessage,
  frameTcp,
  makeQuery,
  RCODE,
  readTcpFrames,
  TYPE,
  type DnsMessage,
} from '../../payloads/dns/wire.js';

const DOMAIN = 'cluster.local';

const service = (namespace: string, name: string, clusterIP: string, ports: Json[] = [{ port: 80, protocol: 'TCP' }]): Json => ({
  kind: 'Service',
  metadata: { namespace, name },
  spec: { clusterIP, ports },
});
const KUBERNETES = service('default', 'kubernetes', '10.0.0.1', [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 443 }]);

describe('DNS wire format', () => {
  test('a response with A, AAAA, SRV and an unknown record type survives encode and decode unchanged', () => {
    const message: DnsMessage = {
      header: { id: 0xbeef, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: true, rcode: RCODE.NOERROR },
      questions: [{ name: 'kubernetes.default.svc.cluster.local.', type: TYPE.SRV, class: CLASS_IN }],
      answers: [
        { name: 'kubernetes.default.svc.cluster.local.', type: TYPE.A, class: CLASS_IN, ttl: 30, data: { kind: 'A', address: '10.0.0.1' } },
        {
          name: 'kubernetes.default.svc.cluster.local.',
          type: TYPE.SRV,
          class: CLASS_IN,
          ttl: 30,
          data: { kind: 'SRV', priority: 10, weight: 100, port: 443, target: 'kubernetes.default.svc.cluster.local.' },
        },
      ],
      authorities: [
        { name: 'v6.cluster.local.', type: TYPE.AAAA, class: CLASS_IN, ttl: 5, data: { kind: 'AAAA', address: 'fd00:0:0:0:0:0:0:1' } },
      ],
      additionals: [{ name: '.', type: TYPE.OPT, class: 4096, ttl: 0, data: { kind: 'raw', bytes: new Uint8Array() } }],
    };
    const wire = encodeMessage(message);
    expect(decodeMessage(wire)).toEqual(message);
    // The repeated owner name is written once and pointed at afterwards (0xc00c: the question's name).
    expect(wire.indexOf(Buffer.from([0xc0, 0x0c]))).toBeGreaterThan(0);
    // 168 bytes: the two answers' owner is a 2-byte pointer, v6.cluster.local. is "v6" and a pointer (the SRV target is not compressed, RFC 2782).
    expect(wire.length).toBe(168);
  });

  test('names are read through compression pointers in a hand-made packet', () => {
    const label = (text: string) => [text.length, ...Buffer.from(text)];
    const packet = Uint8Array.from([
      ...[0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0], // id, QR RD RA, 1 question, 2 answers
      ...[...label('example'), ...label('com'), 0, 0, 1, 0, 1], // example.com. A IN, at offset 12
      ...[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4], // a pointer to offset 12; A, TTL 60, 1.2.3.4
      ...[...label('www'), 0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 11], // www and a pointer; SRV, TTL 60, 11 bytes of data:
      ...[0, 10, 0, 5, 1, 187, ...label('db'), 0xc0, 12], // priority 10, weight 5, port 443, target db and a pointer
    ]);
    const message = decodeMessage(packet);
    expect(message.header).toMatchObject({ id: 0x1234, qr: true, rd: true, ra: true, rcode: 0 });
    expect(message.questions).toEqual([{ name: 'example.com.', type: TYPE.A, class: CLASS_IN }]);
    expect(message.answers).toEqual([
      { name: 'example.com.', type: TYPE.A, class: CLASS_IN, ttl: 60, data: { kind: 'A', address: '1.2.3.4' } },
      {
        name: 'www.example.com.',
        type: TYPE.SRV,
        class: CLASS_IN,
        ttl: 60,
        data: { kind: 'SRV', priority: 10, weight: 5, port: 443, target: 'db.example.com.' },
      },
    ]);
  });

  test('a pointer that loops or a message cut short is a format error, not a hang', () => {
    const looping = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(() => decodeMessage(looping)).toThrow(DnsFormatError);
    const cut = encodeMessage(makeQuery(7, 'kubernetes.default', TYPE.A)).subarray(0, 20);
    expect(() => decodeMessage(cut)).toThrow(DnsFormatError);
  });

  test('TCP framing: whole messages are split off, a partial one waits for more bytes', () => {
    const [a, b, c] = [1, 2, 3].map((id) => encodeMessage(makeQuery(id, 'a.cluster.local', TYPE.A))) as [Buffer, Buffer, Buffer];
    const stream = Buffer.concat([frameTcp(a), frameTcp(b), frameTcp(c).subarray(0, 5)]);
    const { messages, rest } = readTcpFrames(stream);
    expect(messages.map((m) => decodeMessage(m).header.id)).toEqual([1, 2]);
    expect(rest).toEqual(frameTcp(c).subarray(0, 5));
    expect(readTcpFrames(Buffer.concat([rest, frameTcp(c).subarray(5)])).messages).toEqual([c]);
  });
});

describe('kube2sky records', () => {
  test("the record label is Go's FNV-32a of the value, in hex", () => {
    expect([fnv32aHex(''), fnv32aHex('a'), fnv32aHex('foobar')]).toEqual(['811c9dc5', 'e40c292c', 'bf9cf968']);
    expect(skyMessage('10.0.0.1')).toBe('{"host":"10.0.0.1","priority":10,"weight":10,"ttl":30,"targetstrip":0}');
  });

  test('a service with a cluster IP: an A record under svc/<ns>/<name>, and an SRV record per named port', () => {
    const value = skyMessage('10.0.0.1');
    const hash = fnv32aHex(value);
    expect(hash).toMatch(/^[0-9a-f]{1,8}$/);
    expect(skydnsRecords([KUBERNETES], [], DOMAIN)).toEqual(
      new Map([
        [`/skydns/local/cluster/svc/default/kubernetes/${hash}`, value],
        [
          `/skydns/local/cluster/svc/default/kubernetes/_tcp/_https/${hash}`,
          '{"host":"kubernetes.default.svc.cluster.local.","port":443,"priority":10,"weight":10,"ttl":30,"targetstrip":0}',
        ],
      ]),
    );
    // An unnamed port gets no SRV record; a domain given with its dot gives the same keys.
    expect([...skydnsRecords([service('web', 'nginx', '10.0.0.80')], [], 'cluster.local.').keys()]).toEqual([
      `/skydns/local/cluster/svc/web/nginx/${fnv32aHex(skyMessage('10.0.0.80'))}`,
    ]);
  });

  test('a headless service: one A record per ready endpoint address, none for addresses not ready or without endpoints', () => {
    const headless = service('default', 'db', 'None', [{ name: 'pg', port: 5432, protocol: 'TCP' }]);
    const endpoints = {
      metadata: { namespace: 'default', name: 'db' },
      subsets: [
        {
          addresses: [{ ip: '10.1.0.5' }, { ip: '10.1.1.7' }],
          notReadyAddresses: [{ ip: '10.1.2.9' }],
          ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
        },
      ],
    };
    const records = skydnsRecords([headless], [endpoints], DOMAIN);
    const [first, second] = ['10.1.0.5', '10.1.1.7'].map((ip) => fnv32aHex(skyMessage(ip))) as [string, string];
    expect(records.get(`/skydns/local/cluster/svc/default/db/${first}`)).toBe(skyMessage('10.1.0.5'));
    expect(records.get(`/skydns/local/cluster/svc/default/db/${second}`)).toBe(skyMessage('10.1.1.7'));
    expect(records.get(`/skydns/local/cluster/svc/default/db/_tcp/_pg/${first}`)).toBe(
      skyMessage(`${first}.db.default.svc.cluster.local.`, 5432),
    );
    expect(records.size).toBe(4);
    expect(skydnsRecords([headless], [], DOMAIN).size).toBe(0);
  });

  test('keyForName and nameForKey map DNS names and etcd keys both ways, ignoring case and the trailing dot', () => {
    expect(keyForName('kubernetes.default.svc.cluster.local.')).toBe('/skydns/local/cluster/svc/default/kubernetes');
    expect(keyForName('Kubernetes.Default.svc.cluster.local')).toBe('/skydns/local/cluster/svc/default/kubernetes');
    expect(nameForKey('/skydns/local/cluster/svc/default/kubernetes/3f1d6c7b')).toBe('3f1d6c7b.kubernetes.default.svc.cluster.local.');
  });

  test('the directories a removal empties are deleted deepest first, never one that keeps a record', () => {
    const root = '/skydns/local/cluster/svc';
    const removed = [`${root}/web/nginx/aa`, `${root}/web/nginx/_tcp/_http/aa`, `${root}/default/db/bb`];
    const kept = [`${root}/default/db/cc`, `${root}/default/kubernetes/dd`];
    expect(emptiedDirectories(root, removed, kept)).toEqual([
      `${root}/web/nginx/_tcp/_http`,
      `${root}/web/nginx/_tcp`,
      `${root}/web/nginx`,
      `${root}/web`,
    ]);
  });

  test("the master's URL: the flag with $VARS expanded, else the in-cluster service's address", () => {
    const env = { MASTER: '10.77.0.11', KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '8080' };
    expect(kubeMasterUrl('http://${MASTER}:8080', '', env)).toBe('http://10.77.0.11:8080');
    expect(kubeMasterUrl('', '', env)).toBe('http://10.0.0.1:8080');
    expect(() => kubeMasterUrl('', '', {})).toThrow(/KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined/);
  });
});

/** Debian's etcd on 127.0.0.1 with the v2 API, as apiserver-registry.test.ts runs it. */
let etcdProcess: ChildProcess | undefined;
let etcdData = '';
let etcd: EtcdV2Client;

/** The apiserver's two lists, which the tests change between syncs. */
const cluster: { services: Json[]; endpoints: Json[] } = { services: [], endpoints: [] };
let apiserver: Server;
let api: ApiClient;
let skydns: SkyDnsServer;
let kube2sky: Kube2Sky;

beforeAll(async () => {
  etcdData = mkdtempSync(join(tmpdir(), 'lab-etcd-'));
  const [client, peer] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const endpoint = `http://127.0.0.1:${client}`;
  etcdProcess = spawn(
    'etcd',
    [
      ...['--data-dir', etcdData, '--enable-v2=true', '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint],
      ...['--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
      ...['--initial-cluster', `default=http://127.0.0.1:${peer}`],
    ],
    { stdio: 'ignore' },
  );
  for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
    if (
      await fetch(`${endpoint}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error('etcd did not answer on 127.0.0.1 within 20 s');
  }
  etcd = new EtcdV2Client([endpoint]);

  apiserver = createServer((request, response) => {
    const lists: Record<string, [string, Json[]]> = {
      '/api/v1/services': ['ServiceList', cluster.services],
      '/api/v1/endpoints': ['EndpointsList', cluster.endpoints],
    };
    const list = lists[request.url?.split('?')[0] ?? ''];
    response.writeHead(list ? 200 : 404, { 'content-type': 'application/json' });
    response.end(JSON.stringify(list ? { kind: list[0], apiVersion: 'v1', metadata: {}, items: list[1] } : { kind: 'Status', code: 404 }));
  });
  await new Promise<void>((resolve) => apiserver.listen(0, '127.0.0.1', resolve));
  api = new ApiClient(`http://127.0.0.1:${(apiserver.address() as AddressInfo).port}`);
  // No cache here, so each query sees the sync before it; the cache has its own test.
  skydns = await startSkyDns({ etcd, domain: `${DOMAIN}.`, host: '127.0.0.1', port: await freeLoopbackPort(), cacheMs: 0, log: () => {} });
});

afterAll(async () => {
  await skydns?.close();
  await new Promise((resolve) => apiserver?.close(resolve));
  etcdProcess?.kill('SIGKILL');
  rmSync(etcdData, { recursive: true, force: true });
});

beforeEach(async () => {
  await fetch(`${etcd.endpoints[0]}/v2/keys/skydns?recursive=true&dir=true`, { method: 'DELETE' });
  cluster.services = [KUBERNETES];
  cluster.endpoints = [];
  kube2sky = new Kube2Sky(api, etcd, DOMAIN);
});

let nextId = 1;

function queryUdp(port: number, name: string, type: number, raw?: Buffer): Promise<DnsMessage> {
  const socket = createSocket('udp4');
  const id = nextId++;
  return new Promise<DnsMessage>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no UDP answer for ${name}`)), 3000);
    socket.on('message', (packet) => {
      clearTimeout(timer);
      resolve(decodeMessage(packet));
    });
    socket.send(raw ?? encodeMessage(makeQuery(id, name, type)), port, '127.0.0.1');
  }).finally(() => socket.close());
}

function queryTcp(port: number, name: string, type: number): Promise<DnsMessage> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(frameTcp(encodeMessage(makeQuery(nextId++, name, type)))));
    let received = Buffer.alloc(0);
    socket.setTimeout(3000, () => socket.destroy(new Error(`no TCP answer for ${name}`)));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      const { messages } = readTcpFrames((received = Buffer.concat([received, chunk])));
      if (messages[0]) {
        socket.end();
        resolve(decodeMessage(messages[0]));
      }
    });
  });
}

/** The addresses of an answer, sorted (skydns may rotate them). */
const addresses = (message: DnsMessage) => message.answers.flatMap((a) => (a.data.kind === 'A' ? [a.data.address] : [])).sort();

describe('kube2sky and skydns against etcd on 127.0.0.1 and a fake apiserver', () => {
  test('kubernetes.default.svc.cluster.local answers 10.0.0.1 over UDP and TCP; AAAA is an empty NOERROR; SRV names port 443', async () => {
    const result = await kube2sky.syncOnce();
    expect(result.hasKubernetesService).toBe(true);
    const hash = fnv32aHex(skyMessage('10.0.0.1'));
    expect(await etcd.get(`/skydns/local/cluster/svc/default/kubernetes/${hash}`)).toMatchObject({ value: skyMessage('10.0.0.1') });

    for (const answer of [
      await queryUdp(skydns.port, 'kubernetes.default.svc.cluster.local', TYPE.A),
      await queryTcp(skydns.port, 'kubernetes.default.svc.cluster.local', TYPE.A),
    ]) {
      expect(answer.header).toMatchObject({ qr: true, aa: true, rcode: RCODE.NOERROR });
      expect(answer.answers).toEqual([
        { name: 'kubernetes.default.svc.cluster.local.', type: TYPE.A, class: CLASS_IN, ttl: 30, data: { kind: 'A', address: '10.0.0.1' } },
      ]);
    }
    const aaaa = await queryUdp(skydns.port, 'kubernetes.default.svc.cluster.local', TYPE.AAAA);
    expect([aaaa.header.rcode, aaaa.answers]).toEqual([RCODE.NOERROR, []]);

    const srv = await queryUdp(skydns.port, '_https._tcp.kubernetes.default.svc.cluster.local', TYPE.SRV);
    expect(srv.answers.map((a) => a.data)).toEqual([
      { kind: 'SRV', priority: 10, weight: 100, port: 443, target: 'kubernetes.default.svc.cluster.local.' },
    ]);
    expect(addresses({ ...srv, answers: srv.additionals })).toEqual(['10.0.0.1']);
  });

  test('a service added resolves after the next sync; removed, it is NXDOMAIN and its etcd directory is gone', async () => {
    await kube2sky.syncOnce();
    expect((await queryUdp(skydns.port, 'nginx.web.svc.cluster.local', TYPE.A)).header.rcode).toBe(RCODE.NXDOMAIN);

    cluster.services = [KUBERNETES, service('web', 'nginx', '10.0.0.80', [{ name: 'http', port: 80, protocol: 'TCP' }])];
    const added = await kube2sky.syncOnce();
    expect(added.set.map(nameForKey)).toEqual([
      `${fnv32aHex(skyMessage('10.0.0.80'))}.nginx.web.svc.cluster.local.`,
      `${fnv32aHex(skyMessage('10.0.0.80'))}._http._tcp.nginx.web.svc.cluster.local.`,
    ]);
    expect(addresses(await queryUdp(skydns.port, 'nginx.web.svc.cluster.local', TYPE.A))).toEqual(['10.0.0.80']);
    // A second sync with nothing changed writes nothing.
    expect(await kube2sky.syncOnce()).toMatchObject({ set: [], removed: [] });

    cluster.services = [KUBERNETES];
    const removed = await kube2sky.syncOnce();
    expect(removed.removed).toHaveLength(2);
    expect((await queryUdp(skydns.port, 'nginx.web.svc.cluster.local', TYPE.A)).header.rcode).toBe(RCODE.NXDOMAIN);
    expect((await etcd.call('GET', '/skydns/local/cluster/svc/web')).errorCode).toBe(100);
    expect(await etcd.get(added.set[1] as string)).toBeUndefined();
    expect(addresses(await queryTcp(skydns.port, 'kubernetes.default.svc.cluster.local', TYPE.A))).toEqual(['10.0.0.1']);
  });

  test("SRV records, which etcd hides from listings ('_' names), are written again when etcd loses its data, and follow port renames", async () => {
    const srvKey = (port: string) => `/skydns/local/cluster/svc/default/kubernetes/_tcp/_${port}/${fnv32aHex(skyMessage('10.0.0.1'))}`;
    await kube2sky.syncOnce();
    expect((await etcd.list('/skydns')).map((v) => v.key)).not.toContain(srvKey('https'));
    expect(await etcd.get(srvKey('https'))).toBeDefined();
    expect(await kube2sky.syncOnce()).toMatchObject({ set: [], removed: [] });

    await fetch(`${etcd.endpoints[0]}/v2/keys/skydns?recursive=true&dir=true`, { method: 'DELETE' });
    expect((await kube2sky.syncOnce()).set).toContain(srvKey('https'));
    expect(await etcd.get(srvKey('https'))).toBeDefined();

    cluster.services = [service('default', 'kubernetes', '10.0.0.1', [{ name: 'secure', port: 443, protocol: 'TCP' }])];
    expect(await kube2sky.syncOnce()).toMatchObject({ set: [srvKey('secure')], removed: [srvKey('https')] });
    expect(await etcd.get(srvKey('https'))).toBeUndefined();
    expect((await etcd.call('GET', '/skydns/local/cluster/svc/default/kubernetes/_tcp/_https')).errorCode).toBe(100);
    const srv = await queryTcp(skydns.port, '_secure._tcp.kubernetes.default.svc.cluster.local', TYPE.SRV);
    expect(srv.answers.map((a) => a.data)).toMatchObject([{ kind: 'SRV', port: 443 }]);
  });

  test('a headless service answers the addresses of its ready endpoints, and follows them as they change', async () => {
    cluster.services = [KUBERNETES, service('default', 'db', 'None')];
    cluster.endpoints = [
      {
        metadata: { namespace: 'default', name: 'db' },
        subsets: [{ addresses: [{ ip: '10.1.0.5' }, { ip: '10.1.1.7' }], ports: [{ port: 5432 }] }],
      },
    ];
    await kube2sky.syncOnce();
    expect(addresses(await queryUdp(skydns.port, 'db.default.svc.cluster.local', TYPE.A))).toEqual(['10.1.0.5', '10.1.1.7']);

    cluster.endpoints = [
      { metadata: { namespace: 'default', name: 'db' }, subsets: [{ addresses: [{ ip: '10.1.1.7' }], ports: [{ port: 5432 }] }] },
    ];
    await kube2sky.syncOnce();
    expect(addresses(await queryTcp(skydns.port, 'db.default.svc.cluster.local', TYPE.A))).toEqual(['10.1.1.7']);
  });

  test("keys outside kube2sky's tree stay; other names get NXDOMAIN, names outside the domain SERVFAIL, garbage FORMERR", async () => {
    await etcd.set('/skydns/local/cluster/custom/db', '{"host":"10.9.9.9"}');
    await etcd.set('/skydns/local/cluster/svc/stale/old/abc', skyMessage('10.0.0.99'));
    await kube2sky.syncOnce();
    expect(await etcd.get('/skydns/local/cluster/custom/db')).toMatchObject({ value: '{"host":"10.9.9.9"}' });
    expect(await etcd.get('/skydns/local/cluster/svc/stale/old/abc')).toBeUndefined();
    // A record without a TTL gets skydns' default of an hour.
    expect((await queryUdp(skydns.port, 'db.custom.cluster.local', TYPE.A)).answers[0]).toMatchObject({
      ttl: 3600,
      data: { address: '10.9.9.9' },
    });

    expect((await queryUdp(skydns.port, 'nothing.default.svc.cluster.local', TYPE.A)).header).toMatchObject({
      rcode: RCODE.NXDOMAIN,
      aa: true,
    });
    expect((await queryUdp(skydns.port, 'bad?name.svc.cluster.local', TYPE.A)).header.rcode).toBe(RCODE.NXDOMAIN);
    expect((await queryUdp(skydns.port, 'example.com', TYPE.A)).header).toMatchObject({ rcode: RCODE.SERVFAIL, aa: false });
    const garbage = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 1, 2]);
    expect((await queryUdp(skydns.port, '', 0, garbage)).header).toMatchObject({ id: 0xabcd, qr: true, rcode: RCODE.FORMERR });
  });

  test('skydns reuses an etcd lookup for 1 s, then sees the change', async () => {
    await kube2sky.syncOnce();
    const cached = await startSkyDns({ etcd, domain: DOMAIN, host: '127.0.0.1', port: await freeLoopbackPort(), log: () => {} });
    try {
      expect(addresses(await queryUdp(cached.port, 'kubernetes.default.svc.cluster.local', TYPE.A))).toEqual(['10.0.0.1']);
      cluster.services = [];
      await kube2sky.syncOnce();
      expect(addresses(await queryUdp(cached.port, 'kubernetes.default.svc.cluster.local', TYPE.A))).toEqual(['10.0.0.1']);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await queryUdp(cached.port, 'kubernetes.default.svc.cluster.local', TYPE.A)).header.rcode).toBe(RCODE.NXDOMAIN);
    } finally {
      await cached.close();
    }
  });

  test('an unreachable apiserver: the sync fails naming its URL and leaves etcd as it was', async () => {
    await kube2sky.syncOnce();
    const before = await etcd.list('/skydns');
    const port = await freeLoopbackPort();
    await expect(new Kube2Sky(new ApiClient(`http://127.0.0.1:${port}`), etcd, DOMAIN).syncOnce()).rejects.toThrow(
      new RegExp(`GET http://127.0.0.1:${port}/api/v1/(services|endpoints): `),
    );
    expect(await etcd.list('/skydns')).toEqual(before);
  });

  const busybox = busyboxBinary();
  test.skipIf(!busybox)("Debian's busybox nslookup (A and AAAA queries) finds kubernetes.default.svc.cluster.local", async () => {
    await kube2sky.syncOnce();
    // Asynchronously: the server answering it runs in this process.
    const run = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn(busybox as string, ['nslookup', 'kubernetes.default.svc.cluster.local', `127.0.0.1:${skydns.port}`]);
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', (status) => resolve({ status, stdout }));
    });
    expect(run.status, run.stdout).toBe(0);
    expect(run.stdout).toContain(`Address:\t127.0.0.1:${skydns.port}`);
    expect(run.stdout).toMatch(/Name:\tkubernetes\.default\.svc\.cluster\.local\nAddress: 10\.0\.0\.1\n/);
    expect(run.stdout).not.toMatch(/Can't find|server can't find/);
  });
});

/** Debian's static busybox as the payload build unpacks it, when this host has built the payload (amd64 only: it runs here). */
function busyboxBinary(): string | undefined {
  const payloads = join(cacheDir(), 'payloads');
  if (process.arch !== 'x64' || !existsSync(payloads)) return undefined;
  return readdirSync(payloads)
    .filter((dir) => dir.startsWith('layers-amd64-'))
    .map((dir) => join(payloads, dir, 'base', 'bin', 'busybox'))
    .find((path) => existsSync(path));
}

describe('exechealthz', () => {
  test('GET /healthz is 503 with the output while the command fails, 200 "ok" once it succeeds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'exechealthz-'));
    const flag = join(dir, 'healthy');
    const healthz = await startExecHealthz({ cmd: `cat ${flag}`, port: 0, host: '127.0.0.1', periodMs: 50, latencyMs: 30_000 });
    const get = async () => {
      const response = await fetch(`http://127.0.0.1:${healthz.port}/healthz`);
      return { status: response.status, text: await response.text() };
    };
    try {
      let answer = await get();
      for (const deadline = Date.now() + 5000; !answer.text.includes('No such file') && Date.now() < deadline; answer = await get())
        await new Promise((r) => setTimeout(r, 50));
      expect(answer.status).toBe(503);
      expect(answer.text).toMatch(
        /^Healthz probe error: Result of last exec: cat: .*healthy: No such file or directory\n, at .*, error exit status 1/,
      );

      writeFileSync(flag, 'yes\n');
      for (const deadline = Date.now() + 5000; answer.status !== 200 && Date.now() < deadline; answer = await get())
        await new Promise((r) => setTimeout(r, 50));
      expect(answer).toEqual({ status: 200, text: 'ok' });
      expect((await fetch(`http://127.0.0.1:${healthz.port}/other`)).status).toBe(404);
    } finally {
      await healthz.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
