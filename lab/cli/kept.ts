import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterDescriptor } from '../checks/descriptor.js';
import { resolveCheck } from '../checks/catalog.js';
import { checkName, runChecks, type CheckResult } from '../checks/runner.js';
import { junitXml } from '../report/junit.js';
import type { RunSummary } from '../report/summary.js';
import { destroyRun, keptRuns, type KeptRun, type RunRecord } from '../run/registry.js';
import { allDrivers } from '../machines/registry.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

type Kept = RunRecord & { kept: KeptRun };

/** The kept run a command is about: the one named, or the only one there is. */
function pickRun(runId: string | undefined): Kept {
  const runs = keptRuns();
  if (runId) {
    const run = runs.find((r) => r.runId === runId);
    if (!run) throw new InputError(`no kept run ${runId} (lab list shows the kept runs)`);
    return run;
  }
  if (runs.length === 1) return runs[0] as Kept;
  throw new InputError(
    runs.length
      ? `${runs.length} runs are kept: name one with --run (lab list shows them)`
      : 'no run is kept (lab run --keep=always|failed keeps one)',
  );
}

const descriptorOf = (run: Kept): ClusterDescriptor => JSON.parse(readFileSync(run.kept.descriptorFile, 'utf8')) as ClusterDescriptor;

/** `lab list`: the kept runs, their nodes and how old they are. */
export function listCommand(log: Logger): void {
  const runs = keptRuns();
  if (!runs.length) return log.info('no kept runs');
  for (const run of runs) {
    const minutes = Math.round((Date.now() - Date.parse(run.kept.keptAt)) / 60_000);
    const nodes = descriptorOf(run).nodes.map((n) => `${n.name} (${n.arch}, ${n.address}, ssh 127.0.0.1:${n.ssh.port})`);
    log.info(`${run.runId}  kept ${minutes} min ago  ${nodes.join(', ')}`);
  }
}

/** `lab ssh <node>`: an interactive shell (or one command) on a node of a kept run, with the pinned host key. */
export function sshCommand(node: string, command: string[], runId: string | undefined): number {
  const run = pickRun(runId);
  const { nodes } = descriptorOf(run);
  const spec = nodes.find((n) => n.name === node);
  if (!spec) throw new InputError(`run ${run.runId} has no node ${node} (nodes: ${nodes.map((n) => n.name).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'lab-ssh-'));
  try {
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${spec.ssh.port} ${spec.ssh.hostKey}\n`);
    const args = [
      '-i',
      spec.ssh.privateKeyFile,
      '-p',
      String(spec.ssh.port),
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'LogLevel=ERROR',
      `${spec.ssh.user}@127.0.0.1`,
      ...command,
    ];
    return spawnSync('ssh', args, { stdio: 'inherit' }).status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `lab verify --run <id> [--check name]... [--reset]`: the scenario's checks again (or the named
 * ones), against the kept VMs, without re-provisioning; with `--reset`, first back at the run's
 * last snapshot layer.
 */
export async function verifyCommand(
  runId: string | undefined,
  only: string[],
  log: Logger,
  options: { sets?: Record<string, string>; reset?: boolean; failFast?: boolean; signal: AbortSignal },
): Promise<number> {
  const run = pickRun(runId);
  // A name is one of the run's checks, or any other check as a scenario would name it (a built-in
  // one such as node-failure, or a .check.ts path from the scenario's folder).
  const scenarioDir = descriptorOf(run).scenario.dir;
  const located = only.map((name) => ({
    name,
    file: run.kept.checks.find((file) => checkName(file) === name) ?? resolveCheck(name, scenarioDir),
  }));
  const unknown = located.filter((check) => !check.file).map((check) => check.name);
  if (unknown.length)
    throw new InputError(
      `no check ${unknown.join(', ')}: neither one of run ${run.runId}'s (${run.kept.checks.map(checkName).join(', ')}), nor a built-in check or a .check.ts file from ${scenarioDir}`,
    );
  const files = only.length ? located.map((check) => check.file as string) : run.kept.checks;
  if (options.reset) await (await import('../run/reset.js')).resetKeptRun(run, log, options.signal);
  const workDir = mkdtempSync(join(tmpdir(), 'lab-verify-'));
  try {
    // Each verify keeps its own results next to the run's: what CI systems and tests read.
    const startedAt = new Date().toISOString();
    const reportDir = join(run.reportDir, `verify-${startedAt.replace(/[-:]/g, '').replace(/\..*$/, '')}-${process.pid}`);
    const descriptor = withEnv(descriptorOf(run), options.sets ?? {});
    const results = await log.step(`verifying kept run ${run.runId}`, () =>
      runChecks({
        files,
        descriptor,
        workDir,
        allureResultsDir: join(reportDir, 'allure-results'),
        timeoutSeconds: 900,
        log,
        failFast: options.failFast,
        signal: options.signal,
      }),
    );
    const failed = results.filter((r) => r.status === 'failed').length;
    writeVerifyReport(reportDir, run.runId, descriptor.scenario.name, startedAt, results, options);
    log.info(`${results.length - failed}/${results.length} checks passed${options.signal.aborted ? ' before the interrupt' : ''}`);
    log.info(`verify report: ${join(reportDir, 'checks.json')}  junit: ${join(reportDir, 'junit.xml')}`);
    return options.signal.aborted ? 130 : failed || !results.length ? 1 : 0;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** checks.json (the results, with what was set and whether the run was reset first) and junit.xml of one verify. */
function writeVerifyReport(
  dir: string,
  runId: string,
  scenario: string,
  startedAt: string,
  checks: CheckResult[],
  options: { sets?: Record<string, string>; reset?: boolean; failFast?: boolean },
): void {
  mkdirSync(dir, { recursive: true });
  const verdict = checks.length && checks.every((c) => c.status !== 'failed') ? 'passed' : 'failed';
  const record = {
    runId,
    startedAt,
    finishedAt: new Date().toISOString(),
    reset: Boolean(options.reset),
    failFast: Boolean(options.failFast),
    sets: options.sets ?? {},
    verdict,
    checks,
  };
  writeFileSync(join(dir, 'checks.json'), `${JSON.stringify(record, null, 2)}\n`);
  const summary = {
    runId,
    scenario: { name: scenario, file: '', axes: {} },
    nodes: [],
    startedAt,
    finishedAt: record.finishedAt,
    seconds: 0,
    verdict,
    phases: [],
    steps: [],
    checks,
  } as RunSummary;
  writeFileSync(join(dir, 'junit.xml'), junitXml(summary));
}

const withEnv = (descriptor: ClusterDescriptor, sets: Record<string, string>): ClusterDescriptor => ({
  ...descriptor,
  env: { ...descriptor.env, ...sets },
});

/** `lab reset [--run <id>]`: the kept run back at its last snapshot layer, without running checks. */
export async function resetCommand(runId: string | undefined, log: Logger, signal: AbortSignal): Promise<void> {
  await (await import('../run/reset.js')).resetKeptRun(pickRun(runId), log, signal);
}

/** `lab down <run-id>` or `lab down --all`: destroys kept runs. */
export async function downCommand(runId: string | undefined, all: boolean, log: Logger): Promise<void> {
  const runs = all ? keptRuns() : [pickRun(runId)];
  if (!runs.length) return log.info('no kept runs');
  for (const run of runs) {
    const stopped = await destroyRun(run.runId, await allDrivers());
    log.info(`destroyed ${run.runId} (${stopped} processes stopped)`);
  }
}
