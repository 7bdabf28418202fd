import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hypervisorHotplug } from '../../lab/cloud/hotplug.js';
import { hypervisorPower } from '../../lab/cloud/power.js';
import type { Server } from '../../lab/cloud/state.js';
import { pauseVm, powerOffVm, powerOnVm, resumeVm } from '../../lab/machines/faults.js';
import { qmp } from '../../lab/machines/qemu/qmp.js';

/**
 * Nova's attach against a real qemu-system-x86_64 started as the qemu driver starts VMs (the pc
 * machine, a monitor socket), with no guest: the disk is plugged into the PCI bus with the volume
 * id as its serial. A guest that never lets an unplugged disk go (none here) makes the detach fail
 * with what it waited for. A real guest's side is in the e2e cloud test.
 */
let qemu: ChildProcess | undefined;
let dir: string;
let server: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lab-hotplug-'));
  const qmpSocket = join(dir, 'qmp.sock');
  qemu = spawn('qemu-system-x86_64', ['-M', 'pc', '-nodefaults', '-display', 'none', '-qmp', `unix:${qmpSocket},server=on,wait=off`], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 50 && !existsSync(qmpSocket); i++) await sleep(100);
  server = { id: 's1', name: 'worker', address: '10.77.0.12', mac: '', vcpus: 1, memoryMiB: 128, control: { driver: 'qemu', qmpSocket } };
});

afterAll(() => {
  qemu?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const volumeFile = (id: string) => {
  const file = join(dir, `${id}.raw`);
  const fd = openSync(file, 'w');
  ftruncateSync(fd, 1024 ** 3);
  closeSync(fd);
  return file;
};

describe('hot-plug through QMP', () => {
  test("attach plugs a virtio-blk disk whose serial is the volume id, backed by the volume's file", async () => {
    const id = '3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d';
    const file = volumeFile(id);
    await hypervisorHotplug().attach(server, { id, file, device: '/dev/vdb' });
    const control = server.control as { qmpSocket: string };
    const nodes = await qmp<{ 'node-name': string; file: string }[]>(control.qmpSocket, 'query-named-block-nodes');
    expect(nodes.map((n) => n.file)).toContain(file);
    const serial = await qmp(control.qmpSocket, 'qom-get', { path: '/machine/peripheral/vol3a4b5c6d7e8f4a0b9c1d2e3f', property: 'serial' });
    expect(serial).toBe(id);
    const type = await qmp(control.qmpSocket, 'qom-get', { path: '/machine/peripheral/vol3a4b5c6d7e8f4a0b9c1d2e3f', property: 'type' });
    expect(type).toBe('virtio-blk-pci');
  });

  test('a disk the guest never lets go: the detach fails after its budget, naming the device', async () => {
    const id = '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a';
    await hypervisorHotplug().attach(server, { id, file: volumeFile(id), device: '/dev/vdc' });
    await expect(hypervisorHotplug(1500).detach(server, { id, device: '/dev/vdc' })).rejects.toThrow(
      /the guest of worker did not release \/dev\/vdc within 1\.5 s/,
    );
  });

  test('a server without a monitor cannot take a disk, and says so', async () => {
    const { control: _none, ...bare } = server;
    await expect(hypervisorHotplug().attach(bare, { id: 'x', file: '/nonexistent', device: '/dev/vdd' })).rejects.toThrow(
      /server worker has no hypervisor monitor/,
    );
  });
});

// Last: it powers the VM off and on again.
describe("the power Nova's server status follows, asked of the same QEMU", () => {
  test("running, paused, powered off (the lab's crash), on again; a QEMU that is gone is off; no monitor at all is running", async () => {
    const power = hypervisorPower();
    const control = server.control!;
    expect(await power(server)).toBe('running');
    await pauseVm(control);
    expect(await power(server)).toBe('paused');
    await resumeVm(control);
    expect(await power(server)).toBe('running');
    await powerOffVm(control);
    expect(await power(server)).toBe('shutdown');
    await powerOnVm(control);
    expect(await power(server)).toBe('running');
    expect(await power({ ...server, control: { driver: 'qemu', qmpSocket: join(dir, 'gone.sock') } })).toBe('shutdown');
    const { control: _none, ...bare } = server;
    expect(await power(bare)).toBe('running');
  });
});

describe('a detach from a server that is off', () => {
  test('the disk leaves the powered-off VM without its guest, which stays off; a QEMU that is gone has nothing to let go', async () => {
    const id = '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9';
    const file = volumeFile(id);
    const control = server.control as { driver: 'qemu'; qmpSocket: string };
    await hypervisorHotplug().attach(server, { id, file, device: '/dev/vde' });
    await powerOffVm(control);
    // A budget the guest-side path could not meet: this one asks no guest.
    await hypervisorHotplug(1).detach(server, { id, device: '/dev/vde' }, 'shutdown');
    const nodes = await qmp<{ file: string }[]>(control.qmpSocket, 'query-named-block-nodes');
    expect(nodes.map((n) => n.file)).not.toContain(file);
    await expect(
      qmp(control.qmpSocket, 'qom-get', { path: '/machine/peripheral/vol5e6f7a8b9c0d4e1fa2b3c4d5', property: 'type' }),
    ).rejects.toThrow(/not found/);
    expect(await hypervisorPower()(server)).toBe('shutdown');
    await powerOnVm(control);
    const gone = { ...server, control: { driver: 'qemu' as const, qmpSocket: join(dir, 'gone.sock') } };
    await expect(hypervisorHotplug().detach(gone, { id, device: '/dev/vde' }, 'shutdown')).resolves.toBeUndefined();
  });
});
