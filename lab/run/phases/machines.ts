import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { assignAddresses, clusterMac, parseCidr } from '../../net/addressing.js';
import { ClusterSwitch } from '../../net/switch.js';
import { Machine } from '../../remote/machine.js';
import { connectWhenReady } from '../../remote/ssh.js';
import type { Arch, NodeSpec } from '../../scenario/schema.js';
import { tail } from '../../util/errors.js';
import { mapLimit } from '../../util/limit.js';
import { nodeArch, type Phase, type RunContext } from '../context.js';

/** Seconds from QEMU start to an SSH login, measured under TCG on 2 cores, with room for load. */
export const DEFAULT_BOOT_SECONDS: Record<Arch, number> = { amd64: 150, arm64: 300 };

/**
 * Starts the run's cluster switch, boots every node (at most one per core at once) and logs in
 * over SSH. The first node that fails to boot stops the others' boots at once; then every node
 * learns every other's name in /etc/hosts.
 */
export const machinesPhase: Phase = {
  name: 'machines',
  async execute(ctx) {
    const cidr = parseCidr(ctx.scenario.spec.network.cidr);
    if (!cidr) throw new Error(`invalid cluster network ${ctx.scenario.spec.network.cidr}`);
    ctx.addresses = assignAddresses(ctx.scenario.spec.nodes, cidr);
    const link = new ClusterSwitch(ctx.stateDir, ctx.persistent);
    await link.start();
    ctx.scope.defer('cluster switch', () => link.stop());
    if (ctx.driver.open) {
      await ctx.driver.open({ runId: ctx.runId, stateDir: ctx.stateDir, logDir: ctx.logsDir, persistent: ctx.persistent, log: ctx.log });
      ctx.scope.defer(`${ctx.driver.name} driver`, () => ctx.driver.close?.() ?? Promise.resolve());
    }

    const bootGroup = new AbortController();
    const signal = AbortSignal.any([ctx.signal, bootGroup.signal]);
    await mapLimit(ctx.scenario.spec.nodes, Math.max(1, availableParallelism()), async (node, index) => {
      try {
        signal.throwIfAborted();
        await bootNode(
          ctx,
          node,
          { switchDir: link.socketDir, mac: clusterMac(index), address: `${ctx.addresses.get(node.name)}/${cidr.prefix}` },
          signal,
        );
      } catch (error) {
        bootGroup.abort(new Error(`another node failed to boot`));
        throw error;
      }
    });

    const hosts = ctx.scenario.spec.nodes.map((n) => `${ctx.addresses.get(n.name)} ${n.name}`).join('\n');
    await Promise.all(
      [...ctx.machines.values()].map((machine) =>
        machine.succeed(
          `sed -i '/# lab cluster$/d' /etc/hosts && printf '%s\\n' ${hosts
            .split('\n')
            .map((l) => `'${l} # lab cluster'`)
            .join(' ')} >> /etc/hosts`,
        ),
      ),
    );
  },
};

async function bootNode(
  ctx: RunContext,
  node: NodeSpec,
  cluster: { switchDir: string; mac: string; address: string },
  signal: AbortSignal,
): Promise<void> {
  const arch = nodeArch(ctx, node);
  const image = ctx.images.get(arch);
  if (!image) throw new Error(`no image for ${arch}`);
  const bootSeconds = ctx.scenario.spec.timeouts.boot ?? DEFAULT_BOOT_SECONDS[arch];
  await ctx.log.step(
    `booting ${node.name} (${arch}, ${node.cpus} vCPU, ${node.memory} MiB, ${cluster.address}; up to ${bootSeconds} s)`,
    async () => {
      const vm = await ctx.driver.create({
        runId: ctx.runId,
        name: node.name,
        arch,
        cpus: node.cpus,
        memoryMiB: node.memory,
        image,
        stateDir: join(ctx.stateDir, 'nodes', node.name),
        logDir: join(ctx.logsDir, node.name),
        cluster: { switchDir: cluster.switchDir, mac: cluster.mac, address: cluster.address },
        persistent: ctx.persistent,
      });
      ctx.scope.defer(`VM ${node.name}`, () => ctx.driver.destroy(vm));
      ctx.vms.set(node.name, vm);
      await ctx.driver.start(vm, signal);
      try {
        const session = await connectWhenReady(vm.ssh, {
          what: `an SSH login on ${node.name} (${vm.ssh.host}:${vm.ssh.port})`,
          timeoutMs: bootSeconds * 1000,
          signal,
          stillBooting: () => (vm.exitReason() ? `the VM of ${node.name} stopped: ${vm.exitReason()}` : undefined),
        });
        const machine = new Machine(node.name, session);
        ctx.scope.defer(`SSH to ${node.name}`, () => machine.close());
        ctx.machines.set(node.name, machine);
      } catch (error) {
        if (signal.aborted && !ctx.signal.aborted) throw new Error(`stopped booting ${node.name}: ${(signal.reason as Error).message}`);
        const console = existsSync(vm.consoleLog) ? tail(readFileSync(vm.consoleLog, 'utf8'), 25) : '(no console output)';
        throw new Error(`${node.name} did not come up\nlast lines of its console (${vm.consoleLog}):\n${console}`, { cause: error });
      }
    },
  );
}
