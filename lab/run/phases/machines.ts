import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Arch } from '../../machines/arch.js';
import type { HostService, MachineSpec, SavedVm, Vm } from '../../machines/driver.js';
import { Machine } from '../../remote/machine.js';
import { connectWhenReady } from '../../remote/ssh.js';
import type { NodeSpec } from '../../scenario/schema.js';
import { resumeTogether, stepClocks } from '../../snapshots/resume.js';
import type { Layer } from '../../snapshots/store.js';
import { consoleTail } from '../../util/errors.js';
import { mapLimit } from '../../util/limit.js';
import { nodeArch, type LiveNode, type RunContext } from '../context.js';
import type { Prepared } from './images.js';
import type { ClusterNetwork } from './network.js';

/** Seconds from QEMU start to an SSH login, measured under TCG on 2 cores, with room for load. */
export const DEFAULT_BOOT_SECONDS: Record<Arch, number> = { amd64: 150, arm64: 300 };
/** A restored guest is up already: only its SSH session has to be made. */
const RESTORED_LOGIN_SECONDS = 90;

/**
 * Boots every node (at most one per core at once) and logs in over SSH. The first node that
 * fails to boot stops the others' boots at once; then every node learns every other's name in
 * /etc/hosts.
 */
export async function bootMachines(ctx: RunContext, prepared: Prepared, network: ClusterNetwork, vms: Vm[], services: HostService[] = []): Promise<LiveNode[]> {
  await openDriver(ctx);
  const nodes = await startAll(ctx, prepared, network, vms, undefined, services);
  const hosts = ctx.scenario.spec.nodes.map((n) => `'${network.addresses.get(n.name)} ${n.name} # lab cluster'`).join(' ');
  await Promise.all(
    nodes.map(({ machine }) => machine.succeed(`sed -i '/# lab cluster$/d' /etc/hosts && printf '%s\\n' ${hosts} >> /etc/hosts`)),
  );
  return nodes;
}

/**
 * Starts every node from its saved state in a snapshot layer, on a new overlay over the layer's
 * read-only disk and on this run's own cluster link; all are loaded paused, resumed together,
 * logged into, and have their clocks stepped to the host's.
 */
export async function restoreMachines(
  ctx: RunContext,
  prepared: Prepared,
  network: ClusterNetwork,
  layer: Layer,
  vms: Vm[],
  services: HostService[] = [],
): Promise<LiveNode[]> {
  await openDriver(ctx);
  const saved = new Map(
    layer.nodes.map((node) => [node.name, { state: join(layer.dir, node.state), disk: join(layer.dir, node.disk), cmdline: node.cmdline }]),
  );
  const nodes = await startAll(ctx, prepared, network, vms, saved, services);
  await stepClocks(
    nodes.map((node) => node.machine),
    ctx.log,
  );
  return nodes;
}

async function openDriver(ctx: RunContext): Promise<void> {
  if (!ctx.driver.open) return;
  await ctx.driver.open({ runId: ctx.runId, stateDir: ctx.stateDir, logDir: ctx.logsDir, persistent: ctx.persistent, log: ctx.log });
  ctx.scope.defer(`${ctx.driver.name} driver`, () => ctx.driver.close?.() ?? Promise.resolve());
}

/** The driver's input for one node of this run; `services` are the host's services its guest reaches (the run's cloud). */
export function machineSpec(
  ctx: RunContext,
  node: NodeSpec,
  prepared: Prepared,
  network: ClusterNetwork,
  restore?: SavedVm,
  services: HostService[] = [],
): MachineSpec {
  const arch = nodeArch(ctx, node);
  const image = prepared.images.get(arch);
  if (!image) throw new Error(`no image for ${arch}`);
  return {
    runId: ctx.runId,
    name: node.name,
    arch,
    cpus: node.cpus,
    memoryMiB: node.memory,
    image,
    stateDir: join(ctx.stateDir, 'nodes', node.name),
    logDir: join(ctx.logsDir, node.name),
    cluster: {
      switchDir: network.switchDir,
      mac: network.macs.get(node.name) ?? '',
      address: `${network.addresses.get(node.name)}/${network.cidr.prefix}`,
    },
    persistent: ctx.persistent,
    ...(restore ? { restore } : {}),
    ...(services.length ? { hostServices: services } : {}),
  };
}

/** Every VM it makes goes into `vms` at once, so that teardown finds it whatever happens next. */
async function startAll(
  ctx: RunContext,
  prepared: Prepared,
  network: ClusterNetwork,
  vms: Vm[],
  saved: Map<string, SavedVm> | undefined,
  services: HostService[],
): Promise<LiveNode[]> {
  const group = new AbortController();
  const signal = AbortSignal.any([ctx.signal, group.signal]);
  // At most one node per core starts at once; the first that fails stops the others.
  const each = <T>(fn: (node: NodeSpec) => Promise<T>) =>
    mapLimit(ctx.scenario.spec.nodes, Math.max(1, availableParallelism()), async (node) => {
      try {
        signal.throwIfAborted();
        return await fn(node);
      } catch (error) {
        group.abort(new Error(`another node failed to start`));
        throw error;
      }
    });
  const spec = (node: NodeSpec) => machineSpec(ctx, node, prepared, network, saved?.get(node.name), services);
  if (!saved) return each(async (node) => (await startNode(ctx, node, spec(node), vms, signal)).login());
  // Restored nodes only load their state, paused; they go on together.
  const loaded = await each((node) => startNode(ctx, node, spec(node), vms, signal));
  await ctx.log.step(`resuming ${loaded.length} node(s) together`, () => resumeTogether(loaded.map((node) => node.vm)));
  return ctx.log.step('logging in to the restored nodes', () => Promise.all(loaded.map((node) => node.login())));
}

/** Creates and starts one node's VM; a booted one is logged into within its step, a restored one only loaded (`login` after the resume). */
async function startNode(ctx: RunContext, node: NodeSpec, spec: MachineSpec, vms: Vm[], signal: AbortSignal) {
  const arch = spec.arch;
  const bootSeconds = spec.restore ? RESTORED_LOGIN_SECONDS : (ctx.scenario.spec.timeouts.boot ?? DEFAULT_BOOT_SECONDS[arch]);
  let vm: Vm | undefined;
  const login = async (): Promise<LiveNode> => {
    const started = vm as Vm;
    try {
      const session = await connectWhenReady(started.ssh, {
        what: `an SSH login on ${node.name} (${started.ssh.host}:${started.ssh.port})`,
        timeoutMs: bootSeconds * 1000,
        signal,
        stillBooting: () => (started.exitReason() ? `the VM of ${node.name} stopped: ${started.exitReason()}` : undefined),
      });
      const machine = new Machine(node.name, session);
      ctx.scope.defer(`SSH to ${node.name}`, () => machine.close());
      return { name: node.name, role: node.role, arch, address: spec.cluster?.address.split('/')[0] ?? '', vm: started, machine };
    } catch (error) {
      if (signal.aborted && !ctx.signal.aborted) throw new Error(`stopped starting ${node.name}: ${(signal.reason as Error).message}`);
      throw new Error(`${node.name} did not come up\n${consoleTail(started.consoleLog)}`, { cause: error });
    }
  };
  const title = spec.restore
    ? `restoring ${node.name} (${arch}, ${node.cpus} vCPU, ${node.memory} MiB, ${spec.cluster?.address})`
    : `booting ${node.name} (${arch}, ${node.cpus} vCPU, ${node.memory} MiB, ${spec.cluster?.address}; up to ${bootSeconds} s)`;
  const booted = await ctx.log.step(title, async () => {
    vm = await ctx.driver.create(spec, signal);
    vms.push(vm);
    const made = vm;
    ctx.scope.defer(`VM ${node.name}`, () => made.destroy());
    await vm.start(signal);
    return spec.restore ? undefined : login();
  });
  return { vm: vm as Vm, login: () => booted ?? login() };
}
