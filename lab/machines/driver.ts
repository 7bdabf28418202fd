import type { Logger } from '../util/log.js';
import type { Image } from '../images/cache.js';
import type { SshEndpoint } from '../remote/ssh.js';
import type { Arch } from './arch.js';
import type { NodeControl } from './faults.js';
import type { DriverName } from './registry.js';

/** What a driver needs to make one VM. Nothing about Kubernetes or checks. */
export interface MachineSpec {
  runId: string;
  name: string;
  arch: Arch;
  cpus: number;
  memoryMiB: number;
  image: Image;
  /** Private folder for the overlay disk, sockets and PID files; removed by `destroy`. */
  stateDir: string;
  /** Where the serial console and the hypervisor's own log go (kept in the report). */
  logDir: string;
  /** The run's cluster link, when the scenario has one. */
  cluster?: ClusterNic;
  /** The VM may outlive the lab (a run that may be kept): not tied to the lab's process. */
  persistent?: boolean;
  /** Start from a saved state instead of booting: the VM comes up paused, as it was saved. */
  restore?: SavedVm;
  /** The SSH forward's port on 127.0.0.1, when it must be this one (a kept run reset in place). */
  sshPort?: number;
  /** Services of the host the guest reaches on its management network (the run's cloud). */
  hostServices?: HostService[];
}

/** A guest's connection to `address:port` on its management network goes to 127.0.0.1:`hostPort` on the host. */
export interface HostService {
  address: string;
  port: number;
  hostPort: number;
}

/** A node's port on the run's virtual switch. */
export interface ClusterNic {
  /** vde_switch socket folder. */
  switchDir: string;
  mac: string;
  /** Address with prefix, e.g. 10.77.0.11/24. */
  address: string;
}

/** One VM's part of a snapshot layer: its RAM and device state, and its disk frozen at the same instant. */
export interface SavedVm {
  /** The hypervisor's saved state (QEMU's migration stream, or libvirt's save image). */
  state: string;
  /** A qcow2 overlay holding what the VM wrote, over `diskBase`. */
  disk: string;
  /** The kernel command line the VM was booted with (a restore passes the same). */
  cmdline: string;
}

/** The run a driver works for. */
export interface RunHost {
  runId: string;
  /** The run's private state folder (removed with the run). */
  stateDir: string;
  logDir: string;
  /** The run may be kept: what the driver starts must be able to outlive the lab. */
  persistent: boolean;
  log: Logger;
}

/**
 * A VM the driver made. It owns its lifecycle, so nobody needs the driver's own VM type; stop and
 * destroy are idempotent.
 */
export interface Vm {
  readonly spec: MachineSpec;
  readonly ssh: SshEndpoint;
  readonly consoleLog: string;
  /** Boots the VM; one made with `spec.restore` loads that state and stays paused until `resume`. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops the VM at once (no guest shutdown: its overlays are thrown away). Idempotent. */
  stop(): Promise<void>;
  /** Stops the VM if needed and removes everything `create` made. Idempotent. */
  destroy(): Promise<void>;
  /** Why the VM is no longer running, or undefined while it runs. */
  exitReason(): string | undefined;
  /** Resolves with the exit reason once the VM stops, or undefined if it still runs after `ms`. */
  stoppedWithin(ms: number): Promise<string | undefined>;
  /** Present when the driver can save a running VM and bring it back (snapshot layers). */
  readonly snapshots?: VmSnapshots;
  /** How a check reaches the hypervisor to crash, reset, pause or cut off this VM; absent where the driver cannot. */
  readonly control?: NodeControl;
}

export interface VmSnapshots {
  /** Stops the guest's CPUs (the clock in the guest stops with them). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /**
   * With the VM paused: writes its state into `dir` (named after the node) and freezes its disk:
   * the VM goes on with a new overlay over it, and the frozen one is never written again (a
   * layer copies it once the VM runs again). The VM stays paused.
   */
  save(dir: string): Promise<{ state: string; frozenDisk: string; cmdline: string }>;
  /** The save replaces the VM's process (libvirt's does): connections into the guest must be made again. */
  readonly saveDropsConnections?: boolean;
}

export interface DriverInfo {
  name: DriverName;
  /** Problems that stop this driver from working here, each with what to do about it. */
  problems: string[];
  /** How guests run here, e.g. "tcg (KVM present but it hangs)". */
  acceleration: string;
}

/**
 * The narrow interface every driver implements (kind's Provider). `list` finds VMs by run ID
 * from the system itself, so a crashed `lab` can be cleaned up later.
 */
export interface Driver {
  readonly name: DriverName;
  info(): Promise<DriverInfo>;
  /** Sets up what the run's VMs share (a private libvirtd, a Vagrant project) before the first `create`. */
  open?(run: RunHost): Promise<void>;
  /** Undoes `open` once every VM is destroyed; with `keep`, only lets go of what the VMs still need. Idempotent. */
  close?(options?: { keep?: boolean }): Promise<void>;
  /** Prepares the VM (disk overlay, ports) without starting it. */
  create(spec: MachineSpec, signal?: AbortSignal): Promise<Vm>;
  /** Hypervisor processes of one run (or of every run), found on the system by their run label. */
  list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]>;
}
