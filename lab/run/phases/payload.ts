import { spawn } from 'node:child_process';
import { GUEST_BUNDLE, payloadVersions, preparation } from '../../../payloads/images.js';
import { shellQuote } from '../../remote/ssh.js';
import { mapLimit } from '../../util/limit.js';
import type { LiveNode, RunContext } from '../context.js';
import type { Prepared } from './images.js';

/**
 * Puts the cluster software's images within the nodes' reach before the install runs: the
 * emulated bundle (built in the images phase) is copied to every node and loaded there; with
 * `payload: upstream` every node pulls the real images instead.
 * Applies to scenarios on the docker image that name a K8S_VERSION.
 */
export async function deliverPayload(ctx: RunContext, nodes: LiveNode[], prepared: Prepared): Promise<void> {
  const versions = payloadVersions(ctx.env);
  const source = ctx.scenario.spec.payload;
  // Two nodes at a time: the copies compete with the VMs for the host's cores (SSH encryption).
  await mapLimit(nodes, 2, async ({ name, arch, machine }) => {
    const { commands } = preparation(source, versions, arch);
    // The load took 100 s on an idle host and 300 s beside two other VMs (amd64 under TCG).
    const runAll = async () => {
      for (const command of commands) await machine.succeed(command, { timeout: 1200, signal: ctx.signal });
    };
    if (source === 'upstream') return runAll();
    const bundle = prepared.bundles.get(arch);
    if (!bundle) throw new Error(`no payload bundle was built for ${arch}`);
    await ctx.log.step(`copying the ${arch} payload (${Math.round(bundle.bytes / 1e6)} MB) to ${name}`, () =>
      machine.succeed(`mkdir -p ${shellQuote(GUEST_BUNDLE.replace(/\/[^/]+$/, ''))} && cat > ${shellQuote(GUEST_BUNDLE)}`, {
        timeout: 600,
        signal: ctx.signal,
        stdin: (channel) => spawn('cat', [bundle.file], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout.pipe(channel),
      }),
    );
    await ctx.log.step(`loading it into ${name}'s Docker and its bootstrap daemon's data root`, runAll);
  });
}

export function needsPayload(ctx: Pick<RunContext, 'scenario' | 'env'>): boolean {
  return ctx.scenario.spec.image === 'docker' && Boolean(ctx.env.K8S_VERSION);
}

/**
 * What the payload adds to every step's environment (FLOCKER_INSTALL): the same
 * for every node and architecture, so it is worked out once, before the phases run.
 */
export function payloadEnv(ctx: Pick<RunContext, 'scenario' | 'env'>): Record<string, string> {
  if (!needsPayload(ctx)) return {};
  return preparation(ctx.scenario.spec.payload, payloadVersions(ctx.env), ctx.scenario.spec.arch).env;
}
