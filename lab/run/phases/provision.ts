import { runSteps } from '../../provision/runner.js';
import { nodeArch, type Phase } from '../context.js';

/** Runs the scenario's provisioner steps in order. */
export const provisionPhase: Phase = {
  name: 'provision',
  applies: (ctx) => ctx.scenario.spec.provision.length > 0,
  async execute(ctx) {
    const nodes = ctx.scenario.spec.nodes.map((node) => {
      const machine = ctx.machines.get(node.name);
      if (!machine) throw new Error(`${node.name} is not connected`);
      return { name: node.name, role: node.role, arch: nodeArch(ctx, node), address: ctx.addresses.get(node.name) ?? '', machine };
    });
    await runSteps({
      steps: ctx.scenario.spec.provision,
      nodes,
      env: ctx.env,
      scenarioDir: ctx.scenario.dir,
      runId: ctx.runId,
      logsDir: ctx.logsDir,
      runDir: ctx.runDir,
      results: ctx.summary.steps,
      log: ctx.log,
      signal: ctx.signal,
    });
  },
};
