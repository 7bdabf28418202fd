import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import tls from 'node:tls';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundlePrograms } from '../../payloads/bundle/bundle.js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { nodeEra, reportState, type NodeCredentials } from '../../payloads/flocker/agent.js';
import { FlockerApiError, FlockerClient } from '../../payloads/flocker/client.js';
import { flockerVersion, startControlService, type ControlService } from '../../payloads/flocker/control.js';
import { makeFlockerCerts } from '../../lab/certs/flocker-ca.js';

/**
 * The emulated Flocker control service through the client the kubelet's plugin uses: mutual TLS
 * with a throwaway cluster CA on 127.0.0.1, the REST API's answers as Flocker 1.14 gave them,
 * persistence across a restart, and the agents' port.
 */
const dir = mkdtempSync(join(tmpdir(), 'flocker-api-'));
interface KeyPair {
  crt: string;
  key: string;
}
let ca: KeyPair;
let controlDir: string;
let user: KeyPair;
let node: KeyPair & { uuid: string };
let otherNode: KeyPair & { uuid: string };
let notAUser: KeyPair;
let foreignUser: KeyPair;
let foreignCa: KeyPair;

const services: ControlService[] = [];
let logs: string[] = [];

beforeAll(async () => {
  const [certs, foreign] = await Promise.all([
    makeFlockerCerts({ dir: join(dir, 'certs'), controlHost: '127.0.0.1', nodes: ['node1', 'node2'], user: 'kubernetes', keyBits: 2048 }),
    // Another cluster CA, for the foreign user certificate.
    makeFlockerCerts({ dir: join(dir, 'foreign'), controlHost: '127.0.0.1', nodes: [], user: 'kubernetes', keyBits: 2048 }),
  ]);
  ca = certs.ca;
  // cluster.crt, control-service.crt and control-service.key are in the set's folder.
  controlDir = certs.dir;
  user = certs.user;
  node = certs.nodes[0] as KeyPair & { uuid: string };
  otherNode = certs.nodes[1] as KeyPair & { uuid: string };
  foreignCa = foreign.ca;
  foreignUser = foreign.user;
  // A client certificate of our CA whose CN is neither user- nor node-.
  notAUser = { crt: join(dir, 'notauser.crt'), key: join(dir, 'notauser.key') };
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', notAUser.key, '-CA', ca.crt, '-CAkey', ca.key, '-subj', '/CN=notauser',
      '-days', '1', '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=clientAuth', '-out', notAUser.crt], // prettier-ignore
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, OPENSSL_CONF: '/dev/null' } },
  );
  if (made.status !== 0) throw new Error(`openssl could not make notauser.crt: ${made.stderr}`);
}, 60_000);

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  logs = [];
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(options: { dataPath?: string; stateTtlMs?: number } = {}): Promise<ControlService> {
  const service = await startControlService({
    apiPort: 0,
    agentPort: 0,
    host: '127.0.0.1',
    dataPath: options.dataPath ?? mkdtempSync(join(dir, 'data-')),
    certificatesDirectory: controlDir,
    version: '1.14.0',
    ...(options.stateTtlMs ? { stateTtlMs: options.stateTtlMs } : {}),
    log: (line) => logs.push(line),
  });
  services.push(service);
  return service;
}

const clientFor = (service: ControlService, pair: KeyPair = user, caFile = ca.crt) =>
  new FlockerClient({ host: '127.0.0.1', port: service.apiPort, caFile, certFile: pair.crt, keyFile: pair.key });

/** What a request that is not JSON gets (the client always sends JSON). */
function raw(port: number, method: string, path: string, body: string, contentType: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: readFileSync(ca.crt),
        cert: readFileSync(user.crt),
        key: readFileSync(user.key),
        agent: false,
        headers: { 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const apiError = async (promise: Promise<unknown>): Promise<FlockerApiError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FlockerApiError);
  return error as FlockerApiError;
};

const refused = async (promise: Promise<unknown>): Promise<Error & { code?: string }> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  expect(error).not.toBeInstanceOf(FlockerApiError);
  return error as Error & { code?: string };
};

const credentials = (pair: KeyPair & { uuid: string }): Omit<NodeCredentials, 'clusterId'> => ({
  uuid: pair.uuid,
  ca: readFileSync(ca.crt),
  cert: readFileSync(pair.crt),
  key: readFileSync(pair.key),
});

const PRIMARY = '8c5c5c2e-6b1f-4a53-9d2a-1a2b3c4d5e6f';
const OTHER = '0f0e0d0c-0b0a-4909-8807-060504030201';

describe('the REST API', () => {
  test('GET /v1/version; the version comes from $FLOCKER_VERSION, else the image file, else 1.14.0', async () => {
    const service = await start();
    expect(await clientFor(service).version()).toBe('1.14.0');
    const saved = process.env.FLOCKER_VERSION;
    process.env.FLOCKER_VERSION = '1.13.1';
    try {
      expect(flockerVersion()).toBe('1.13.1');
    } finally {
      if (saved === undefined) delete process.env.FLOCKER_VERSION;
      else process.env.FLOCKER_VERSION = saved;
    }
  });

  test('create: 201 with the defaults, a generated or lower-cased id; a duplicate id is a 409', async () => {
    const client = clientFor(await start());
    const created = await client.request<Record<string, unknown>>('POST', '/configuration/datasets', { primary: PRIMARY });
    expect(created.status).toBe(201);
    expect(created.headers['content-type']).toBe('application/json');
    expect(created.body).toEqual({
      dataset_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      primary: PRIMARY,
      metadata: {},
      deleted: false,
      maximum_size: 107374182400,
    });
    const id = 'ABCDEF01-2345-4678-9ABC-DEF012345678';
    const second = await client.createDataset({ primary: PRIMARY, dataset_id: id, maximum_size: 67108864, metadata: { name: 'db' } });
    expect(second).toEqual({
      dataset_id: id.toLowerCase(),
      primary: PRIMARY,
      metadata: { name: 'db' },
      deleted: false,
      maximum_size: 67108864,
    });
    const unlimited = await client.createDataset({ primary: PRIMARY, maximum_size: null });
    expect(unlimited).not.toHaveProperty('maximum_size');
    const duplicate = await apiError(client.createDataset({ primary: OTHER, dataset_id: id }));
    expect([duplicate.status, duplicate.body]).toEqual([409, { description: 'The provided dataset_id is already in use.' }]);
    expect((await client.listDatasets()).map((d) => d.dataset_id)).toEqual([
      created.body.dataset_id,
      id.toLowerCase(),
      unlimited.dataset_id,
    ]);
  });

  test('a body that does not match the schema is a 400 naming every error; so is one that is not JSON', async () => {
    const service = await start();
    const client = clientFor(service);
    const schemaError = async (body: unknown) => {
      const error = await apiError(client.request('POST', '/configuration/datasets', body));
      expect(error.status).toBe(400);
      expect(error.description).toBe("The provided JSON doesn't match the required schema.");
      return (error.body as { errors: string[] }).errors;
    };
    expect(await schemaError({ primary: PRIMARY, maximum_size: 1000 })).toEqual([
      '1000 is less than the minimum of 67108864',
      '1000 is not a multiple of 1024',
    ]);
    expect(await schemaError({ primary: PRIMARY, maximum_size: 67108864 + 1 })).toEqual(['67108865 is not a multiple of 1024']);
    expect(await schemaError({ primary: PRIMARY, maximum_size: '1G' })).toEqual(["'1G' is not of type 'integer', 'null'"]);
    expect(await schemaError({ primary: PRIMARY, size: 1 })).toEqual(["Additional properties are not allowed ('size' was unexpected)"]);
    expect(await schemaError({ metadata: {} })).toEqual(["'primary' is a required property"]);
    expect(await schemaError({ primary: 'node1' })).toEqual([expect.stringMatching(/^'node1' does not match '\^\[a-fA-F0-9\]\{8\}/)]);
    const metadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    expect(await schemaError({ primary: PRIMARY, metadata })).toEqual([expect.stringMatching(/^\{'k0': 'v', .* has too many properties$/)]);
    expect(await schemaError({ primary: PRIMARY, metadata: { k: 'x'.repeat(257) } })).toEqual([expect.stringMatching(/is too long$/)]);
    expect(await raw(service.apiPort, 'POST', '/v1/configuration/datasets', '{"primary": ', 'application/json')).toEqual({
      status: 400,
      body: { description: 'The request body could not be decoded according to the value of the\nContent-Type header.' },
    });
    expect(await raw(service.apiPort, 'POST', '/v1/configuration/datasets', `{"primary": "${PRIMARY}"}`, 'text/plain')).toEqual({
      status: 400,
      body: { description: 'The request Content-Type was not a supported type (application/json).' },
    });
    expect(await client.listDatasets()).toEqual([]);
  });

  test('move: 200 with the new primary; 404 for an unknown dataset, 405 for a deleted one', async () => {
    const client = clientFor(await start());
    const { dataset_id: id } = await client.createDataset({ primary: PRIMARY });
    const moved = await client.request<Record<string, unknown>>('POST', `/configuration/datasets/${id}`, { primary: OTHER });
    expect([moved.status, moved.body.primary]).toEqual([200, OTHER]);
    expect((await client.listDatasets())[0]?.primary).toBe(OTHER);
    const unknown = await apiError(client.moveDataset('00000000-0000-4000-8000-000000000000', PRIMARY));
    expect([unknown.status, unknown.body]).toEqual([404, { description: 'Dataset not found.' }]);
    await client.deleteDataset(id);
    const deleted = await apiError(client.moveDataset(id, PRIMARY));
    expect([deleted.status, deleted.body]).toEqual([405, { description: 'The dataset has been deleted.' }]);
  });

  test('delete: 200 with deleted: true, again 200; the dataset stays listed; unknown: 404', async () => {
    const client = clientFor(await start());
    const { dataset_id: id } = await client.createDataset({ primary: PRIMARY, maximum_size: 67108864 });
    const first = await client.request<Record<string, unknown>>('DELETE', `/configuration/datasets/${id}`);
    expect([first.status, first.body]).toEqual([
      200,
      { dataset_id: id, primary: PRIMARY, metadata: {}, deleted: true, maximum_size: 67108864 },
    ]);
    const again = await client.request('DELETE', `/configuration/datasets/${id}`);
    expect([again.status, again.body]).toEqual([200, first.body]);
    expect(await client.listDatasets()).toEqual([first.body]);
    const unknown = await apiError(client.deleteDataset('00000000-0000-4000-8000-000000000000'));
    expect([unknown.status, unknown.description]).toEqual([404, 'Dataset not found.']);
  });

  test('X-Configuration-Tag changes with the configuration; X-If-Configuration-Matches refuses a stale one with 412', async () => {
    const client = clientFor(await start());
    const { tag: empty } = await client.listDatasetsWithTag();
    expect(empty).toMatch(/^[0-9a-f]{32}$/);
    expect((await client.listDatasetsWithTag()).tag).toBe(empty);
    const { dataset_id: id } = await client.createDataset({ primary: PRIMARY }, { ifConfigurationMatches: empty });
    const { tag: one } = await client.listDatasetsWithTag();
    expect(one).not.toBe(empty);
    const stale = await apiError(client.createDataset({ primary: PRIMARY }, { ifConfigurationMatches: empty }));
    expect([stale.status, stale.body]).toEqual([412, { description: `Tag doesn't match. Required: ${empty}, current: ${one}` }]);
    expect((await apiError(client.moveDataset(id, OTHER, { ifConfigurationMatches: empty }))).status).toBe(412);
    expect((await apiError(client.deleteDataset(id, { ifConfigurationMatches: 'nonsense' }))).status).toBe(412);
    expect((await client.listDatasets()).length).toBe(1);
    await client.moveDataset(id, OTHER, { ifConfigurationMatches: one });
    const { tag: two } = await client.listDatasetsWithTag();
    expect(two).not.toBe(one);
    expect((await client.deleteDataset(id, { ifConfigurationMatches: two })).deleted).toBe(true);
  });

  test('leases: 201 acquired, 200 renewed, 409 held by another node, 404 released twice; expired ones vanish', async () => {
    const client = clientFor(await start());
    const id = '11111111-2222-4333-8444-555555555555';
    const acquired = await client.request<Record<string, unknown>>('POST', '/configuration/leases', {
      dataset_id: id,
      node_uuid: PRIMARY,
      expires: null,
    });
    expect([acquired.status, acquired.body]).toEqual([201, { dataset_id: id, node_uuid: PRIMARY, expires: null }]);
    const renewed = await client.request<{ expires: number }>('POST', '/configuration/leases', {
      dataset_id: id,
      node_uuid: PRIMARY,
      expires: 60,
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body.expires).toBeCloseTo(60, 0);
    const held = await apiError(client.acquireLease(id, OTHER, null));
    expect([held.status, held.body]).toEqual([409, { description: 'Lease already held.' }]);
    const [listed] = await client.leases();
    expect(listed?.expires).toBeGreaterThan(55);
    expect(listed?.expires).toBeLessThanOrEqual(60);
    expect((await client.releaseLease(id)).node_uuid).toBe(PRIMARY);
    const gone = await apiError(client.releaseLease(id));
    expect([gone.status, gone.body]).toEqual([404, { description: 'Lease not found.' }]);
    const missing = await apiError(client.request('POST', '/configuration/leases', { dataset_id: id, node_uuid: OTHER }));
    expect((missing.body as { errors: string[] }).errors).toEqual(["'expires' is a required property"]);
    await client.acquireLease(id, OTHER, 0.3);
    expect(await client.leases()).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await client.leases()).toEqual([]);
    // Now free: another node gets it.
    expect((await client.request('POST', '/configuration/leases', { dataset_id: id, node_uuid: PRIMARY, expires: null })).status).toBe(201);
  });

  test('an unknown path is a JSON 404, a wrong method a JSON 405', async () => {
    const client = clientFor(await start());
    const unknown = await apiError(client.request('GET', '/nothing/here'));
    expect(unknown.status).toBe(404);
    expect(unknown.description).toMatch(/nothing\/here/);
    expect((await apiError(client.request('DELETE', '/configuration/datasets'))).status).toBe(405);
  });
});

describe('mutual TLS', () => {
  test('a client without a certificate is refused in the handshake', async () => {
    const service = await start();
    const error = await refused(
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: service.apiPort, path: '/v1/version', ca: readFileSync(ca.crt), agent: false },
          resolve,
        );
        req.on('error', reject);
        req.end();
      }),
    );
    expect(error.code ?? error.message).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/i);
    expect(logs.join('\n')).toMatch(/refused .* in the TLS handshake/);
  });

  test('a user certificate of another cluster CA is refused; so is our CA seen from the client side', async () => {
    const service = await start();
    await refused(clientFor(service, foreignUser).version());
    // The client checks the control service too: with the other CA as trust root, ours is not trusted.
    const error = await refused(clientFor(service, foreignUser, foreignCa.crt).version());
    expect(error.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
  });

  test('a node- certificate or a CN without user- is refused on the API port; user- certificates on the agent port', async () => {
    const service = await start();
    await refused(clientFor(service, node).version());
    await refused(clientFor(service, notAUser).version());
    expect(logs.join('\n')).toMatch(/REST API: refused .*certificate CN "node-.*" does not start with "user-"/);
    expect(logs.join('\n')).toMatch(/certificate CN "notauser"/);
    const asUser = { uuid: node.uuid, ca: readFileSync(ca.crt), cert: readFileSync(user.crt), key: readFileSync(user.key) };
    await refused(
      reportState({ host: '127.0.0.1', port: service.agentPort }, asUser, {
        node_uuid: node.uuid,
        host: '127.0.0.1',
        era: nodeEra(),
        datasets: [],
      }),
    );
    expect(logs.join('\n')).toMatch(/agent port: refused .*"user-kubernetes"/);
  });

  test('the control certificate must name the host the client asked for', async () => {
    const service = await start();
    const error = await refused(
      new FlockerClient({ host: 'localhost', port: service.apiPort, caFile: ca.crt, certFile: user.crt, keyFile: user.key }).version(),
    );
    expect(error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('persistence', () => {
  test('datasets and leases survive a restart, from current_configuration.json', async () => {
    const dataPath = mkdtempSync(join(dir, 'data-'));
    const first = await start({ dataPath });
    const client = clientFor(first);
    const a = await client.createDataset({ primary: PRIMARY, metadata: { name: 'a' } });
    const b = await client.createDataset({ primary: PRIMARY, maximum_size: 67108864 });
    await client.deleteDataset(b.dataset_id);
    await client.acquireLease(a.dataset_id, PRIMARY, null);
    const before = await client.listDatasetsWithTag();
    await first.close();
    expect(existsSync(join(dataPath, 'current_configuration.json'))).toBe(true);
    const second = await start({ dataPath });
    const again = clientFor(second);
    expect(await again.listDatasetsWithTag()).toEqual(before);
    expect(await again.leases()).toEqual([{ dataset_id: a.dataset_id, node_uuid: PRIMARY, expires: null }]);
  });

  test('a configuration file that cannot be read stops the start instead of being replaced', async () => {
    const dataPath = mkdtempSync(join(dir, 'data-'));
    writeFileSync(join(dataPath, 'current_configuration.json'), '{ broken');
    await expect(start({ dataPath })).rejects.toThrow(/cannot read the saved configuration/);
    expect(readFileSync(join(dataPath, 'current_configuration.json'), 'utf8')).toBe('{ broken');
  });
});

describe('the agents port', () => {
  test("an agent's reports and a client's calls each keep one TLS connection (a 4096-bit handshake per round is dear under emulation)", async () => {
    const service = await start();
    const handshakes = { agent: 0, api: 0 };
    const counting = tls.connect;
    tls.connect = ((...args: Parameters<typeof tls.connect>) => {
      const port = Number((args[0] as tls.ConnectionOptions).port);
      if (port === service.agentPort) handshakes.agent++;
      if (port === service.apiPort) handshakes.api++;
      return counting(...args);
    }) as typeof tls.connect;
    try {
      const report = { node_uuid: node.uuid, host: '127.0.0.1', era: nodeEra(), datasets: [] };
      for (let round = 0; round < 3; round++) {
        await reportState({ host: '127.0.0.1', port: service.agentPort }, credentials(node), report);
        await new Promise((r) => setTimeout(r, 200));
      }
      const client = clientFor(service);
      for (let call = 0; call < 3; call++) await client.nodes();
    } finally {
      tls.connect = counting;
    }
    expect(handshakes).toEqual({ agent: 1, api: 1 });
  });

  test("a node's report shows in /v1/state/datasets and /v1/state/nodes; the answer is the configuration", async () => {
    const service = await start();
    const client = clientFor(service);
    const attached = await client.createDataset({ primary: node.uuid, maximum_size: 67108864 });
    await client.acquireLease(attached.dataset_id, node.uuid, null);
    const detachedId = '22222222-3333-4444-8555-666666666666';
    const era = nodeEra();
    const answer = await reportState({ host: '127.0.0.1', port: service.agentPort }, credentials(node), {
      node_uuid: node.uuid,
      host: '127.0.0.1',
      era,
      datasets: [
        { dataset_id: attached.dataset_id, maximum_size: 67108864, path: `/flocker/${attached.dataset_id}` },
        { dataset_id: detachedId, maximum_size: 67108864 },
      ],
    });
    expect(answer.datasets).toEqual([{ ...attached, origin: node.uuid }]);
    expect(answer.leases).toEqual([{ dataset_id: attached.dataset_id, node_uuid: node.uuid, expires: null }]);
    expect(await client.datasetStates()).toEqual([
      { dataset_id: attached.dataset_id, primary: node.uuid, maximum_size: 67108864, path: `/flocker/${attached.dataset_id}` },
      { dataset_id: detachedId, maximum_size: 67108864 },
    ]);
    expect(await client.nodes()).toEqual([{ host: '127.0.0.1', uuid: node.uuid }]);
    expect(await client.nodeByEra(era)).toBe(node.uuid);
    const noEra = await apiError(client.nodeByEra('00000000-0000-4000-8000-000000000000'));
    expect([noEra.status, noEra.body]).toEqual([404, { description: 'No node found with given era.' }]);
    // The origin stays the node it was created for when the dataset moves.
    await client.moveDataset(attached.dataset_id, otherNode.uuid);
    const later = await reportState({ host: '127.0.0.1', port: service.agentPort }, credentials(otherNode), {
      node_uuid: otherNode.uuid,
      host: '127.0.0.2',
      era: '5b2b1d2c-0000-4000-8000-000000000000',
      datasets: [],
    });
    expect(later.datasets[0]).toMatchObject({ primary: otherNode.uuid, origin: node.uuid });
    expect(await client.nodes()).toHaveLength(2);
  });

  test('a report for another node than the certificate names is a 403', async () => {
    const service = await start();
    await expect(
      reportState({ host: '127.0.0.1', port: service.agentPort }, credentials(node), {
        node_uuid: otherNode.uuid,
        host: '127.0.0.1',
        era: nodeEra(),
        datasets: [],
      }),
    ).rejects.toThrow(/answered 403: node_uuid .* does not match the client certificate/);
    expect(await clientFor(service).nodes()).toEqual([]);
  });

  test("a silent node's state is wiped after the expiry: its datasets and the node itself drop out, its era stays", async () => {
    const service = await start({ stateTtlMs: 300 });
    const client = clientFor(service);
    const id = '33333333-4444-4555-8666-777777777777';
    await reportState({ host: '127.0.0.1', port: service.agentPort }, credentials(node), {
      node_uuid: node.uuid,
      host: '127.0.0.1',
      era: nodeEra(),
      datasets: [{ dataset_id: id, maximum_size: 67108864, path: `/flocker/${id}` }],
    });
    expect(await client.datasetStates()).toHaveLength(1);
    expect(await client.nodes()).toEqual([{ host: '127.0.0.1', uuid: node.uuid }]);
    await new Promise((r) => setTimeout(r, 600));
    expect(await client.datasetStates()).toEqual([]);
    expect(await client.nodes()).toEqual([]);
    expect(await client.nodeByEra(nodeEra())).toBe(node.uuid);
    await new Promise((r) => setTimeout(r, 1200));
    expect(logs.join('\n')).toMatch(new RegExp(`node ${node.uuid} .*nothing from its agent for 0 s; its state is wiped`));
  });
});

describe('the bundled flocker-control program', () => {
  let program: string;
  beforeAll(async () => {
    // Compiled exactly as the bundle compiles it.
    const compiled = (await bundlePrograms()).find((p) => p.name === 'flocker-control');
    program = join(dir, 'flocker-control.mjs');
    writeFileSync(program, compiled?.text ?? '');
  });

  const runProgram = (args: string[], until?: RegExp): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--no-warnings', program, ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, FLOCKER_VERSION: '1.14.0' },
      });
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (until?.test(stderr)) child.kill('SIGTERM');
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });

  test('an unknown flag: message, usage, exit 2; missing certificates: exit 1', async () => {
    const bad = await runProgram(['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown flag: --bogus[\s\S]*Usage of flocker-control:[\s\S]*--agent-port/);
    const empty = mkdtempSync(join(dir, 'empty-'));
    const missing = await runProgram(['--certificates-directory', empty, '--data-path', join(empty, 'data')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing certificate files in .*: cluster\.crt, control-service\.crt, control-service\.key/);
  });

  test('serves the API with the flags Flocker took', async () => {
    const free = (): Promise<number> =>
      new Promise((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          server.close(() => resolve(port));
        });
      });
    const [apiPort, agentPort] = [await free(), await free()];
    const dataPath = join(dir, 'program-data');
    mkdirSync(dataPath);
    const child = spawn(
      process.execPath,
      [
        '--no-warnings',
        program,
        `--port=tcp:${apiPort}:interface=127.0.0.1`,
        '--agent-port',
        `tcp:${agentPort}`,
        '--data-path',
        dataPath,
        '--certificates-directory',
        controlDir,
        '--journald',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLOCKER_VERSION: '1.14.0' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const deadline = Date.now() + 15_000;
      while (!/control service: REST API on port/.test(stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`flocker-control did not start:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const client = new FlockerClient({ host: '127.0.0.1', port: apiPort, caFile: ca.crt, certFile: user.crt, keyFile: user.key });
      expect(await client.version()).toBe('1.14.0');
      await client.createDataset({ primary: PRIMARY });
      expect(JSON.parse(readFileSync(join(dataPath, 'current_configuration.json'), 'utf8')).datasets).toHaveLength(1);
    } finally {
      const closed = new Promise((r) => child.on('close', r));
      child.kill('SIGTERM');
      await closed;
    }
    expect(child.exitCode).toBe(0);
  });
});
