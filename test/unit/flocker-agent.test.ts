import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundlePrograms } from '../../payloads/bundle/bundle.js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseAgentYml, runAgent, type RunningAgent } from '../../payloads/flocker/agent.js';
import { FlockerClient } from '../../payloads/flocker/client.js';
import { startControlService, type ControlService } from '../../payloads/flocker/control.js';
import { LoopbackBackend, readMounts } from '../../payloads/flocker/loopback.js';
import type { AgentConfiguration, AgentDataset } from '../../payloads/flocker/types.js';
import { makeFlockerCerts, type FlockerCerts } from '../../lab/certs/flocker-ca.js';

/**
 * The emulated dataset agent's loopback backend with real loop devices, ext4 and mounts, in a
 * temporary root_path and mount root; everything it attaches or mounts there is undone after each
 * test, failed or not. Then the agent and the control service together, over mutual TLS on 127.0.0.1.
 */
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'flocker-agent-')));
const ME = 'aaaaaaaa-1111-4222-8333-444444444444';
const OTHER = 'bbbbbbbb-1111-4222-8333-444444444444';
const SIZE = 67108864;
let logs: string[] = [];
const log = (line: string) => logs.push(line);
const sh = (command: string, ...args: string[]) => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Unmounts whatever is mounted under the test directory and detaches every loop device backed by a file in it. */
function cleanup(): void {
  const points = [...readMounts().keys()]
    .filter((p) => p.startsWith(`${dir}/`))
    .sort()
    .reverse();
  for (const point of points) if (spawnSync('umount', [point]).status !== 0) spawnSync('umount', ['-l', point]);
  const list = spawnSync('losetup', ['--list', '--noheadings', '--raw', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const [device, ...rest] = line.split(' ');
    if (device && rest.join(' ').startsWith(`${dir}/`)) spawnSync('losetup', ['-d', device]);
  }
}

let n = 0;
function paths() {
  const base = join(dir, `t${++n}`);
  return { root: join(base, 'loopback'), mounts: join(base, 'flocker') };
}

const dataset = (id: string, fields: Partial<AgentDataset> = {}): AgentDataset => ({
  dataset_id: id,
  primary: ME,
  metadata: {},
  deleted: false,
  maximum_size: SIZE,
  origin: ME,
  ...fields,
});
const config = (...datasets: AgentDataset[]): AgentConfiguration => ({ datasets, leases: [] });
const devicesOf = (file: string) => sh('losetup', '-j', file).split('\n').filter(Boolean);
const isMounted = (point: string) => readMounts().has(point);
const ID = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';

afterEach(() => {
  cleanup();
  logs = [];
});

afterAll(() => {
  cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('the loopback backend', () => {
  test('primary here: a sparse file, a loop device, ext4 made once, mounted; a restart finds it and never reformats', async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    const file = join(root, ID);
    const point = join(mounts, ID);
    expect(await backend.converge(ME, config(dataset(ID)), log)).toEqual([{ dataset_id: ID, maximum_size: SIZE, path: point }]);
    expect(statSync(file).size).toBe(SIZE);
    expect(statSync(file).blocks * 512).toBeLessThan(SIZE / 2);
    const [line] = devicesOf(file);
    const device = /^(\/dev\/loop\d+):/.exec(line ?? '')?.[1] as string;
    expect(device).toBeDefined();
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'TYPE', device).trim()).toBe('ext4');
    expect(readMounts().get(point)).toEqual([device]);
    expect(logs.join('\n')).toMatch(
      new RegExp(`dataset ${ID}: created the loopback volume[\\s\\S]*attached[\\s\\S]*made an ext4[\\s\\S]*mounted`),
    );
    writeFileSync(join(point, 'data.txt'), 'kept');

    // Converged already: nothing to do, nothing logged.
    logs = [];
    await backend.converge(ME, config(dataset(ID)), log);
    expect(logs).toEqual([]);

    // The agent restarts: a new backend finds the mount from the system.
    const restarted = new LoopbackBackend(root, mounts);
    expect(await restarted.converge(ME, config(dataset(ID)), log)).toEqual([{ dataset_id: ID, maximum_size: SIZE, path: point }]);
    expect(logs).toEqual([]);

    // The node reboots (unmounted, detached): attached and mounted again, the data still there.
    sh('umount', point);
    sh('losetup', '-d', device);
    expect(await new LoopbackBackend(root, mounts).observe()).toEqual([{ dataset_id: ID, maximum_size: SIZE }]);
    await new LoopbackBackend(root, mounts).converge(ME, config(dataset(ID)), log);
    expect(logs.join('\n')).toMatch(/attached[\s\S]*mounted/);
    expect(logs.join('\n')).not.toMatch(/ext4 file system/);
    expect(readFileSync(join(point, 'data.txt'), 'utf8')).toBe('kept');
  });

  test('moved away: unmounted and detached, the file kept; moved back: the data is still there', async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    const file = join(root, ID);
    const point = join(mounts, ID);
    await backend.converge(ME, config(dataset(ID)), log);
    writeFileSync(join(point, 'data.txt'), 'before the move');
    logs = [];
    expect(await backend.converge(ME, config(dataset(ID, { primary: OTHER })), log)).toEqual([{ dataset_id: ID, maximum_size: SIZE }]);
    expect(isMounted(point)).toBe(false);
    expect(devicesOf(file)).toEqual([]);
    expect(existsSync(file)).toBe(true);
    expect(logs.join('\n')).toMatch(new RegExp(`dataset ${ID}: moved to node ${OTHER}; unmounted[\\s\\S]*detached`));
    logs = [];
    expect(await backend.converge(ME, config(dataset(ID)), log)).toEqual([{ dataset_id: ID, maximum_size: SIZE, path: point }]);
    expect(logs.join('\n')).not.toMatch(/ext4 file system|created/);
    expect(readFileSync(join(point, 'data.txt'), 'utf8')).toBe('before the move');
  });

  test('deleted: unmounted, detached and the volume destroyed', async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    const file = join(root, ID);
    await backend.converge(ME, config(dataset(ID)), log);
    logs = [];
    expect(await backend.converge(ME, config(dataset(ID, { deleted: true })), log)).toEqual([]);
    expect(isMounted(join(mounts, ID))).toBe(false);
    expect(existsSync(file)).toBe(false);
    expect(logs.join('\n')).toMatch(/deleted; unmounted[\s\S]*deleted; detached[\s\S]*deleted; destroyed/);
    logs = [];
    expect(await backend.converge(ME, config(dataset(ID, { deleted: true })), log)).toEqual([]);
    expect(logs).toEqual([]);
  });

  test("another node's dataset is never created here, not even when it moves here", async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    expect(await backend.converge(ME, config(dataset(ID, { primary: OTHER, origin: OTHER })), log)).toEqual([]);
    expect(existsSync(join(root, ID))).toBe(false);
    expect(logs).toEqual([]);
    // Moved here: its volume is on the other node; said once, not created.
    for (let i = 0; i < 3; i++) expect(await backend.converge(ME, config(dataset(ID, { origin: OTHER })), log)).toEqual([]);
    expect(logs).toEqual([`dataset ${ID}: its loopback volume is not on this node`]);
    expect(existsSync(join(root, ID))).toBe(false);
    // Without the control service's origin, the node it was first seen on counts.
    const second = '1a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
    await backend.converge(ME, config(dataset(second, { primary: OTHER, origin: undefined })), log);
    await new LoopbackBackend(root, mounts).converge(ME, config(dataset(second, { origin: undefined })), log);
    expect(existsSync(join(root, second))).toBe(false);
  });

  test('a volume this node had and lost is not recreated empty', async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    await backend.converge(ME, config(dataset(ID)), log);
    await backend.converge(ME, config(dataset(ID, { primary: OTHER })), log);
    rmSync(join(root, ID));
    logs = [];
    expect(await backend.converge(ME, config(dataset(ID)), log)).toEqual([]);
    expect(logs).toEqual([expect.stringMatching(/is gone from this node; not creating an empty one/)]);
  });

  test('a device with another file system is never formatted; the other datasets still converge', async () => {
    const { root, mounts } = paths();
    mkdirSync(root, { recursive: true });
    const swap = '2a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
    writeFileSync(join(root, swap), Buffer.alloc(0), { mode: 0o600 });
    sh('truncate', '-s', String(SIZE), join(root, swap));
    sh('mkswap', join(root, swap));
    const backend = new LoopbackBackend(root, mounts);
    const state = await backend.converge(ME, config(dataset(swap), dataset(ID)), log);
    expect(state).toEqual([
      { dataset_id: ID, maximum_size: SIZE, path: join(mounts, ID) },
      { dataset_id: swap, maximum_size: SIZE },
    ]);
    expect(logs.join('\n')).toMatch(new RegExp(`dataset ${swap}: /dev/loop\\d+ holds swap, not ext4; not formatting or mounting it`));
    expect(sh('blkid', '-p', '-o', 'value', '-s', 'TYPE', join(root, swap)).trim()).toBe('swap');
  });

  test('a lease held by this node keeps a moved dataset attached until it is released', async () => {
    const { root, mounts } = paths();
    const backend = new LoopbackBackend(root, mounts);
    await backend.converge(ME, config(dataset(ID)), log);
    const moved: AgentConfiguration = {
      datasets: [dataset(ID, { primary: OTHER })],
      leases: [{ dataset_id: ID, node_uuid: ME, expires: null }],
    };
    logs = [];
    expect(await backend.converge(ME, moved, log)).toEqual([{ dataset_id: ID, maximum_size: SIZE, path: join(mounts, ID) }]);
    expect(logs).toEqual([`dataset ${ID}: moved to node ${OTHER}, but this node holds a lease on it; leaving it as it is`]);
    expect(await backend.converge(ME, { ...moved, leases: [] }, log)).toEqual([{ dataset_id: ID, maximum_size: SIZE }]);
  });
});

describe('agent.yml', () => {
  const yml = (text: string) => () => parseAgentYml(text, '/etc/flocker/agent.yml');
  test('version 1, the control service, the loopback backend with its defaults', () => {
    expect(parseAgentYml('version: 1\ncontrol-service:\n  hostname: 10.0.0.1\ndataset:\n  backend: loopback\n')).toEqual({
      controlHost: '10.0.0.1',
      controlPort: 4524,
      backend: 'loopback',
      rootPath: '/var/lib/flocker/loopback',
    });
    expect(
      parseAgentYml(
        'version: 1\ncontrol-service: {hostname: ctl, port: 14524}\ndataset: {backend: loopback, root_path: /srv/lb, compute_instance_id: node1}\n',
      ),
    ).toMatchObject({ controlPort: 14524, rootPath: '/srv/lb', computeInstanceId: 'node1' });
  });

  test('a bad agent.yml names the field; other backends are refused', () => {
    expect(yml('control-service: {hostname: a}\ndataset: {backend: loopback}\n')).toThrow(/agent.yml: version is missing/);
    expect(yml('version: 2\ncontrol-service: {hostname: a}\ndataset: {backend: loopback}\n')).toThrow(/version must be 1/);
    expect(yml('version: 1\ncontrol-service: {port: 4524}\ndataset: {backend: loopback}\n')).toThrow(/control-service.hostname is missing/);
    expect(yml('version: 1\ncontrol-service: {hostname: a}\n')).toThrow(/dataset is missing/);
    expect(yml('version: 1\ncontrol-service: {hostname: a, port: x}\ndataset: {backend: loopback}\n')).toThrow(/control-service.port/);
    expect(yml('version: 1\ncontrol-service: {hostname: a}\ndataset: {backend: aws, region: us-east-1}\n')).toThrow(
      "backend aws is not supported by the lab's emulated Flocker agent (loopback, openstack)",
    );
    expect(yml('version: 1\ncontrol-service: {hostname: a}\ndataset: {backend: loopback, root_path: relative}\n')).toThrow(/root_path/);
    expect(yml('{ not yaml')).toThrow(/not valid YAML/);
  });
});

describe('the agent with the control service', () => {
  let certs: FlockerCerts;
  let agentDir: string;
  let nodeUuid: string;
  let client: FlockerClient;
  let service: ControlService | undefined;
  let agent: RunningAgent | undefined;

  beforeAll(async () => {
    certs = await makeFlockerCerts({
      dir: join(dir, 'certs'),
      controlHost: '127.0.0.1',
      nodes: ['node1'],
      user: 'kubernetes',
      keyBits: 2048,
    });
    const node = certs.nodes[0] as FlockerCerts['nodes'][number];
    nodeUuid = node.uuid;
    agentDir = join(dir, 'etc-flocker');
    mkdirSync(agentDir);
    copyFileSync(node.crt, join(agentDir, 'node.crt'));
    copyFileSync(node.key, join(agentDir, 'node.key'));
    copyFileSync(certs.ca.crt, join(agentDir, 'cluster.crt'));
  }, 60_000);

  afterEach(async () => {
    await agent?.stop();
    await service?.close();
    agent = undefined;
    service = undefined;
  });

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms\n${logs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  test('create, move away, move back, delete: the state follows, the volume really does', async () => {
    service = await startControlService({
      apiPort: 0,
      agentPort: 0,
      host: '127.0.0.1',
      dataPath: join(dir, 'control-data'),
      // cluster.crt, control-service.crt and control-service.key are in the set's folder.
      certificatesDirectory: certs.dir,
      version: '1.14.0',
      log: (line) => logs.push(`control: ${line}`),
    });
    client = new FlockerClient({
      host: '127.0.0.1',
      port: service.apiPort,
      caFile: certs.ca.crt,
      certFile: certs.user.crt,
      keyFile: certs.user.key,
    });
    const { root, mounts } = paths();
    writeFileSync(
      join(agentDir, 'agent.yml'),
      `version: 1\ncontrol-service:\n  hostname: 127.0.0.1\n  port: ${service.agentPort}\ndataset:\n  backend: loopback\n  root_path: ${root}\n`,
    );
    agent = await runAgent({
      agentConfig: join(agentDir, 'agent.yml'),
      intervalMs: 200,
      mountRoot: mounts,
      log: (line) => logs.push(`agent: ${line}`),
    });
    expect(agent.nodeUuid).toBe(nodeUuid);
    await waitFor('the node to be listed', async () => ((await client.nodes()).length ? true : undefined));
    expect(await client.nodes()).toEqual([{ host: '127.0.0.1', uuid: nodeUuid }]);

    const { dataset_id: id } = await client.createDataset({ primary: nodeUuid, maximum_size: SIZE, metadata: { name: 'db' } });
    const point = join(mounts, id);
    const attached = await waitFor('the dataset to be attached', async () => (await client.datasetStates()).find((d) => d.path));
    expect(attached).toEqual({ dataset_id: id, primary: nodeUuid, maximum_size: SIZE, path: point });
    expect(isMounted(point)).toBe(true);
    writeFileSync(join(point, 'data.txt'), 'through the API');

    await client.moveDataset(id, OTHER);
    await waitFor('the dataset to be detached', async () =>
      (await client.datasetStates()).find((d) => d.dataset_id === id && !d.path) ? true : undefined,
    );
    expect(isMounted(point)).toBe(false);
    expect(devicesOf(join(root, id))).toEqual([]);

    await client.moveDataset(id, nodeUuid);
    await waitFor('the dataset to be attached again', async () => (await client.datasetStates()).find((d) => d.path));
    expect(readFileSync(join(point, 'data.txt'), 'utf8')).toBe('through the API');

    await client.deleteDataset(id);
    await waitFor('the dataset to be gone', async () => ((await client.datasetStates()).length === 0 ? true : undefined));
    expect(existsSync(join(root, id))).toBe(false);
    expect(readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
    // The agent's probe for its own address (a bare TCP connection) is not taken for a refused client.
    expect(logs.filter((l) => /refused/.test(l))).toEqual([]);
  });

  test('a control service that cannot be reached is retried, and the error logged once', async () => {
    const { root, mounts } = paths();
    writeFileSync(
      join(agentDir, 'agent.yml'),
      `version: 1\ncontrol-service: {hostname: 127.0.0.1, port: 1}\ndataset: {backend: loopback, root_path: ${root}}\n`,
    );
    agent = await runAgent({ agentConfig: join(agentDir, 'agent.yml'), intervalMs: 50, mountRoot: mounts, log: (line) => logs.push(line) });
    await new Promise((r) => setTimeout(r, 600));
    expect(logs.filter((l) => l.includes('cannot report to the control service'))).toEqual([
      expect.stringMatching(/cannot report to the control service 127.0.0.1:1: .*ECONNREFUSED/),
    ]);
  });
});

describe('the bundled flocker-dataset-agent program', () => {
  test('exits 2 on an unknown flag, 1 on a bad agent.yml or another backend', async () => {
    // Compiled exactly as the bundle compiles it.
    const compiled = (await bundlePrograms()).find((p) => p.name === 'flocker-dataset-agent');
    const program = join(dir, 'flocker-dataset-agent.mjs');
    writeFileSync(program, compiled?.text ?? '');
    const runProgram = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--no-warnings', program, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      });
    const bad = await runProgram(['--nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown flag: --nope[\s\S]*Usage of flocker-dataset-agent:[\s\S]*--agent-config/);
    const etc = join(dir, 'program-etc');
    mkdirSync(etc);
    writeFileSync(join(etc, 'agent.yml'), 'version: 1\ncontrol-service: {hostname: 127.0.0.1}\ndataset: {backend: zfs, pool: flocker}\n');
    const zfs = await runProgram(['--agent-config', join(etc, 'agent.yml')]);
    expect(zfs.code).toBe(1);
    expect(zfs.stderr).toContain("backend zfs is not supported by the lab's emulated Flocker agent (loopback, openstack)");
    writeFileSync(join(etc, 'agent.yml'), 'version: 1\ndataset: {backend: loopback}\n');
    const noControl = await runProgram(['--agent-config', join(etc, 'agent.yml'), '--journald']);
    expect(noControl.code).toBe(1);
    expect(noControl.stderr).toMatch(/agent.yml: control-service is missing/);
    writeFileSync(join(etc, 'agent.yml'), 'version: 1\ncontrol-service: {hostname: 127.0.0.1}\ndataset: {backend: loopback}\n');
    const noCerts = await runProgram(['--agent-config', join(etc, 'agent.yml')]);
    expect(noCerts.code).toBe(1);
    expect(noCerts.stderr).toMatch(/cannot read .*node\.crt/);
  });
});
