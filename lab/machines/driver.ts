import type { Logger } from '../util/log.js';
import type { Image } from '../images/cache.js';
import type { SshEndpoint } from '../remote/ssh.js';
import type { Arch, DriverName } from '../scenario/schema.js';

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
}

/** A node's port on the run's virtual switch. */
export interface ClusterNic {
  /** vde_switch socket folder. */
  switchDir: string;
  mac: string;
  /** Address with prefix, e.g. 10.77.0.11/24. */
  address: string;
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

/** A VM the driver created. */
export interface Vm {
  spec: MachineSpec;
  ssh: SshEndpoint;
  consoleLog: string;
  /** Why the VM is no longer running, or undefined while it runs. */
  exitReason(): string | undefined;
  /** Resolves with the exit reason once the VM stops, or undefined if it still runs after `ms`. */
  stoppedWithin(ms: number): Promise<string | undefined>;
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
  start(vm: Vm, signal?: AbortSignal): Promise<void>;
  /** Asks the guest to power off, and kills it after `graceMs`. Idempotent. */
  stop(vm: Vm, graceMs: number): Promise<void>;
  /** Stops the VM if needed and removes everything `create` made. Idempotent. */
  destroy(vm: Vm): Promise<void>;
  /** Hypervisor processes of one run (or of every run), found on the system by their run label. */
  list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]>;
}
