import { spawn } from 'node:child_process';
import { GUEST_BUNDLE, payloadVersions, preparation } from '../../../payloads/images.js';
import { shellQuote } from '../../remote/ssh.js';
import { mapLimit } from '../../util/limit.js';
import { nodeArch, type Phase, type RunContext } from '../context.js';

/**
 * Puts the cluster software's images within the nodes' reach before the install runs: the
 * emulated bundle (built in the images phase) is copied to every node and named to the scripts
 * by OFFLINE_BUNDLE; with `payload: upstream` every node pulls the real images instead.
 * Applies to scenarios on the docker image that name a K8S_VERSION.
 */
export const payloadPhase: Phase = {
  name: 'payload',
  applies: needsPayload,
  async execute(ctx) {
    const versions = payloadVersions(ctx.env);
    const source = ctx.scenario.spec.payload;
    // Two nodes at a time: the copies compete with the VMs for the host's cores (SSH encryption).
    await mapLimit(ctx.scenario.spec.nodes, 2, async (node) => {
      const machine = ctx.machines.get(node.name);
      if (!machine) throw new Error(`${node.name} is not connected`);
      const arch = nodeArch(ctx, node);
      const plan = preparation(source, versions, arch);
      Object.assign(ctx.env, plan.env);
      for (const command of plan.commands) await machine.succeed(command, { timeout: 600, signal: ctx.signal });
      if (source === 'upstream') return;
      const bundle = ctx.bundles.get(arch);
      if (!bundle) throw new Error(`no payload bundle was built for ${arch}`);
      await ctx.log.step(`copying the ${arch} payload (${Math.round(bundle.bytes / 1e6)} MB) to ${node.name}`, () =>
        machine.succeed(`mkdir -p ${shellQuote(GUEST_BUNDLE.replace(/\/[^/]+$/, ''))} && cat > ${shellQuote(GUEST_BUNDLE)}`, {
          timeout: 600,
          signal: ctx.signal,
          stdin: (channel) => spawn('cat', [bundle.file], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout.pipe(channel),
        }),
      );
    });
  },
};

export function needsPayload(ctx: Pick<RunContext, 'scenario' | 'env'>): boolean {
  return ctx.scenario.spec.image === 'docker' && Boolean(ctx.env.K8S_VERSION);
}
