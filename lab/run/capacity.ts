import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { diskSizeBytes } from '../images/recipe.js';
import { TB_CACHE_MIB } from '../machines/qemu/args.js';
import type { ScenarioSpec } from '../scenario/schema.js';
import { freeBytes } from '../util/disk.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { stateDir } from '../util/paths.js';

/**
 * Whether this host can hold a scenario's VMs, decided before anything starts: the nodes' memory
 * against the memory the host has available now, their vCPUs against its cores, and the disk
 * their overlays can grow to against the state folder's free space. What cannot fit is refused
 * (bad input, exit 2); what fits but barely is a warning.
 */
export interface HostCapacity {
  /** MemAvailable of /proc/meminfo. */
  memoryAvailableMiB: number;
  cores: number;
  /** Free bytes on the file system of the state folder (where the overlays grow). */
  stateFreeBytes: number;
}

export interface CapacityVerdict {
  refusals: string[];
  warnings: string[];
}

/**
 * What QEMU takes beyond the guest's RAM: itself, its devices and TCG's translation cache, which a
 * cluster node fills (a two-node-flocker worker with -m 1024 had an RSS of 2168 MiB, the master
 * with -m 1536 2208 MiB). Under KVM there is no such cache: this is the bound for TCG.
 */
export const QEMU_OVERHEAD_MIB = TB_CACHE_MIB + 160;
/** Host memory and disk past this share of what is there: it fits, but barely. */
const TIGHT = 0.8;
/** vCPUs per host core: TCG runs each on a host thread, so past a few per core guests miss their timers. */
export const VCPUS_PER_CORE_WARN = 2;
const VCPUS_PER_CORE_MAX = 4;

export function capacityVerdict(spec: ScenarioSpec, host: HostCapacity): CapacityVerdict {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const n = spec.nodes.length;
  const guestMiB = spec.nodes.reduce((sum, node) => sum + node.memory, 0);
  const memoryMiB = guestMiB + n * QEMU_OVERHEAD_MIB;
  const memory = `${n} node(s) need ${gib(memoryMiB * 2 ** 20)} of memory (${gib(guestMiB * 2 ** 20)} for the guests, ${QEMU_OVERHEAD_MIB} MiB for each QEMU); this host has ${gib(host.memoryAvailableMiB * 2 ** 20)} available`;
  if (memoryMiB > host.memoryAvailableMiB) refusals.push(memory);
  else if (memoryMiB > TIGHT * host.memoryAvailableMiB) warnings.push(`${memory}: it fits, but barely`);

  const vcpus = spec.nodes.reduce((sum, node) => sum + node.cpus, 0);
  const cpus = `${n} node(s) have ${vcpus} vCPUs together; this host has ${host.cores} core(s)`;
  if (vcpus > VCPUS_PER_CORE_MAX * host.cores)
    refusals.push(`${cpus}, and more than ${VCPUS_PER_CORE_MAX} per core leaves the guests' clocks and timeouts no chance`);
  else if (vcpus > VCPUS_PER_CORE_WARN * host.cores)
    warnings.push(`${cpus}: more than ${VCPUS_PER_CORE_WARN} per core makes every step slower`);

  const diskBytes = n * diskSizeBytes(spec.image);
  const disk = `${n} node(s) can grow their overlays to ${gib(diskBytes)} (the ${spec.image} image's disk each) in ${stateDir()}, which has ${gib(host.stateFreeBytes)} free`;
  if (diskBytes > host.stateFreeBytes) refusals.push(disk);
  else if (diskBytes > TIGHT * host.stateFreeBytes) warnings.push(`${disk}: it fits, but barely`);
  return { refusals, warnings };
}

/** Refuses (bad input: nothing has started) a scenario this host cannot hold now; warns when it barely fits. */
export function ensureCapacity(spec: ScenarioSpec, log: Logger, host: HostCapacity = hostCapacity()): void {
  const { refusals, warnings } = capacityVerdict(spec, host);
  if (refusals.length) throw new InputError(`this host cannot hold scenario ${spec.name}`, refusals);
  for (const warning of warnings) log.warn(warning);
}

/** The host as it is now. */
export function hostCapacity(): HostCapacity {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const kib = Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0);
  return { memoryAvailableMiB: Math.floor(kib / 1024), cores: availableParallelism(), stateFreeBytes: freeBytes(stateDir()) };
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
