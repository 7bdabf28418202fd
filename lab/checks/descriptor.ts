import type { SshEndpoint } from '../remote/ssh.js';
import type { Arch } from '../machines/arch.js';
import type { NodeControl } from '../machines/faults.js';

/**
 * What a check process knows about the live cluster. The orchestrator writes it to a file and
 * passes its path in LAB_CLUSTER; vitest workers cannot share objects with the lab process.
 */
export interface ClusterDescriptor {
  runId: string;
  scenario: { name: string; dir: string };
  /** The scenario's environment after overrides, as provisioners saw it. */
  env: Record<string, string>;
  nodes: NodeDescriptor[];
  /** The run's `logs/` folder, for attaching node logs to failures. */
  logsDir: string;
  /** The run's emulated OpenStack, as a client on the host reaches it (the scenario's `cloud:`). */
  cloud?: CloudAccess;
}

/** An openrc's worth: Keystone on 127.0.0.1 and the run's user; the guests reach the same cloud at its guest address. */
export interface CloudAccess {
  authUrl: string;
  username: string;
  password: string;
  project: string;
  region: string;
  /** The cloud's state folder (volumes, its request log). */
  dir: string;
}

export interface NodeDescriptor {
  name: string;
  role: 'master' | 'worker';
  arch: Arch;
  /** Address on the cluster link; the node's name resolves to it on every node. */
  address: string;
  ssh: SshEndpoint;
  consoleLog: string;
  /** The hypervisor's handle for the fault verbs (crash, reboot, block, pause); absent where the driver has none. */
  control?: NodeControl;
}

export const CLUSTER_ENV = 'LAB_CLUSTER';
/** Set to 1 when each check is to stop at its first failed step. */
export const FAIL_FAST_ENV = 'LAB_FAIL_FAST';
