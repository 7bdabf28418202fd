import type { Vm } from '../machines/driver.js';
import type { Machine } from '../remote/machine.js';
import type { Logger } from '../util/log.js';

/** Pauses every VM before any is saved, so that the cluster's states belong to one instant. Returns that instant (host time, ms). */
export async function pauseTogether(vms: Vm[]): Promise<number> {
  const at = Date.now();
  await Promise.all(vms.map((vm) => snapshotsOf(vm).pause()));
  return at;
}

/** Lets every VM go on at once (the TCP connections between them resume on both ends). Returns that instant (host time, ms). */
export async function resumeTogether(vms: Vm[]): Promise<number> {
  await Promise.all(vms.map((vm) => snapshotsOf(vm).resume()));
  return Date.now();
}

export function snapshotsOf(vm: Vm): NonNullable<Vm['snapshots']> {
  if (!vm.snapshots) throw new Error(`the VM of ${vm.spec.name} cannot be saved or restored by its driver`);
  return vm.snapshots;
}

/**
 * A paused guest's clock stands still, and a restored one wakes at the time it was saved: each is
 * moved forward by the time it spent paused (`pausedMs`), to where it would be had it run on, a
 * clock set wrong on purpose included. Its monotonic clock, which timers run on, is left alone.
 */
export async function advanceClocks(machines: Machine[], pausedMs: number, log: Logger): Promise<void> {
  const seconds = (pausedMs / 1000).toFixed(3);
  await Promise.all(
    machines.map((machine) =>
      machine.succeed(`date -u -s "@$(awk -v now="$(date +%s.%N)" 'BEGIN { printf "%.3f", now + ${seconds} }')" >/dev/null`, { timeout: 30 }),
    ),
  );
  log.info(`    guest clocks moved ${formatSeconds(pausedMs / 1000)} forward, over the time they stood paused`);
}

const formatSeconds = (seconds: number): string => {
  const abs = Math.abs(seconds);
  if (abs < 120) return `${seconds.toFixed(1)} s`;
  if (abs < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (abs < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
};
