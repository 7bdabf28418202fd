import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { Vm } from '../machines/driver.js';
import { allDrivers, loadDriver } from '../machines/registry.js';
import { Provisioner } from '../provision/runner.js';
import { bugExitCode, bugLine, bugVerdict, type Expectation } from '../bugs/verdict.js';
import { snapshotLine, writeSummary, verdictOf, type PhaseResult, type RunSummary } from '../report/summary.js';
import { loadScenario, type Overrides } from '../scenario/loader.js';
import { describeError, InputError, RunFailed } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { folderStamp, reportsDir } from '../util/paths.js';
import { Scope } from '../util/scope.js';
import type { LiveNode, RunContext } from './context.js';
import { ensureCapacity } from './capacity.js';
import { keepRun } from './keep.js';
import { planLayers, Snapshots, type SnapshotMode } from './layers.js';
import { placeCertificates } from './phases/certificates.js';
import { runScenarioChecks } from './phases/checks.js';
import { prepareImages } from './phases/images.js';
import { bootMachines, restoreMachines } from './phases/machines.js';
import { startNetwork } from './phases/network.js';
import { joinCloud, startCloud, type RunCloud } from './phases/cloud.js';
import { deliverPayload, needsPayload, payloadEnv } from './phases/payload.js';
import { writeReports } from './phases/report.js';
import { collectJournals, destroy } from './phases/teardown.js';
import { reapOrphans, registerRun, unregisterRun } from './registry.js';

export type KeepPolicy = 'never' | 'failed' | 'always';

export interface RunOptions {
  scenario: string;
  overrides?: Overrides;
  /** Whether the VMs outlive the run: never (default), when it failed, or always. */
  keep?: KeepPolicy;
  /** on (default): restore the deepest cached layer and save the rest; fresh: save every layer anew; off: neither. */
  snapshots?: SnapshotMode;
  /** A scenario with a `bug:` is judged by it (bug, the default); pass runs it as a plain scenario (--expect=pass). */
  expect?: Expectation;
  /** The run's report folder (default: reports/<run id>): a matrix puts each cell's in its own folder, named after its values. */
  reportDir?: string;
  log: Logger;
  signal: AbortSignal;
}

export interface RunOutcome {
  summary: RunSummary;
  runDir: string;
  exitCode: 0 | 1 | 130;
}

/** The env variables a run's report names among its axes when the scenario sets them. */
const AXIS_VARIABLES = ['K8S_VERSION', 'FLANNEL_BACKEND', 'FLOCKER_VERSION', 'FLOCKER_DATASET_BACKEND'];

/** The lifecycle's phases in order; those a run never reached are recorded as skipped. */
const PHASES = ['images', 'network', 'machines', 'payload', 'provision', 'checks'] as const;
type PhaseName = (typeof PHASES)[number];

/**
 * `lab run`: scenario -> images -> network -> machines (booted, or restored from the deepest
 * cached snapshot layer) -> payload -> provision -> checks, saving a layer after each phase and
 * step that changed the cluster; then always: journals, destroy (or keep, when
 * asked), report. The first failing phase stops the ones after it. Bad input throws InputError
 * before anything has started.
 */
export async function runScenario(options: RunOptions): Promise<RunOutcome> {
  const scenario = loadScenario(options.scenario, options.overrides);
  const { spec } = scenario;
  const { log } = options;
  ensureCapacity(spec, log);
  const driver = await loadDriver(spec.driver);
  // kind's validateProvider: a driver this host cannot run is refused before anything starts.
  const { problems } = await driver.info();
  if (problems.length) throw new InputError(`the ${spec.driver} driver cannot run on this host`, problems);
  await reapOrphans(await allDrivers(), log);

  const runId = `${spec.name}-${folderStamp()}-${randomBytes(2).toString('hex')}`;
  const runDir = options.reportDir ?? join(reportsDir(), runId);
  const logsDir = join(runDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  log.tee(join(logsDir, 'lab.log'), runDir);
  const stateDir = registerRun({
    runId,
    scenario: scenario.files[0] ?? options.scenario,
    reportDir: runDir,
    startedAt: new Date().toISOString(),
  });
  log.info(
    `run ${runId}: ${spec.nodes.length} node(s), driver ${spec.driver}, payload ${spec.payload}; report in ${relative(process.cwd(), runDir) || runDir}`,
  );

  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, String(v)]));
  const ctx: RunContext = {
    runId,
    scenario,
    env,
    runDir,
    logsDir,
    stateDir,
    driver,
    log,
    signal: options.signal,
    scope: new Scope(log),
    persistent: (options.keep ?? 'never') !== 'never',
    summary: {
      runId,
      scenario: {
        name: spec.name,
        file: scenario.files[0] ?? '',
        axes: {
          arch: [...new Set(spec.nodes.map((n) => n.arch ?? spec.arch))].join('+'),
          driver: spec.driver,
          payload: spec.payload,
          // What a matrix's cells differ in, as a report reader asks: the versions and backends, and what the caller changed.
          ...Object.fromEntries(AXIS_VARIABLES.filter((name) => spec.env[name] !== undefined).map((name) => [name, String(spec.env[name])])),
          ...scenario.changedEnv,
        },
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
  Object.assign(ctx.env, payloadEnv(ctx));
  const started = performance.now();
  const vms: Vm[] = [];
  let nodes: LiveNode[] = [];
  let snapshots: Snapshots | undefined;
  let cloud: RunCloud | undefined;

  const phase = <T>(name: PhaseName, work: () => Promise<T>, restored = false) => timed(ctx, name, work, restored);
  const skip = (name: PhaseName) => ctx.summary.phases.push({ name, status: 'skipped', seconds: 0 });
  let failure: unknown;
  try {
    const prepared = await phase('images', () => prepareImages(ctx));
    const network = await phase('network', () => startNetwork(ctx));
    const cache = new Snapshots(ctx, Snapshots.mode(ctx, options.snapshots ?? 'on'), await planLayers(ctx, prepared, network));
    snapshots = cache;
    const provisioner = () => new Provisioner({ nodes, env: ctx.env, scenario, runId, logsDir, runDir, log, signal: ctx.signal });

    nodes = await phase('machines', async () => {
      const layer = await cache.lookup(prepared);
      cloud = await startCloud(ctx, layer && cache.cloudIdentity());
      cache.cloud = cloud;
      if (!layer) {
        const bootStarted = performance.now();
        const booted = await bootMachines(ctx, prepared, network, vms, cloud?.services);
        if (cloud) await joinCloud(cloud, booted);
        await cache.save('machines', booted, seconds(bootStarted));
        return booted;
      }
      log.info(
        `snapshots: restoring layer ${layer.depth} of ${cache.plan.length} (${layer.name}), ${layer.key}, made ${layer.madeAt} by ${layer.madeBy}`,
      );
      const restoreStarted = performance.now();
      const restored = await restoreMachines(ctx, prepared, network, layer, vms, cloud?.services);
      if (cloud) await joinCloud(cloud, restored);
      cache.restoreSecrets();
      const summary = ctx.summary.snapshot;
      if (summary && cache.from)
        summary.restored = { ...cache.from, depth: layer.depth, name: layer.name, seconds: seconds(restoreStarted) };
      return restored;
    });
    if (cache.restored) {
      // The layer notes the env it was made with; this run keeps its own (--set and the host's
      // variables may differ in names no step of the restored layers reads).
      // Whatever the restored layer's steps started must work again before anything goes on.
      const restoredAt = Math.floor(Date.now() / 1000) - 1;
      const restored = spec.provision.filter((step) => cache.covers(`step ${step.name}`));
      await phase(
        'machines',
        () => log.step('waiting for the restored cluster to be ready', () => provisioner().ready(restored, restoredAt, ctx.summary.steps)),
        true,
      );
    }

    if (!needsPayload(ctx)) skip('payload');
    else if (cache.covers('payload')) await phase('payload', async () => undefined, true);
    else
      await phase('payload', async () => {
        const begun = performance.now();
        await deliverPayload(ctx, nodes, prepared);
        await cache.save('payload', nodes, seconds(begun));
      });

    if (!spec.provision.length) skip('provision');
    else
      await phase(
        'provision',
        async () => {
          const steps = provisioner();
          for (const step of spec.provision) {
            const layerName = `step ${step.name}`;
            if (cache.covers(layerName)) {
              const made = cache.restoredSteps(layerName);
              ctx.summary.steps.push(...made);
              continue;
            }
            const begun = performance.now();
            const results: typeof ctx.summary.steps = [];
            try {
              if ('certificates' in step)
                results.push(
                  ...(await placeCertificates(
                    ctx,
                    nodes.filter((n) => steps.targets(step).includes(n)),
                    step.name,
                  )),
                );
              else await steps.run(step, results);
            } finally {
              ctx.summary.steps.push(...results);
            }
            await cache.save(layerName, nodes, seconds(begun), results);
          }
        },
        spec.provision.every((step) => cache.covers(`step ${step.name}`)),
      );

    if (!spec.checks.length) skip('checks');
    else await phase('checks', () => runScenarioChecks(ctx, nodes, cloud));
  } catch (error) {
    failure = await withDeadVms(ctx, vms, error);
  }
  for (const name of PHASES) if (!ctx.summary.phases.some((p) => p.name === name)) skip(name);
  if (failure && !(failure instanceof RunFailed)) log.info(`\n${describeError(failure)}\n`);
  else if (failure) log.info(`\n${(failure as Error).message}\n`);

  // Keep the VMs when asked to (never on Ctrl-C: the user wants the lab gone).
  const keep = !options.signal.aborted && (options.keep === 'always' || (options.keep === 'failed' && failure !== undefined));
  if (keep) {
    await timed(ctx, 'keep', async () => {
      await collectJournals(ctx, nodes, cloud);
      await keepRun(ctx, nodes, snapshots?.current, cloud);
    });
  } else {
    await timed(ctx, 'destroy', async () => {
      if (!options.signal.aborted) await collectJournals(ctx, nodes, cloud);
      await destroy(ctx, vms);
      unregisterRun(runId);
    });
  }

  ctx.summary.finishedAt = new Date().toISOString();
  ctx.summary.seconds = round((performance.now() - started) / 1000);
  const interrupted = options.signal.aborted;
  ctx.summary.verdict = interrupted ? 'error' : failure && !(failure instanceof RunFailed) ? 'error' : verdictOf(ctx.summary);
  if (failure) ctx.summary.error = describeError(failure);
  if (interrupted) ctx.summary.error = 'interrupted';
  if (spec.bug && options.expect !== 'pass' && !interrupted) ctx.summary.bug = bugVerdict(spec.bug, ctx.summary, scenario.changedEnv);
  const reportFailure = await timed(ctx, 'report', () => writeReports(ctx));
  if (reportFailure instanceof Error) {
    ctx.summary.verdict = 'error';
    writeSummary(join(runDir, 'summary.json'), ctx.summary);
  }

  const verdict = ctx.summary.verdict;
  const snapshot = snapshotLine(ctx.summary);
  if (snapshot) log.info(`snapshots: ${snapshot}`);
  log.info(
    `run ${runId}: ${verdict.toUpperCase()} in ${ctx.summary.seconds} s (${ctx.summary.checks.filter((c) => c.status === 'passed').length}/${ctx.summary.checks.length} checks passed)`,
  );
  const { bug } = ctx.summary;
  if (bug) log.info(bugLine(bug));
  log.info(`report: ${join(runDir, 'report.html')}  junit: ${join(runDir, 'junit.xml')}  summary: ${join(runDir, 'summary.json')}`);
  if (keep) {
    log.info(`kept: the VMs of ${runId} keep running. Reach them with:`);
    for (const node of spec.nodes) log.info(`  lab ssh ${node.name} --run ${runId}`);
    log.info(
      `  lab verify --run ${runId}     (runs the checks again${snapshots?.current ? '; --reset first brings the cluster back to its last layer' : ''})`,
    );
    log.info(`  lab down ${runId}             (destroys them; lab down --all for every kept run)`);
  }
  const exitCode = interrupted ? 130 : bug && !(reportFailure instanceof Error) ? bugExitCode(bug) : verdict === 'passed' ? 0 : 1;
  return { summary: ctx.summary, runDir, exitCode };
}

/** Time for a dying VM's exit to be noticed: its SSH connection can break before its process is reaped. */
const EXIT_NOTICE_MS = 1500;

/** A phase that failed because a VM died says so: the dead VM is the cause a user needs to see. */
async function withDeadVms(ctx: RunContext, vms: Vm[], failure: unknown): Promise<unknown> {
  const reasons = await Promise.all(vms.map(async (vm) => ({ vm, reason: await vm.stoppedWithin(EXIT_NOTICE_MS) })));
  const dead = reasons
    .filter(({ reason }) => reason)
    .map(({ vm, reason }) => `the VM of ${vm.spec.name} stopped during the run: ${reason}`);
  if (!dead.length) return failure;
  const error = new RunFailed(`${dead.join('\n')}\n${failure instanceof Error ? failure.message : String(failure)}`);
  const phase = ctx.summary.phases.findLast((p) => p.status === 'failed');
  if (phase) phase.error = error.message;
  return error;
}

/**
 * Runs one phase and records it in the summary. A phase of the lifecycle rethrows its error (the
 * phases after it are skipped); the closing ones (keep, destroy, report) return it instead.
 */
async function timed<T>(ctx: RunContext, name: PhaseName, work: () => Promise<T>, restored?: boolean): Promise<T>;
async function timed(ctx: RunContext, name: 'keep' | 'destroy' | 'report', work: () => Promise<void>): Promise<unknown>;
async function timed<T>(ctx: RunContext, name: string, work: () => Promise<T>, restored = false): Promise<T | unknown> {
  const begun = performance.now();
  const existing = ctx.summary.phases.find((p) => p.name === name);
  const record: PhaseResult = existing ?? { name, status: 'passed', seconds: 0, ...(restored ? { restored } : {}) };
  if (!existing) ctx.summary.phases.push(record);
  const closing = !(PHASES as readonly string[]).includes(name);
  try {
    return await work();
  } catch (error) {
    record.status = 'failed';
    record.error = describeError(error);
    if (closing) return error;
    throw error;
  } finally {
    record.seconds = round(record.seconds + seconds(begun));
  }
}

const seconds = (since: number) => round((performance.now() - since) / 1000);
const round = (n: number) => Math.round(n * 10) / 10;
