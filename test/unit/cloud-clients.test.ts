import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hotplug } from '../../lab/cloud/hotplug.js';
import type { PowerState } from '../../lab/cloud/power.js';
import { serveCloud, type RunningCloud } from '../../lab/cloud/server.js';
import { newIdentity, writeIdentity, writeServers, type CloudIdentity, type Server } from '../../lab/cloud/state.js';

/**
 * The emulated OpenStack as real clients nobody here wrote see it: Debian's python3-openstackclient,
 * -cinderclient and -novaclient, run as processes against the cloud on 127.0.0.1, and plain HTTP
 * for the v1/v2 APIs that Flocker 1.13/1.14's clients spoke. The hypervisor is a recorder here
 * (test/unit/cloud-hotplug.test.ts plugs into a real QEMU; the e2e cloud test into a real guest).
 */
const run = promisify(execFile);

const servers: Server[] = [
  {
    id: '6f1c2a9e-0b1d-4c55-9b1e-3d1f00000011',
    name: 'master',
    address: '10.77.0.11',
    mac: '52:54:00:12:34:11',
    vcpus: 2,
    memoryMiB: 1536,
  },
  {
    id: '6f1c2a9e-0b1d-4c55-9b1e-3d1f00000012',
    name: 'worker',
    address: '10.77.0.12',
    mac: '52:54:00:12:34:12',
    vcpus: 2,
    memoryMiB: 1024,
  },
];

const plugged: string[] = [];
let failNextAttach: Error | undefined;
/** While set, an attach waits for it: the test sees the volume `attaching`. */
let holdAttach: Promise<void> | undefined;
const recorder: Hotplug = {
  async attach(server, volume) {
    await sleep(200);
    await holdAttach;
    if (failNextAttach) {
      const error = failNextAttach;
      failNextAttach = undefined;
      throw error;
    }
    plugged.push(`attach ${server.name} ${volume.id} ${volume.device} ${volume.file}`);
  },
  async detach(server, volume) {
    await sleep(200);
    plugged.push(`detach ${server.name} ${volume.id} ${volume.device}`);
  },
};

/** Each server's power as the hypervisor would say (test/unit/cloud-hotplug.test.ts asks a real QEMU). */
const powered = new Map<string, PowerState>();
const power = async (server: Server) => powered.get(server.name) ?? 'running';

let dir: string;
let identity: CloudIdentity;
let cloud: RunningCloud;
const logLines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lab-cloud-'));
  identity = newIdentity();
  writeIdentity(dir, identity);
  writeServers(dir, servers);
  cloud = await serveCloud(dir, { hotplug: recorder, power, log: (line) => logLines.push(line) });
});

afterAll(async () => {
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The openrc a user of the cloud would source: Keystone v3 unless told otherwise. */
const openrc = (over: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: dir,
  OS_AUTH_URL: `http://127.0.0.1:${cloud.ports.identity}/v3`,
  OS_IDENTITY_API_VERSION: '3',
  OS_USERNAME: identity.userName,
  OS_PASSWORD: identity.password,
  OS_PROJECT_NAME: identity.projectName,
  OS_USER_DOMAIN_NAME: 'Default',
  OS_PROJECT_DOMAIN_NAME: 'Default',
  OS_REGION_NAME: 'RegionOne',
  ...over,
});

async function client(argv: string[], over: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(argv[0] as string, argv.slice(1), { env: openrc(over), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const openstack = async (...args: string[]) => {
  const result = await client(['openstack', ...args, '-f', 'json']);
  if (result.code !== 0) throw new Error(`openstack ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown> & Record<string, unknown>[];
};

async function volumeStatus(name: string, wanted: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 40; i++) {
    const volume = await openstack('volume', 'show', name);
    if (volume.status === wanted) return volume;
    await sleep(250);
  }
  throw new Error(`volume ${name} never became ${wanted}`);
}

/** Plain HTTP as a 2016 client spoke it: a v2.0 token, then the catalog's URLs. */
async function v2Session(): Promise<{ token: string; url: (type: string) => string }> {
  const response = await fetch(`http://127.0.0.1:${cloud.ports.identity}/v2.0/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: { tenantName: identity.projectName, passwordCredentials: { username: identity.userName, password: identity.password } },
    }),
  });
  expect(response.status).toBe(200);
  const { access } = (await response.json()) as {
    access: { token: { id: string }; serviceCatalog: { type: string; endpoints: { region: string; publicURL: string }[] }[] };
  };
  return {
    token: access.token.id,
    url: (type) => access.serviceCatalog.find((s) => s.type === type)?.endpoints.find((e) => e.region === 'RegionOne')?.publicURL ?? '',
  };
}

describe("the emulated OpenStack through Debian's clients", () => {
  test("Keystone v3 and v2.0 issue tokens for the run's user; a wrong password is a 401", async () => {
    const v3 = await openstack('token', 'issue');
    expect(v3.project_id).toBe(identity.projectId);
    expect(v3.user_id).toBe(identity.userId);
    expect(Date.parse(String(v3.expires)) - Date.now()).toBeGreaterThan(3500_000);
    const v2 = await client(['openstack', 'token', 'issue', '-f', 'json'], {
      OS_AUTH_URL: `http://127.0.0.1:${cloud.ports.identity}/v2.0`,
      OS_IDENTITY_API_VERSION: '2.0',
    });
    expect(v2.code, v2.stderr).toBe(0);
    expect(JSON.parse(v2.stdout).project_id).toBe(identity.projectId);
    const wrong = await client(['openstack', 'token', 'issue'], { OS_PASSWORD: 'not-the-password' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/The request you have made requires authentication\. \(HTTP 401\)/);
  });

  test('the catalog has volume, volumev2, volumev3 and compute in RegionOne; another region has none', async () => {
    const catalog = (await openstack('catalog', 'list')) as unknown as { Type: string; Endpoints: string }[];
    const types = catalog.map((entry) => entry.Type).sort();
    expect(types).toEqual(expect.arrayContaining(['compute', 'identity', 'volume', 'volumev2', 'volumev3']));
    const volumev2 = JSON.stringify(catalog.find((entry) => entry.Type === 'volumev2')?.Endpoints);
    expect(volumev2).toContain('RegionOne');
    expect(volumev2).toContain(`127.0.0.1:${cloud.ports.volume}/v2/${identity.projectId}`);
    const elsewhere = await client(['openstack', 'volume', 'list'], { OS_REGION_NAME: 'RegionTwo' });
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/endpoint for volumev3 service in RegionTwo region not found/);
  });

  test('a volume is created (creating, then available: a sparse file of its size), shown by name, listed, and deleted with its file', async () => {
    const created = await openstack('volume', 'create', '--size', '2', '--property', 'flocker=yes', 'made-by-test');
    expect(created.status).toBe('creating');
    expect(created.properties).toEqual({ flocker: 'yes' });
    const id = String(created.id);
    const shown = await volumeStatus('made-by-test', 'available');
    expect(shown.size).toBe(2);
    const file = join(dir, 'volumes', `${id}.raw`);
    expect(statSync(file).size).toBe(2 * 1024 ** 3);
    expect(statSync(file).blocks).toBe(0);
    const listed = (await openstack('volume', 'list')) as unknown as { ID: string; Status: string }[];
    expect(listed).toContainEqual(expect.objectContaining({ ID: id, Status: 'available' }));
    const cinder = await client(['cinder', 'list']);
    expect(cinder.code, cinder.stderr).toBe(0);
    expect(cinder.stdout).toMatch(new RegExp(`${id}\\s*\\|\\s*available\\s*\\|\\s*made-by-test\\s*\\|\\s*2`));
    const deleted = await client(['openstack', 'volume', 'delete', id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    for (let i = 0; i < 20 && existsSync(file); i++) await sleep(100);
    expect(existsSync(file)).toBe(false);
    const gone = await client(['openstack', 'volume', 'show', id]);
    expect(gone.stderr).toMatch(/No volume with a name or ID of '.*' exists/);
  });

  test("Nova lists the run's nodes with their cluster addresses as servers", async () => {
    const list = (await openstack('server', 'list')) as unknown as { ID: string; Name: string; Status: string; Networks: unknown }[];
    expect(list.map((s) => s.Name).sort()).toEqual(['master', 'worker']);
    expect(JSON.stringify(list.find((s) => s.Name === 'worker')?.Networks)).toContain('10.77.0.12');
    const nova = await client(['nova', 'list']);
    expect(nova.stdout).toMatch(/master\s*\|\s*ACTIVE.*lab-cluster=10\.77\.0\.11/);
  });

  test("a server's status follows its VM: SHUTOFF powered off (and left out of --status ACTIVE, which Flocker's live nodes were), ACTIVE but Paused when paused under Nova", async () => {
    try {
      powered.set('worker', 'shutdown');
      const off = await openstack('server', 'show', 'worker');
      expect(off).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:vm_state': 'stopped', 'OS-EXT-STS:power_state': 4 });
      const active = (await openstack('server', 'list', '--status', 'ACTIVE')) as unknown as { Name: string }[];
      expect(active.map((s) => s.Name)).toEqual(['master']);
      const shutoff = (await openstack('server', 'list', '--status', 'SHUTOFF')) as unknown as { Name: string }[];
      expect(shutoff.map((s) => s.Name)).toEqual(['worker']);
      expect((await client(['nova', 'list'])).stdout).toMatch(/worker\s*\|\s*SHUTOFF\s*\|\s*-\s*\|\s*Shutdown/);
      powered.set('worker', 'paused');
      const paused = await openstack('server', 'show', 'worker');
      expect(paused).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:vm_state': 'active', 'OS-EXT-STS:power_state': 3 });
    } finally {
      powered.clear();
    }
    expect((await openstack('server', 'show', 'worker')).status).toBe('ACTIVE');
  });

  test('server add volume hot-plugs it (attaching, then in-use on /dev/vdb); an attached volume cannot be deleted; remove volume unplugs it', async () => {
    const volume = await openstack('volume', 'create', '--size', '1', 'moving');
    await volumeStatus('moving', 'available');
    let release = () => {};
    holdAttach = new Promise((resolve) => (release = resolve));
    const added = await client(['openstack', 'server', 'add', 'volume', 'worker', 'moving']);
    expect(added.code, added.stderr).toBe(0);
    expect((await openstack('volume', 'show', 'moving')).status).toBe('attaching');
    release();
    holdAttach = undefined;
    const inUse = await volumeStatus('moving', 'in-use');
    expect(JSON.stringify(inUse.attachments)).toContain(servers[1]?.id);
    expect(plugged).toContain(`attach worker ${volume.id} /dev/vdb ${join(dir, 'volumes', `${volume.id}.raw`)}`);
    const cinder = await client(['cinder', 'list']);
    expect(cinder.stdout).toMatch(new RegExp(`${volume.id}\\s*\\|\\s*in-use.*${servers[1]?.id}`));

    const refused = await client(['openstack', 'volume', 'delete', 'moving']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Volume status must be available or error/);

    const again = await client(['openstack', 'server', 'add', 'volume', 'master', 'moving']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/status must be 'available'\. Currently in 'in-use'/);

    const removed = await client(['openstack', 'server', 'remove', 'volume', 'worker', 'moving']);
    expect(removed.code, removed.stderr).toBe(0);
    await volumeStatus('moving', 'available');
    expect(plugged).toContain(`detach worker ${volume.id} /dev/vdb`);
    expect((await client(['openstack', 'volume', 'delete', 'moving'])).code).toBe(0);
  });

  test("an attach the hypervisor refuses puts the volume back to available, and the cloud's log says why", async () => {
    await openstack('volume', 'create', '--size', '1', 'refused');
    await volumeStatus('refused', 'available');
    failNextAttach = new Error("Bus 'pcie.0' does not support hotplugging");
    expect((await client(['openstack', 'server', 'add', 'volume', 'master', 'refused'])).code).toBe(0);
    await sleep(500);
    const volume = await volumeStatus('refused', 'available');
    expect(volume.attachments).toEqual([]);
    expect(logLines.join('\n')).toMatch(/attaching volume .* to master failed: Bus 'pcie\.0' does not support hotplugging/);
    await client(['openstack', 'volume', 'delete', 'refused']);
  });

  test('Cinder v2 and v1 as Flocker 1.13/1.14 spoke them: name vs display_name, metadata, itemNotFound', async () => {
    const session = await v2Session();
    const headers = { 'x-auth-token': session.token, 'content-type': 'application/json' };
    const v2 = session.url('volumev2');
    const v1 = session.url('volume');
    expect(v2).toBe(`http://127.0.0.1:${cloud.ports.volume}/v2/${identity.projectId}`);
    const created = await fetch(`${v2}/volumes`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        volume: { size: 1, name: 'flocker-dataset', metadata: { 'flocker-cluster-id': 'c1', 'flocker-dataset-id': 'd1' } },
      }),
    });
    expect(created.status).toBe(202);
    const { volume } = (await created.json()) as { volume: { id: string; name: string; metadata: Record<string, string> } };
    expect(volume.metadata['flocker-dataset-id']).toBe('d1');
    const detailV1 = (await (await fetch(`${v1}/volumes/detail`, { headers })).json()) as { volumes: Record<string, unknown>[] };
    const asV1 = detailV1.volumes.find((v) => v.id === volume.id);
    expect(asV1?.display_name).toBe('flocker-dataset');
    expect(asV1).not.toHaveProperty('name');
    const limited = (await (await fetch(`${v2}/volumes?limit=1`, { headers })).json()) as { volumes: { id: string; name: string }[] };
    expect(limited.volumes).toHaveLength(1);
    const missing = await fetch(`${v2}/volumes/00000000-0000-0000-0000-000000000000`, { headers });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      itemNotFound: { message: 'Volume 00000000-0000-0000-0000-000000000000 could not be found.', code: 404 },
    });
    const noToken = await fetch(`${v2}/volumes`);
    expect(noToken.status).toBe(401);
    const bad = await fetch(`${v2}/volumes`, { method: 'POST', headers, body: JSON.stringify({ volume: { size: 0 } }) });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('must be an integer and greater than 0');
    for (
      let i = 0;
      i < 20 &&
      ((await (await fetch(`${v2}/volumes/${volume.id}`, { headers })).json()) as { volume: { status: string } }).volume.status !==
        'available';
      i++
    )
      await sleep(100);
    expect((await fetch(`${v2}/volumes/${volume.id}`, { method: 'DELETE', headers })).status).toBe(202);
  });

  test('a token past its expiry is refused with a 401', async () => {
    const shortDir = mkdtempSync(join(tmpdir(), 'lab-cloud-short-'));
    const short = { ...newIdentity(), tokenSeconds: 1 };
    writeIdentity(shortDir, short);
    const shortCloud = await serveCloud(shortDir, { hotplug: recorder });
    try {
      const issued = await fetch(`http://127.0.0.1:${shortCloud.ports.identity}/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: short.userName, domain: { name: 'Default' }, password: short.password } },
            },
            scope: { project: { name: short.projectName, domain: { name: 'Default' } } },
          },
        }),
      });
      expect(issued.status).toBe(201);
      const token = issued.headers.get('x-subject-token') ?? '';
      const url = `http://127.0.0.1:${shortCloud.ports.volume}/v3/${short.projectId}/volumes`;
      expect((await fetch(url, { headers: { 'x-auth-token': token } })).status).toBe(200);
      await sleep(1200);
      expect((await fetch(url, { headers: { 'x-auth-token': token } })).status).toBe(401);
    } finally {
      await shortCloud.close();
      rmSync(shortDir, { recursive: true, force: true });
    }
  });

  test("the volumes are written through to the cloud's folder, and a cloud started again on it finds them", async () => {
    await openstack('volume', 'create', '--size', '1', 'kept');
    await volumeStatus('kept', 'available');
    const saved = JSON.parse(readFileSync(join(dir, 'volumes.json'), 'utf8')) as { name: string; status: string }[];
    expect(saved).toContainEqual(expect.objectContaining({ name: 'kept', status: 'available' }));
    await cloud.close();
    cloud = await serveCloud(dir, { hotplug: recorder, log: (line) => logLines.push(line) });
    expect((await openstack('volume', 'show', 'kept')).status).toBe('available');
    cloud.forgetVolumes();
    expect((await client(['openstack', 'volume', 'show', 'kept'])).code).not.toBe(0);
  });
});
