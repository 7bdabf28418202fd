import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../remote/machine.js';
import { connectWhenReady } from '../../remote/ssh.js';
import type { Arch } from '../../scenario/schema.js';
import { tail } from '../../util/errors.js';
import { mapLimit } from '../../util/limit.js';
import { nodeArch, type Phase, type RunContext } from '../context.js';

/** Seconds from QEMU start to an SSH login, measured under TCG on 2 cores, with room for load. */
export const DEFAULT_BOOT_SECONDS: Record<Arch, number> = { amd64: 150, arm64: 300 };

/** Boots every node (at most one per core at once) and logs in over SSH. */
export const machinesPhase: Phase = {
  name: 'machines',
  async execute(ctx) {
    const limit = Math.max(1, availableParallelism());
    await mapLimit(ctx.scenario.spec.nodes, limit, (node) => bootNode(ctx, node));
  },
};

async function bootNode(ctx: RunContext, node: RunContext['scenario']['spec']['nodes'][number]): Promise<void> {
  const arch = nodeArch(ctx, node);
  const image = ctx.images.get(arch);
  if (!image) throw new Error(`no image for ${arch}`);
  const bootSeconds = ctx.scenario.spec.timeouts.boot ?? DEFAULT_BOOT_SECONDS[arch];
  await ctx.log.step(`booting ${node.name} (${arch}, ${node.cpus} vCPU, ${node.memory} MiB; up to ${bootSeconds} s)`, async () => {
    const vm = await ctx.driver.create({
      runId: ctx.runId,
      name: node.name,
      arch,
      cpus: node.cpus,
      memoryMiB: node.memory,
      image,
      stateDir: join(ctx.stateDir, 'nodes', node.name),
      logDir: join(ctx.logsDir, node.name),
    });
    ctx.scope.defer(`VM ${node.name}`, () => ctx.driver.destroy(vm));
    ctx.vms.set(node.name, vm);
    await ctx.driver.start(vm, ctx.signal);
    try {
      const session = await connectWhenReady(vm.ssh, {
        what: `an SSH login on ${node.name} (127.0.0.1:${vm.ssh.port})`,
        timeoutMs: bootSeconds * 1000,
        signal: ctx.signal,
        stillBooting: () => (vm.exitReason() ? `the VM of ${node.name} stopped: ${vm.exitReason()}` : undefined),
      });
      const machine = new Machine(node.name, session);
      ctx.scope.defer(`SSH to ${node.name}`, () => machine.close());
      ctx.machines.set(node.name, machine);
    } catch (error) {
      const console = existsSync(vm.consoleLog) ? tail(readFileSync(vm.consoleLog, 'utf8'), 25) : '(no console output)';
      throw new Error(`${node.name} did not come up\nlast lines of its console (${vm.consoleLog}):\n${console}`, { cause: error });
    }
  });
}
