import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import { QemuDriver } from '../machines/qemu/driver.js';
import type { Driver } from '../machines/driver.js';
import { LibvirtDriver } from '../machines/libvirt/driver.js';
import { VagrantDriver } from '../machines/vagrant/driver.js';
import type { DriverName } from '../scenario/schema.js';
import { writeSummary, verdictOf, type PhaseResult, type RunSummary } from '../report/summary.js';
import { loadScenario, type Overrides } from '../scenario/loader.js';
import { describeError, RunFailed } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { reportsDir } from '../util/paths.js';
import { Scope } from '../util/scope.js';
import type { Phase, RunContext } from './context.js';
import { certificatesPhase } from './phases/certificates.js';
import { checksPhase } from './phases/checks.js';
import { imagesPhase } from './phases/images.js';
import { machinesPhase } from './phases/machines.js';
import { payloadPhase } from './phases/payload.js';
import { provisionPhase } from './phases/provision.js';
import { writeReports } from './phases/report.js';
import { collectJournals, destroy } from './phases/teardown.js';
import { markKept, reapOrphans, registerRun, unregisterRun } from './registry.js';
import { checkFiles, clusterDescriptor } from './phases/checks.js';

export type KeepPolicy = 'never' | 'failed' | 'always';

export interface RunOptions {
  scenario: string;
  overrides?: Overrides;
  /** Whether the VMs outlive the run: never (default), when it failed, or always. */
  keep?: KeepPolicy;
  log: Logger;
  signal: AbortSignal;
}

export interface RunOutcome {
  summary: RunSummary;
  runDir: string;
  exitCode: 0 | 1 | 130;
}

/** Every driver, for `lab doctor` and for finding the processes of killed runs. */
export const drivers = (): Driver[] => [new QemuDriver(), new LibvirtDriver(), new VagrantDriver()];

/** The driver that makes a scenario's VMs. */
export function driverFor(name: DriverName): Driver {
  switch (name) {
    case 'qemu':
      return new QemuDriver();
    case 'libvirt':
      return new LibvirtDriver();
    case 'vagrant':
      return new VagrantDriver();
  }
}

/**
 * `lab run`: scenario -> images -> machines -> provision -> checks, then always: journals,
 * destroy (or keep, when asked), report. The first failing phase stops the ones after it. Bad
 * input throws InputError before anything has started.
 */
export async function runScenario(options: RunOptions): Promise<RunOutcome> {
  const scenario = loadScenario(options.scenario, options.overrides);
  const { spec } = scenario;
  const { log } = options;
  await reapOrphans(drivers(), log);

  const runId = `${spec.name}-${timestamp()}-${randomBytes(2).toString('hex')}`;
  const runDir = join(reportsDir(), runId);
  const logsDir = join(runDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  log.tee(join(logsDir, 'lab.log'));
  const stateDir = registerRun({
    runId,
    scenario: scenario.files[0] ?? options.scenario,
    reportDir: runDir,
    startedAt: new Date().toISOString(),
  });
  log.info(
    `run ${runId}: ${spec.nodes.length} node(s), driver ${spec.driver}, payload ${spec.payload}; report in ${relative(process.cwd(), runDir) || runDir}`,
  );

  const ctx: RunContext = {
    runId,
    scenario,
    env: Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, String(v)])),
    runDir,
    logsDir,
    stateDir,
    driver: driverFor(spec.driver),
    log,
    signal: options.signal,
    scope: new Scope(log),
    images: new Map(),
    bundles: new Map(),
    vms: new Map(),
    machines: new Map(),
    addresses: new Map(),
    persistent: (options.keep ?? 'never') !== 'never',
    summary: {
      runId,
      scenario: {
        name: spec.name,
        file: scenario.files[0] ?? '',
        axes: { arch: [...new Set(spec.nodes.map((n) => n.arch ?? spec.arch))].join('+'), driver: spec.driver, payload: spec.payload },
      },
      nodes: spec.nodes.map((n) => ({ name: n.name, role: n.role, arch: n.arch ?? spec.arch })),
      startedAt: new Date().toISOString(),
      finishedAt: '',
      seconds: 0,
      verdict: 'error',
      phases: [],
      steps: [],
      checks: [],
    },
  };
  const started = performance.now();

  const lifecycle: Phase[] = [imagesPhase, machinesPhase, certificatesPhase, payloadPhase, provisionPhase, checksPhase];
  let failure: unknown;
  for (const phase of lifecycle) {
    // After a failure, and for phases without work in this scenario, the phase is recorded as skipped.
    if (failure || (phase.applies && !phase.applies(ctx))) {
      ctx.summary.phases.push({ name: phase.name, status: 'skipped', seconds: 0 });
      continue;
    }
    failure = await timed(ctx, phase.name, () => phase.execute(ctx));
    if (failure) failure = await withDeadVms(ctx, failure);
  }
  if (failure && !(failure instanceof RunFailed)) log.info(`\n${describeError(failure)}\n`);
  else if (failure) log.info(`\n${(failure as Error).message}\n`);

  // Keep the VMs when asked to (never on Ctrl-C: the user wants the lab gone).
  const keep = !options.signal.aborted && (options.keep === 'always' || (options.keep === 'failed' && failure !== undefined));
  if (keep) {
    await timed(ctx, 'keep', async () => {
      await collectJournals(ctx);
      await keepRun(ctx);
    });
  } else {
    await timed(ctx, 'destroy', async () => {
      if (!options.signal.aborted) await collectJournals(ctx);
      await destroy(ctx);
      unregisterRun(runId);
    });
  }

  ctx.summary.finishedAt = new Date().toISOString();
  ctx.summary.seconds = round((performance.now() - started) / 1000);
  const interrupted = options.signal.aborted;
  ctx.summary.verdict = interrupted ? 'error' : failure && !(failure instanceof RunFailed) ? 'error' : verdictOf(ctx.summary);
  if (failure) ctx.summary.error = describeError(failure);
  if (interrupted) ctx.summary.error = 'interrupted';
  const reportFailure = await timed(ctx, 'report', () => writeReports(ctx));
  if (reportFailure) {
    ctx.summary.verdict = 'error';
    writeSummary(join(runDir, 'summary.json'), ctx.summary);
  }

  const verdict = ctx.summary.verdict;
  log.info(
    `run ${runId}: ${verdict.toUpperCase()} in ${ctx.summary.seconds} s (${ctx.summary.checks.filter((c) => c.status === 'passed').length}/${ctx.summary.checks.length} checks passed)`,
  );
  log.info(`report: ${join(runDir, 'report.html')}  junit: ${join(runDir, 'junit.xml')}  summary: ${join(runDir, 'summary.json')}`);
  if (keep) {
    log.info(`kept: the VMs of ${runId} keep running. Reach them with:`);
    for (const node of spec.nodes) log.info(`  lab ssh ${node.name} --run ${runId}`);
    log.info(`  lab verify --run ${runId}     (runs the checks again)`);
    log.info(`  lab down ${runId}             (destroys them; lab down --all for every kept run)`);
  }
  return { summary: ctx.summary, runDir, exitCode: interrupted ? 130 : verdict === 'passed' ? 0 : 1 };
}

/** Leaves the VMs running, closes the lab's connections and records how to reach the run again. */
async function keepRun(ctx: RunContext): Promise<void> {
  for (const machine of ctx.machines.values()) machine.close();
  await ctx.driver.close?.({ keep: true });
  const descriptorFile = join(ctx.stateDir, 'cluster.json');
  writeFileSync(descriptorFile, `${JSON.stringify(clusterDescriptor(ctx), null, 2)}\n`);
  markKept(ctx.runId, { keptAt: new Date().toISOString(), descriptorFile, checks: checkFiles(ctx) });
}

/** Time for a dying VM's exit to be noticed: its SSH connection can break before its process is reaped. */
const EXIT_NOTICE_MS = 1500;

/** A phase that failed because a VM died says so: the dead VM is the cause a user needs to see. */
async function withDeadVms(ctx: RunContext, failure: unknown): Promise<unknown> {
  const reasons = await Promise.all([...ctx.vms.values()].map(async (vm) => ({ vm, reason: await vm.stoppedWithin(EXIT_NOTICE_MS) })));
  const dead = reasons
    .filter(({ reason }) => reason)
    .map(({ vm, reason }) => `the VM of ${vm.spec.name} stopped during the run: ${reason}`);
  if (!dead.length) return failure;
  const error = new RunFailed(`${dead.join('\n')}\n${failure instanceof Error ? failure.message : String(failure)}`);
  const phase = ctx.summary.phases.at(-1);
  if (phase) phase.error = error.message;
  return error;
}

/** Runs one phase, records it in the summary, and returns its error instead of throwing. */
async function timed(ctx: RunContext, name: string, fn: () => Promise<void>): Promise<unknown> {
  const started = performance.now();
  const record: PhaseResult = { name, status: 'passed', seconds: 0 };
  try {
    await fn();
    return undefined;
  } catch (error) {
    record.status = 'failed';
    record.error = describeError(error);
    return error;
  } finally {
    record.seconds = round((performance.now() - started) / 1000);
    ctx.summary.phases.push(record);
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
const timestamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
