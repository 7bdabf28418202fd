import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hotplug } from '../../lab/cloud/hotplug.js';
import { serveCloud, type RunningCloud } from '../../lab/cloud/server.js';
import { newIdentity, writeIdentity, writeServers, type CloudIdentity, type Server } from '../../lab/cloud/state.js';
import { parseAgentYml, startupFailure } from '../../payloads/flocker/agent.js';
import { adapterLookup, CinderBackend, CLUSTER_ID_LABEL, DATASET_ID_LABEL } from '../../payloads/flocker/cinder.js';
import { readMounts } from '../../payloads/flocker/loopback.js';
import { OpenStackSession, type OpenStackConfig } from '../../payloads/flocker/openstack-client.js';
import type { AgentConfiguration, AgentDataset } from '../../payloads/flocker/types.js';

/**
 * The emulated dataset agent's openstack backend against the lab's emulated OpenStack on 127.0.0.1:
 * two agents (master and worker, each knowing only its own address) move a dataset between them.
 * On the host there is no VM to plug a disk into, so this test's Nova attaches a volume's file as
 * a loop device and links it by serial where each "node" looks (udev's /dev/disk/by-id in a
 * guest); the agents' ext4, mounts and data are real. The VM side is the e2e cloud and Flocker runs'.
 */
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'flocker-cinder-')));
const CLUSTER = 'c1c2c3c4-0000-4000-8000-000000000001';
const MASTER_UUID = 'aaaaaaaa-1111-4222-8333-444444444444';
const WORKER_UUID = 'bbbbbbbb-1111-4222-8333-444444444444';
const ID = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
const servers: Server[] = [
  { id: '11111111-0000-4000-8000-000000000011', name: 'master', address: '10.77.0.11', mac: '', vcpus: 2, memoryMiB: 1536 },
  { id: '11111111-0000-4000-8000-000000000012', name: 'worker', address: '10.77.0.12', mac: '', vcpus: 2, memoryMiB: 1024 },
];
const byId = (server: string) => join(dir, server, 'by-id');

/** Servers whose hypervisor refuses a disk (as QEMU does once its PCI slots are taken). */
const full = new Set<string>();

/** Nova's hot-plug on the host: the file becomes a loop device, linked by its serial for that server. */
const loopHotplug: Hotplug = {
  async attach(server, volume) {
    if (full.has(server.name)) throw new Error('PCI: no slot/function available for virtio-blk-pci, all in use or reserved');
    const device = execFileSync('losetup', ['--find', '--show', volume.file], { encoding: 'utf8' }).trim();
    mkdirSync(byId(server.name), { recursive: true });
    symlinkSync(device, join(byId(server.name), `virtio-${volume.id.slice(0, 20)}`));
  },
  async detach(server, volume) {
    const link = join(byId(server.name), `virtio-${volume.id.slice(0, 20)}`);
    const device = realpathSync(link);
    unlinkSync(link);
    execFileSync('losetup', ['-d', device]);
  },
};

let cloud: RunningCloud;
let identity: CloudIdentity;
const logs: string[] = [];
const log = (line: string) => logs.push(line);

const openstackConfig = (over: Partial<OpenStackConfig> = {}): OpenStackConfig => ({
  region: identity.region,
  authUrl: `http://127.0.0.1:${cloud.ports.identity}/v2.0`,
  username: identity.userName,
  password: identity.password,
  tenantName: identity.projectName,
  verifyPeer: false,
  ...over,
});

const agentFor = (server: Server, over: Partial<OpenStackConfig> = {}, release = '1.14.0') =>
  new CinderBackend(
    new OpenStackSession(openstackConfig(over)),
    CLUSTER,
    join(dir, server.name, 'flocker'),
    adapterLookup(release, join(dir, 'no-module')),
    {
      byIdDir: byId(server.name),
      ips: () => new Set(['127.0.0.1', server.address]),
    },
  );

const dataset = (fields: Partial<AgentDataset> = {}): AgentConfiguration => ({
  datasets: [{ dataset_id: ID, primary: MASTER_UUID, metadata: { name: 'moving' }, deleted: false, maximum_size: 1024 ** 3, ...fields }],
  leases: [],
});

function cleanup(): void {
  for (const point of [...readMounts().keys()].filter((p) => p.startsWith(`${dir}/`)).reverse()) spawnSync('umount', ['-l', point]);
  const list = spawnSync('losetup', ['--list', '--noheadings', '--raw', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const [device, ...rest] = line.split(' ');
    if (device && rest.join(' ').startsWith(`${dir}/`)) spawnSync('losetup', ['-d', device]);
  }
}

beforeAll(async () => {
  const cloudDir = join(dir, 'cloud');
  identity = newIdentity();
  writeIdentity(cloudDir, identity);
  writeServers(cloudDir, servers);
  cloud = await serveCloud(cloudDir, { hotplug: loopHotplug });
});

afterAll(async () => {
  cleanup();
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the dataset agent's openstack backend", () => {
  test('a dataset is made a Cinder volume on its primary, moves with its data to the other node, and is destroyed when deleted', async () => {
    const master = agentFor(servers[0] as Server);
    const worker = agentFor(servers[1] as Server);
    const masterMount = join(dir, 'master', 'flocker', ID);
    const workerMount = join(dir, 'worker', 'flocker', ID);

    const reported = await master.converge(MASTER_UUID, dataset(), log);
    expect(reported).toEqual([{ dataset_id: ID, maximum_size: 1024 ** 3, path: masterMount }]);
    const session = new OpenStackSession(openstackConfig());
    const { volumes } = await session.call<{
      volumes: {
        id: string;
        name: string;
        size: number;
        status: string;
        metadata: Record<string, string>;
        attachments: { server_id: string }[];
      }[];
    }>('volumev2', 'GET', '/volumes/detail');
    expect(volumes).toHaveLength(1);
    const volume = volumes[0]!;
    expect(volume).toMatchObject({
      name: `flocker-${ID}`,
      size: 1,
      status: 'in-use',
      metadata: { [CLUSTER_ID_LABEL]: CLUSTER, [DATASET_ID_LABEL]: ID },
    });
    expect(volume.attachments[0]?.server_id).toBe(servers[0]?.id);
    writeFileSync(join(masterMount, 'data.txt'), 'written on the master\n');
    // The worker sees the volume (every node reports the cluster's volumes), not mounted there.
    expect(await worker.observe()).toEqual([{ dataset_id: ID, maximum_size: 1024 ** 3 }]);

    // The primary moves: the worker waits while the master still has it attached.
    const moved = dataset({ primary: WORKER_UUID });
    expect(await worker.converge(WORKER_UUID, moved, log)).toEqual([{ dataset_id: ID, maximum_size: 1024 ** 3 }]);
    expect(logs.join('\n')).toContain(`is attached to server ${servers[0]?.id}; waiting for it to be detached there`);
    expect(await master.converge(MASTER_UUID, moved, log)).toEqual([{ dataset_id: ID, maximum_size: 1024 ** 3 }]);
    expect(readMounts().has(masterMount)).toBe(false);
    expect(existsSync(join(byId('master'), `virtio-${volume.id.slice(0, 20)}`))).toBe(false);
    expect(await worker.converge(WORKER_UUID, moved, log)).toEqual([{ dataset_id: ID, maximum_size: 1024 ** 3, path: workerMount }]);
    expect(readFileSync(join(workerMount, 'data.txt'), 'utf8')).toBe('written on the master\n');
    expect(logs.filter((l) => l.includes('made an ext4 file system'))).toHaveLength(1);

    // Deleted: its primary unmounts, detaches and destroys the volume.
    expect(await worker.converge(WORKER_UUID, dataset({ primary: WORKER_UUID, deleted: true }), log)).toEqual([]);
    expect((await session.call<{ volumes: unknown[] }>('volumev2', 'GET', '/volumes')).volumes).toEqual([]);
  });

  test("Nova's attach fails (attaching, then available again): the agent names it as Flocker's VolumeStateMonitor did, and tries again", async () => {
    const master = agentFor(servers[0] as Server);
    full.add('master');
    const notices: string[] = [];
    try {
      expect(await master.converge(MASTER_UUID, dataset(), (line) => notices.push(line))).toEqual([
        { dataset_id: ID, maximum_size: 1024 ** 3 },
      ]);
      expect(notices.at(-1)).toMatch(
        new RegExp(
          `^dataset ${ID}: attaching Cinder volume (\\S+) to this node's server ${servers[0]?.id} failed: UnexpectedStateException: Unexpected state while waiting for volume\\. Expected Volume: <VolumeAttachment: \\1>, Expected State: u'in-use', Reached State: u'available'$`,
        ),
      );
      // The hypervisor takes disks again: the next round attaches and mounts it.
      full.delete('master');
      expect(await master.converge(MASTER_UUID, dataset(), (line) => notices.push(line))).toEqual([
        { dataset_id: ID, maximum_size: 1024 ** 3, path: join(dir, 'master', 'flocker', ID) },
      ]);
    } finally {
      full.delete('master');
      await master.converge(MASTER_UUID, dataset({ deleted: true }), () => undefined);
    }
  });

  test('a wrong password: Keystone refuses, and the agent says so as keystoneauth1 did', async () => {
    const agent = agentFor(servers[0] as Server, { password: 'wrong' });
    const failure = await agent.observe().then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure?.name).toBe('keystoneauth1.exceptions.http.Unauthorized');
    expect(failure?.message).toBe('The request you have made requires authentication. (HTTP 401)');
  });

  test('a region with no volume endpoint: neither Cinder v2 nor v1 is found', async () => {
    await expect(agentFor(servers[0] as Server, { region: 'RegionTwo' }).connect()).rejects.toThrow(
      "CinderAPIVersionDetectionFailure(endpoint_errors=[EndpointNotFound('public endpoint for volumev2 service in RegionTwo region not found',), EndpointNotFound('public endpoint for volume service in RegionTwo region not found',)])",
    );
  });

  test('Flocker 1.13.0 looks the client\'s "2.0" up in a table keyed "2" and "1" (#2841); 1.14.0 and the fork\'s replaced cinder.py do not', async () => {
    const failure = await agentFor(servers[0] as Server, {}, '1.13.0')
      .connect()
      .then(
        () => undefined,
        (error: Error) => error,
      );
    expect(failure?.name).toBe('KeyError');
    expect(startupFailure(failure as Error)).toMatch(
      /^main function encountered error\nTraceback \(most recent call last\):\n[\s\S]*\nKeyError: u'2\.0'\n$/,
    );
    await expect(agentFor(servers[0] as Server, {}, '1.14.0').connect()).resolves.toBeUndefined();
    const patched = join(dir, 'cinder.py');
    writeFileSync(
      patched,
      'CINDER_API_METADATA_IN_PRIORITY_ORDER = (\n    dict(version=u"2.0", adapter_v1=Cinder1to2Adapter),\n    dict(version=u"1.0", adapter_v1=lambda c: c),\n)\n',
    );
    expect(adapterLookup('1.13.0', patched)('2.0')).toBe('2.0');
    expect(() => adapterLookup('1.13.0', join(dir, 'absent.py'))('2.0')).toThrow("u'2.0'");
  });

  test("agent.yml's openstack dataset, shaped like the fork's (its empty network passed over)", () => {
    const yml = `"version": 1
"control-service": {"hostname": "10.77.0.11", "port": 4524}
dataset: {backend: "openstack", region: "RegionOne", verify_peer: false, auth_plugin: "password",
          auth_url: "http://10.0.2.100:5000/v2.0", username: "lab", password: "secret", tenant_name: "lab", network: ""}
`;
    expect(parseAgentYml(yml)).toEqual({
      controlHost: '10.77.0.11',
      controlPort: 4524,
      backend: 'openstack',
      openstack: {
        region: 'RegionOne',
        authUrl: 'http://10.0.2.100:5000/v2.0',
        username: 'lab',
        password: 'secret',
        tenantName: 'lab',
        verifyPeer: false,
      },
    });
    expect(() => parseAgentYml(yml.replace('region: "RegionOne", ', ''))).toThrow('dataset.region is required by the openstack backend');
    expect(() => parseAgentYml(yml.replace('auth_plugin: "password"', 'auth_plugin: "v3token"'))).toThrow(
      'dataset.auth_plugin v3token is not one',
    );
  });
});
