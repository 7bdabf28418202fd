import { join } from 'node:path';
import { resolveCheck } from '../../checks/catalog.js';
import type { ClusterDescriptor } from '../../checks/descriptor.js';
import { runChecks } from '../../checks/runner.js';
import { RunFailed } from '../../util/errors.js';
import type { LiveNode, RunContext } from '../context.js';
import { cloudAccess, type RunCloud } from './cloud.js';

/** The scenario's check files, resolved as validation resolved them. */
export function checkFiles(ctx: RunContext): string[] {
  return ctx.scenario.spec.checks.map((name) => {
    const file = resolveCheck(name, ctx.scenario.dir);
    if (!file) throw new Error(`check ${name} disappeared since validation`);
    return file;
  });
}

export function clusterDescriptor(ctx: RunContext, nodes: LiveNode[], cloud?: RunCloud): ClusterDescriptor {
  return {
    runId: ctx.runId,
    scenario: { name: ctx.scenario.spec.name, dir: ctx.scenario.dir },
    env: ctx.env,
    logsDir: ctx.logsDir,
    nodes: nodes.map((node) => ({
      name: node.name,
      role: node.role,
      arch: node.arch,
      address: node.address,
      ssh: node.vm.ssh,
      consoleLog: node.vm.consoleLog,
      control: node.vm.control,
    })),
    ...(cloud ? { cloud: cloudAccess(cloud) } : {}),
  };
}

/** Runs the scenario's checks through vitest; any failed test fails the phase. */
export async function runScenarioChecks(ctx: RunContext, nodes: LiveNode[], cloud?: RunCloud): Promise<void> {
  const files = checkFiles(ctx);
  await ctx.log.step(`checks: ${ctx.scenario.spec.checks.join(', ')}`, async () => {
    const results = await runChecks({
      files,
      descriptor: clusterDescriptor(ctx, nodes, cloud),
      workDir: join(ctx.stateDir, 'checks'),
      allureResultsDir: join(ctx.runDir, 'allure-results'),
      timeoutSeconds: ctx.scenario.spec.timeouts.checks,
      log: ctx.log,
      signal: ctx.signal,
    });
    ctx.summary.checks.push(...results);
    ctx.signal.throwIfAborted();
    const failed = results.filter((r) => r.status === 'failed');
    if (results.length === 0) throw new RunFailed('the checks ran no test');
    if (failed.length) throw new RunFailed(`${failed.length} of ${results.length} checks failed: ${failed.map((f) => f.name).join('; ')}`);
  });
}
