import { run } from '../util/proc.js';
import { CLUSTER_NETDEV } from './guest.js';
import { qmp } from './qemu/qmp.js';

/**
 * How a check reaches a node's hypervisor to break the node on purpose (NixOS tests' crash, block
 * and unblock). It is data, written into the cluster descriptor: the check runs in another
 * process than the lab that started the VM.
 */
export type NodeControl =
  /** A plain qemu-system process and its monitor socket. */
  | { driver: 'qemu'; qmpSocket: string }
  /** A libvirt domain: pause and resume through libvirt (it tracks them), the rest through its monitor. */
  | { driver: 'libvirt'; uri: string; domain: string };

/** One QMP command on the node's monitor, directly or through libvirt's passthrough. */
export async function monitor(control: NodeControl, execute: string, args?: Record<string, unknown>): Promise<unknown> {
  if (control.driver === 'qemu') return qmp(control.qmpSocket, execute, args, 15_000);
  const command = JSON.stringify({ execute, ...(args ? { arguments: args } : {}) });
  const result = await run(['virsh', '-c', control.uri, 'qemu-monitor-command', control.domain, command]);
  return (JSON.parse(result.stdout) as { return?: unknown }).return;
}

const virsh = (control: Extract<NodeControl, { driver: 'libvirt' }>, verb: string) =>
  run(['virsh', '-c', control.uri, verb, control.domain]);

/** The guest's CPUs stop (its clock with them); nothing it does goes on. */
export const pauseVm = async (control: NodeControl): Promise<void> => {
  await (control.driver === 'qemu' ? monitor(control, 'stop') : virsh(control, 'suspend'));
};

export const resumeVm = async (control: NodeControl): Promise<void> => {
  await (control.driver === 'qemu' ? monitor(control, 'cont') : virsh(control, 'resume'));
};

/** "running", "paused", ... as the monitor's query-status says. */
export const vmStatus = async (control: NodeControl): Promise<string> =>
  ((await monitor(control, 'query-status')) as { status: string }).status;

/**
 * A hard reset, as the reset button: the guest boots again from its disk, and what it had not
 * written is lost. The VMs run with reboot=shutdown (a guest that reboots by itself is stopped,
 * not booted again), and SeaBIOS answers a warm start with a reset of its own: resets are allowed
 * until `bootedAgain`.
 */
export async function resetVm(control: NodeControl): Promise<void> {
  await monitor(control, 'set-action', { reboot: 'reset' });
  await monitor(control, 'system_reset');
}

/** Once the guest is up after a reset: a reboot stops it again, as before. */
export async function bootedAgain(control: NodeControl): Promise<void> {
  await monitor(control, 'set-action', { reboot: 'shutdown' });
}

/**
 * A hard power-off: the CPUs stop at once and the machine is put back to its power-on state, where
 * it stays paused (off) until `powerOnVm`, which boots it from its disk as a cold start does. The
 * hypervisor process stays, so the lab's run goes on and tears it down as usual.
 */
export async function powerOffVm(control: NodeControl): Promise<void> {
  await pauseVm(control);
  await resetVm(control);
}

export const powerOnVm = resumeVm;

/** The cluster link's cable out (false) or in (true): the guest sees its carrier go, the switch gets nothing from it. */
export async function setClusterLink(control: NodeControl, up: boolean): Promise<void> {
  await monitor(control, 'set_link', { name: CLUSTER_NETDEV, up });
}
