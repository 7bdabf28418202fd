import type { Bundle } from '../../payloads/bundle/bundle.js';
import type { Image } from '../images/cache.js';
import type { Driver, Vm } from '../machines/driver.js';
import type { Machine } from '../remote/machine.js';
import type { RunSummary } from '../report/summary.js';
import type { LoadedScenario } from '../scenario/loader.js';
import type { Arch } from '../scenario/schema.js';
import type { Logger } from '../util/log.js';
import type { Scope } from '../util/scope.js';

/** Everything the phases of one run share. Only the orchestrator decides their order. */
export interface RunContext {
  runId: string;
  scenario: LoadedScenario;
  /** The scenario's environment after overrides, as strings. */
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
  images: Map<Arch, Image>;
  /** The emulated payload's image bundle per architecture, when the scenario installs Kubernetes. */
  bundles: Map<Arch, Bundle>;
  vms: Map<string, Vm>;
  machines: Map<string, Machine>;
  /** Each node's address on the cluster link. */
  addresses: Map<string, string>;
  /** The run may be kept: its VMs and switch must be able to outlive the lab. */
  persistent: boolean;
}

/** One step of the lifecycle (kind's actions): images, machines, provision, checks. */
export interface Phase {
  name: string;
  /** Whether the phase has work in this run; a phase without work is recorded as skipped. */
  applies?(ctx: RunContext): boolean;
  execute(ctx: RunContext): Promise<void>;
}

export const nodeArch = (ctx: RunContext, node: { arch?: Arch }): Arch => node.arch ?? ctx.scenario.spec.arch;
