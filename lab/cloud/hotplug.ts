import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitor, type NodeControl } from '../machines/faults.js';
import { run } from '../util/proc.js';
import type { PowerState } from './power.js';
import type { Server } from './state.js';

/**
 * Nova's attach as OpenStack on libvirt did it: the volume's file becomes a virtio-blk disk of the
 * running VM whose serial is the volume id, so the guest finds it as
 * /dev/disk/by-id/virtio-<the id's first 20 characters> (virtio-blk keeps 20 bytes of a serial).
 * Detach unplugs it: the guest is asked to let the device go (ACPI or PCIe hot-plug), and the disk
 * leaves the VM only once the guest has. A server that is off has no guest to ask: Nova on libvirt
 * took the disk out of a shut-off domain's definition at once.
 */
export interface Hotplug {
  attach(server: Server, volume: { id: string; file: string; device: string }): Promise<void>;
  detach(server: Server, volume: { id: string; device: string }, power?: PowerState): Promise<void>;
}

/** How long a guest has to release an unplugged disk (Nova waited about as long before it gave up). */
const DETACH_WITHIN_MS = 60_000;

/** A VM that is off: its reset takes the unplugged device out of the machine in a moment. */
const OFF_RELEASE_MS = 5000;

/** QEMU's names for the volume's block node and device: short, starting with a letter, one per volume. */
const nodeName = (volumeId: string) => `vol${volumeId.replace(/-/g, '').slice(0, 24)}`;

/** The disk's name in libvirt's domain (vdb for /dev/vdb). */
const targetOf = (device: string) => device.replace('/dev/', '');

/** The monitor's socket is gone or nobody listens on it (for libvirt: the domain is not running). */
const hypervisorGone = (error: NodeJS.ErrnoException) =>
  error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || /domain is not running|failed to get domain/i.test(error.message);

function controlOf(server: Server): NodeControl {
  if (!server.control) throw new Error(`server ${server.name} has no hypervisor monitor: its driver cannot hot-plug disks`);
  return server.control;
}

/** A libvirt disk element for the volume: raw file, virtio, the volume id as serial, as Nova's libvirt driver wrote it. */
const diskXml = (volume: { id: string; file: string; device: string }) =>
  `<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${volume.file}'/>` +
  `<target dev='${targetOf(volume.device)}' bus='virtio'/><serial>${volume.id}</serial></disk>`;

/** Hot-plug through each server's hypervisor monitor (QMP, or libvirt for its domains). */
export const hypervisorHotplug = (detachWithinMs = DETACH_WITHIN_MS): Hotplug => ({
  async attach(server, volume) {
    const control = controlOf(server);
    if (control.driver === 'libvirt') {
      const file = join(tmpdir(), `lab-attach-${volume.id}.xml`);
      writeFileSync(file, diskXml(volume));
      try {
        await run(['virsh', '-c', control.uri, 'attach-device', control.domain, file, '--live']);
      } finally {
        rmSync(file, { force: true });
      }
      return;
    }
    const node = nodeName(volume.id);
    await monitor(control, 'blockdev-add', { driver: 'raw', 'node-name': node, file: { driver: 'file', filename: volume.file } });
    try {
      await monitor(control, 'device_add', { driver: 'virtio-blk-pci', id: node, drive: node, serial: volume.id });
    } catch (error) {
      await monitor(control, 'blockdev-del', { 'node-name': node }).catch(() => undefined);
      throw error;
    }
  },

  async detach(server, volume, power = 'running') {
    const control = controlOf(server);
    const asked =
      control.driver === 'libvirt'
        ? run(['virsh', '-c', control.uri, 'detach-disk', control.domain, targetOf(volume.device), '--live'])
        : monitor(control, 'device_del', { id: nodeName(volume.id) });
    if (power !== 'shutdown') {
      await asked;
      return released(server, control, volume, detachWithinMs);
    }
    // A VM that is off has no guest to let the device go, and the unplug stays pending: QEMU
    // completes a pending unplug when the machine resets, which changes nothing for a machine
    // already at its power-on state. A QEMU that is gone holds no disk.
    const pending = await asked.then(
      () => true,
      (error: NodeJS.ErrnoException) => (hypervisorGone(error) ? false : Promise.reject(error)),
    );
    if (!pending) return;
    await monitor(control, 'system_reset');
    await released(server, control, volume, OFF_RELEASE_MS);
  },
});

/**
 * Once the disk has left the VM, within the budget: QEMU lets the volume's block node go once no
 * device uses it; libvirt drops the disk from the domain.
 */
async function released(server: Server, control: NodeControl, volume: { id: string; device: string }, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    let refusal = '';
    if (control.driver === 'libvirt') {
      const { stdout } = await run(['virsh', '-c', control.uri, 'domblklist', control.domain]);
      if (!new RegExp(`^\\s*${targetOf(volume.device)}\\s`, 'm').test(stdout)) return;
    } else {
      try {
        await monitor(control, 'blockdev-del', { 'node-name': nodeName(volume.id) });
        return;
      } catch (error) {
        refusal = `: ${(error as Error).message}`;
      }
    }
    if (Date.now() > deadline)
      throw new Error(`the guest of ${server.name} did not release ${volume.device} within ${withinMs / 1000} s${refusal}`);
    await sleep(200);
  }
}
