import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { qmp } from '../../lab/machines/qemu/qmp.js';
import {
  bootedAgain,
  pauseVm,
  powerOffVm,
  powerOnVm,
  resetVm,
  resumeVm,
  setClusterLink,
  vmStatus,
  type NodeControl,
} from '../../lab/machines/faults.js';

/**
 * The fault verbs against a real qemu-system-x86_64 with no guest (nothing to boot: the machine
 * runs SeaBIOS, which is enough for QEMU's run states), started as the qemu driver starts VMs:
 * -no-reboot, a monitor socket, a netdev named "cluster".
 */
let qemu: { child: ChildProcess; dir: string; exited: Promise<number | null> } | undefined;

async function startQemu(): Promise<Extract<NodeControl, { driver: 'qemu' }>> {
  const dir = mkdtempSync(join(tmpdir(), 'lab-faults-'));
  const qmpSocket = join(dir, 'qmp.sock');
  const child = spawn(
    'qemu-system-x86_64',
    [
      '-M',
      'pc',
      '-nodefaults',
      '-display',
      'none',
      '-no-reboot',
      '-netdev',
      'user,id=cluster,restrict=on',
      '-device',
      'virtio-net-pci,netdev=cluster',
      '-qmp',
      `unix:${qmpSocket},server=on,wait=off`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  qemu = { child, dir, exited };
  for (let i = 0; i < 50 && !existsSync(qmpSocket); i++) await sleep(100);
  return { driver: 'qemu', qmpSocket };
}

const stillRuns = async () => Promise.race([qemu?.exited.then(() => false), sleep(1500).then(() => true)]);

afterEach(async () => {
  qemu?.child.kill('SIGKILL');
  await qemu?.exited;
  if (qemu) rmSync(qemu.dir, { recursive: true, force: true });
  qemu = undefined;
});

describe('fault verbs on a real QEMU', () => {
  test('pause and resume switch the run state', async () => {
    const control = await startQemu();
    expect(await vmStatus(control)).toBe('running');
    await pauseVm(control);
    expect(await vmStatus(control)).toBe('paused');
    await resumeVm(control);
    expect(await vmStatus(control)).toBe('running');
  });

  test('a reset keeps the machine (despite -no-reboot) until it has booted again; after that a reboot ends it, as before', async () => {
    const control = await startQemu();
    await resetVm(control);
    expect(await stillRuns()).toBe(true);
    expect(await vmStatus(control)).toBe('running');
    // A second reset, as SeaBIOS makes after a warm start, is a reset too.
    await resetVm(control);
    expect(await stillRuns()).toBe(true);
    await bootedAgain(control);
    // -no-reboot's action is back: a reset now ends QEMU, as a guest's own reboot does.
    await qmp(control.qmpSocket, 'system_reset').catch(() => undefined);
    expect(await stillRuns()).toBe(false);
  });

  test('a crash leaves the machine off (prelaunch) with its process alive; power on starts it again', async () => {
    const control = await startQemu();
    await powerOffVm(control);
    expect(await vmStatus(control)).toBe('prelaunch');
    expect(await stillRuns()).toBe(true);
    await powerOnVm(control);
    expect(await vmStatus(control)).toBe('running');
    expect(await stillRuns()).toBe(true);
  });

  test('the cluster link goes down and up by its netdev name (another name is an error: the name is what it finds)', async () => {
    const control = await startQemu();
    await setClusterLink(control, false);
    await setClusterLink(control, true);
    await expect(qmp(control.qmpSocket, 'set_link', { name: 'no-such-netdev', up: false })).rejects.toThrow(/not found/);
  });
});
