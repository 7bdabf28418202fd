import type { Vm } from '../machines/driver.js';
import type { Machine } from '../remote/machine.js';
import type { Logger } from '../util/log.js';

/** Pauses every VM before any is saved, so that the cluster's states belong to one instant. Returns that instant (host time, ms). */
export async function pauseTogether(vms: Vm[]): Promise<number> {
  const at = Date.now();
  await Promise.all(vms.map((vm) => snapshotsOf(vm).pause()));
  return at;
}

/** Lets every VM go on at once (the TCP connections between them resume on both ends). */
export async function resumeTogether(vms: Vm[]): Promise<void> {
  await Promise.all(vms.map((vm) => snapshotsOf(vm).resume()));
}

export function snapshotsOf(vm: Vm): NonNullable<Vm['snapshots']> {
  if (!vm.snapshots) throw new Error(`the VM of ${vm.spec.name} cannot be saved or restored by its driver`);
  return vm.snapshots;
}

/**
 * A paused guest's clock stands still, and a restored one wakes at the time it was saved: each is
 * stepped to the host's clock (its monotonic clock, which timers run on, is left alone). Stepped,
 * not moved on by the pause: a TCG guest whose TSC was calibrated on a loaded host runs a little
 * slow (0.3 % measured), and a layer would keep what it lost (8 s on a cluster built while other
 * VMs ran) in every run restored from it. A clock set wrong on purpose is set right too.
 * The guest's offset is measured as NTP does (the host's time at the middle of a round trip
 * against the guest's reading) and applied by the guest to its own clock, so the SSH latency of
 * the second command adds nothing.
 */
export async function stepClocks(machines: Machine[], log: Logger): Promise<void> {
  const offsets = await Promise.all(
    machines.map(async (machine) => {
      const sent = Date.now();
      const guest = Number((await machine.succeed('date +%s.%N', { timeout: 30 })).trim());
      const offset = (sent + Date.now()) / 2000 - guest;
      await machine.succeed(
        `date -u -s "@$(awk -v now="$(date +%s.%N)" 'BEGIN { printf "%.3f", now + ${offset.toFixed(3)} }')" >/dev/null`,
        {
          timeout: 30,
        },
      );
      return offset;
    }),
  );
  const largest = offsets.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
  log.info(`    guest clocks stepped to the host's (the furthest by ${formatSeconds(largest)}: it stood paused or ran slow)`);
}

const formatSeconds = (seconds: number): string => {
  const abs = Math.abs(seconds);
  if (abs < 120) return `${seconds.toFixed(1)} s`;
  if (abs < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (abs < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
};
