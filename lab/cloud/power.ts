import { vmStatus } from '../machines/faults.js';
import type { Server } from './state.js';

/**
 * A server's power as Nova learnt it from libvirt: running, paused (by someone else than Nova),
 * or shut down. Nova on libvirt kept each domain defined, so a VM whose QEMU is gone was a domain
 * "shut off", not a missing one.
 */
export type PowerState = 'running' | 'paused' | 'shutdown';
export type PowerStates = (server: Server) => Promise<PowerState>;

/**
 * QEMU's run states that libvirt reported as shut off or crashed. `prelaunch` is where the lab's
 * hard power-off leaves a VM (reset with its CPUs stopped, as before its first start).
 */
const OFF = new Set(['prelaunch', 'shutdown', 'guest-panicked']);

/** Asks each server's monitor at every request, so a client sees a crash as soon as the next poll. */
export const hypervisorPower = (): PowerStates => async (server) => {
  // A driver without a monitor (vagrant) gives Nova nothing to sync from: as booted.
  if (!server.control) return 'running';
  let status: string;
  try {
    status = await vmStatus(server.control);
  } catch {
    return 'shutdown';
  }
  if (status === 'running') return 'running';
  return OFF.has(status) ? 'shutdown' : 'paused';
};

/**
 * What Nova's API showed for each (nova/compute/power_state.py's numbers). Its power-state sync
 * stopped an instance that shut down under it (SHUTOFF), and left one paused under it as it was
 * ("Instance is paused unexpectedly. Ignore."): ACTIVE, with the power state it saw.
 */
export const novaPower = (power: PowerState) =>
  power === 'shutdown'
    ? { status: 'SHUTOFF', vmState: 'stopped', powerState: 4 }
    : { status: 'ACTIVE', vmState: 'active', powerState: power === 'paused' ? 3 : 1 };
