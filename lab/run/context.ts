import type { Arch } from '../machines/arch.js';
import type { Driver, Vm } from '../machines/driver.js';
import type { Machine } from '../remote/machine.js';
import type { RunSummary } from '../report/summary.js';
import type { LoadedScenario } from '../scenario/loader.js';
import type { NodeSpec } from '../scenario/schema.js';
import type { Logger } from '../util/log.js';
import type { Scope } from '../util/scope.js';

/** What every phase of one run shares: who it is, where it writes, how it logs and stops. */
export interface RunContext {
  runId: string;
  scenario: LoadedScenario;
  /**
   * The environment every step and check sees: the scenario's after overrides, plus what the
   * payload asks of the install (FLOCKER_INSTALL). Worked out once, before the phases run.
   */
  env: Record<string, string>;
  /** `reports/<run-id>/` */
  runDir: string;
  logsDir: string;
  /** `<state>/runs/<run-id>/`: overlays, sockets, the cluster descriptor. */
  stateDir: string;
  driver: Driver;
  log: Logger;
  signal: AbortSignal;
  /** Owns VMs and connections; released in reverse order at the end. */
  scope: Scope;
  summary: RunSummary;
  /** The run may be kept: its VMs and switch must be able to outlive the lab. */
  persistent: boolean;
}

/** A node of the live cluster: the scenario's node, its VM and its SSH session. */
export interface LiveNode {
  name: string;
  role: NodeSpec['role'];
  arch: Arch;
  /** Address on the cluster link. */
  address: string;
  vm: Vm;
  machine: Machine;
}

export const nodeArch = (ctx: Pick<RunContext, 'scenario'>, node: { arch?: Arch }): Arch => node.arch ?? ctx.scenario.spec.arch;
