import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Expectation } from '../bugs/verdict.js';
import type { RunOutcome } from '../run/orchestrator.js';
import { cellRunOverrides } from '../matrix/run.js';
import { loadScenario, type Overrides } from '../scenario/loader.js';
import { InputError } from '../util/errors.js';
import { Logger } from '../util/log.js';
import { folderStamp, reportsDir } from '../util/paths.js';
import { run } from '../util/proc.js';
import { bisectValues, describe, tryPoint, type Point, type Probe, type SearchResult } from './search.js';

/**
 * `lab bisect`: where a scenario's outcome changes, over the ordered values of one variable
 * (--axis) or over a user's commits (--git, through `git bisect run` and `lab bisect --point`).
 * Each point is a whole `lab run`: the snapshot layers below the first step the change reaches are
 * restored, not made again. A bug scenario's point is bad when the bug reproduced, good when it did
 * not, skipped when it failed differently; a plain scenario's is good when it passed, bad when a
 * step or check failed, skipped when the lab could not run it.
 */

export interface BisectOptions {
  scenario: string;
  overrides: Overrides;
  repeat: number;
  expect: Expectation;
  log: Logger;
  signal: AbortSignal;
  verbose: boolean;
}

/** `git bisect run`'s exit codes: 0 good, 1 bad, 125 skip (this point cannot be judged). */
export const BISECT_EXIT = { good: 0, bad: 1, skip: 125 } as const;

/** A run's outcome as a bisect point sees it. */
export function probeOf(outcome: Pick<RunOutcome, 'summary' | 'runDir'>): Probe & { report: string } {
  const { summary, runDir } = outcome;
  const report = join(runDir, 'report.html');
  if (summary.bug) {
    const kind = summary.bug.verdict;
    return {
      outcome: kind === 'reproduced' ? 'bad' : kind === 'not reproduced' ? 'good' : 'skip',
      detail: `${kind}: ${summary.bug.reason}`,
      report,
    };
  }
  const failed = summary.checks.filter((c) => c.status === 'failed').map((c) => c.name);
  const failedSteps = summary.steps.filter((s) => s.status === 'failed').map((s) => `step ${s.step} on ${s.node}`);
  if (summary.verdict === 'passed') return { outcome: 'good', detail: 'passed', report };
  if (summary.verdict === 'failed') return { outcome: 'bad', detail: `failed: ${[...failedSteps, ...failed].join('; ')}`, report };
  return { outcome: 'skip', detail: `the lab could not run it: ${(summary.error ?? '').split('\n')[0]}`, report };
}

/** One `lab run` of the scenario with these overrides, judged as a point (an interrupted run ends the bisect). */
async function runPoint(options: BisectOptions, overrides: Overrides): Promise<Probe> {
  const { runScenario } = await import('../run/orchestrator.js');
  // A logger of its own per run: each run tees its log into its own report folder.
  const outcome = await runScenario({
    scenario: options.scenario,
    overrides,
    keep: 'never',
    snapshots: 'on',
    expect: options.expect,
    log: new Logger(process.stderr, '', options.verbose),
    signal: options.signal,
  });
  if (outcome.exitCode === 130) throw new Error('interrupted');
  return probeOf(outcome);
}

/** The report folder of a bisect: bisect.json, with every point's runs and their reports. */
function reportFolder(name: string): string {
  const dir = join(reportsDir(), `bisect-${name}-${folderStamp()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface BisectReport {
  scenario: string;
  axis?: { name: string; values: string[] };
  git?: { checkout: string; good: string; bad: string; log: string };
  repeat: number;
  points: Point[];
  result: NonNullable<SearchResult['change']> | { unresolved: string };
  seconds: number;
}

/** Prints every point's verdict and the answer, writes bisect.json; 0 when a first value was found, 1 when not. */
function finish(log: Logger, dir: string, report: BisectReport, label: string): 0 | 1 {
  writeFileSync(join(dir, 'bisect.json'), `${JSON.stringify(report, null, 2)}\n`);
  log.info(`bisect of ${report.scenario} (${report.repeat} run${report.repeat > 1 ? 's' : ''} per point), in ${report.seconds} s:`);
  for (const point of report.points) log.info(`  ${label}${point.value}: ${describe(point)}`);
  const { result } = report;
  if ('unresolved' in result) log.info(`bisect: no single change found: ${result.unresolved}`);
  else log.info(`bisect: first ${result.to}: ${label}${result.first} (${label}${result.last} is ${result.from})`);
  log.info(`report: ${join(dir, 'bisect.json')}`);
  return 'unresolved' in result ? 1 : 0;
}

/** `lab bisect <scenario> --axis NAME=v1,v2,...`. */
export async function bisectAxis(options: BisectOptions, axis: { name: string; values: string[] }): Promise<0 | 1> {
  // Every point is loaded before the first run: a value the scenario refuses is bad input, nothing started.
  const spec = loadScenario(options.scenario, options.overrides).spec;
  for (const value of axis.values) loadScenario(options.scenario, cellRunOverrides(options.overrides, { [axis.name]: value }));
  const started = performance.now();
  const dir = reportFolder(spec.name);
  const search = await bisectValues(axis.values, options.repeat, (value, attempt) => {
    options.log.info(`bisect: ${axis.name}=${value}${options.repeat > 1 ? ` (run ${attempt} of ${options.repeat})` : ''}`);
    return runPoint(options, cellRunOverrides(options.overrides, { [axis.name]: value }));
  });
  return finish(
    options.log,
    dir,
    {
      scenario: options.scenario,
      axis,
      repeat: options.repeat,
      points: search.points,
      result: search.change ?? { unresolved: search.unresolved ?? '' },
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
    `${axis.name}=`,
  );
}

/** A git command in the checkout; its stdout, trimmed. */
async function git(checkout: string, ...args: string[]): Promise<string> {
  return (await run(['git', '-C', checkout, ...args])).stdout.trim();
}

/** Where `lab bisect --point` records its point for the `lab bisect --git` that started it. */
const RECORD_ENV = 'LAB_BISECT_RECORD';

/**
 * `lab bisect --point`: the scenario as the checkout is now, `--repeat` times, judged and turned
 * into `git bisect run`'s exit code. Run by `lab bisect --git`; a user may run it from their own
 * `git bisect run` too.
 */
export async function bisectPoint(options: BisectOptions): Promise<number> {
  loadScenario(options.scenario, options.overrides);
  const checkout = process.env.LAB_BISECT_CHECKOUT ?? process.cwd();
  const commit = await git(checkout, 'rev-parse', '--short=12', 'HEAD').catch(() => 'HEAD');
  const point = await tryPoint(commit, options.repeat, (_value, attempt) => {
    options.log.info(`bisect: commit ${commit}${options.repeat > 1 ? ` (run ${attempt} of ${options.repeat})` : ''}`);
    return runPoint(options, options.overrides);
  });
  const record = process.env[RECORD_ENV];
  if (record) appendFileSync(record, `${JSON.stringify(point)}\n`);
  options.log.info(`bisect: commit ${commit} is ${describe(point)}`);
  return point.outcome === 'good' || point.outcome === 'bad' ? BISECT_EXIT[point.outcome] : BISECT_EXIT.skip;
}

/**
 * `lab bisect <scenario> --git <checkout> <good> <bad>`: `git bisect run` in the user's checkout,
 * each commit judged by `lab bisect --point`; the checkout is given back as it was (`git bisect
 * reset`), whatever happens.
 */
export async function bisectGit(options: BisectOptions, checkout: string, good: string, bad: string): Promise<0 | 1> {
  const spec = loadScenario(options.scenario, options.overrides).spec;
  const where = resolve(checkout);
  if (!existsSync(where)) throw new InputError(`--git ${checkout}: no such folder`);
  const top = await git(where, 'rev-parse', '--show-toplevel').catch(() => {
    throw new InputError(`--git ${checkout} is not a git checkout`);
  });
  if (await git(top, 'status', '--porcelain', '--untracked-files=no'))
    throw new InputError(`--git ${checkout} has uncommitted changes: bisect checks out other commits there; commit or stash them first`);
  if (existsSync(join(await git(top, 'rev-parse', '--absolute-git-dir'), 'BISECT_START')))
    throw new InputError(`--git ${checkout}: a git bisect is already under way there (git bisect reset ends it)`);
  const commits: Record<string, string> = {};
  for (const [name, rev] of [
    ['good', good],
    ['bad', bad],
  ] as const) {
    commits[name] = await git(top, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`).catch(() => {
      throw new InputError(`the ${name} commit "${rev}" is not a commit of ${checkout}`);
    });
  }

  const started = performance.now();
  const dir = reportFolder(spec.name);
  const record = join(dir, 'points.jsonl');
  writeFileSync(record, '');
  const point = [
    process.execPath,
    process.argv[1] as string,
    'bisect',
    resolve(options.scenario),
    '--point',
    '--repeat',
    String(options.repeat),
    '--expect',
    options.expect,
    ...Object.entries(options.overrides.set ?? {}).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
    ...(options.overrides.arch ? ['--arch', options.overrides.arch] : []),
    ...(options.overrides.driver ? ['--driver', options.overrides.driver] : []),
  ];
  await git(top, 'bisect', 'start', commits.bad as string, commits.good as string);
  let output = '';
  let log = '';
  try {
    output = await gitBisectRun(top, point, { ...process.env, [RECORD_ENV]: record, LAB_BISECT_CHECKOUT: top }, options);
  } finally {
    log = await git(top, 'bisect', 'log').catch(() => '');
    await git(top, 'bisect', 'reset').catch((error: unknown) => options.log.warn(`git bisect reset in ${top} failed: ${String(error)}`));
  }
  const points = readFileSync(record, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Point);
  const first = /^([0-9a-f]{7,40}) is the first bad commit/m.exec(output)?.[1];
  const result: BisectReport['result'] = first
    ? { last: '', first: (await git(top, 'log', '-1', '--abbrev=12', '--format=%h %s', first)) || first, from: 'good', to: 'bad' }
    : { unresolved: unresolvedOf(output) };
  if (!('unresolved' in result)) {
    const parent = await git(top, 'log', '-1', '--abbrev=12', '--format=%h', `${first}^`).catch(() => '');
    result.last = parent;
  }
  return finish(
    options.log,
    dir,
    {
      scenario: options.scenario,
      git: { checkout: top, good, bad, log },
      repeat: options.repeat,
      points,
      result,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
    'commit ',
  );
}

/** What `git bisect run` said when it found no single commit (only skipped ones left, or it stopped). */
function unresolvedOf(output: string): string {
  const skipped =
    /There are only 'skip'ped commits left to test\.\s*The first bad commit could be any of:\s*([\s\S]*?)We cannot bisect more!/.exec(
      output,
    );
  if (skipped)
    return `only commits that could not be judged are left; the first bad one is one of ${(skipped[1] ?? '').trim().split(/\s+/).join(', ')}`;
  return `git bisect run stopped: ${output.trim().split('\n').slice(-3).join(' / ')}`;
}

/**
 * `git bisect run <lab bisect --point ...>` in a process group of its own: the points' output goes
 * straight to the terminal, git's own lines are kept (and shown). On Ctrl-C the group gets SIGTERM:
 * the point's lab cleans up and exits 130, which stops git bisect run.
 */
function gitBisectRun(top: string, point: string[], env: NodeJS.ProcessEnv, options: BisectOptions): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('git', ['-C', top, 'bisect', 'run', ...point], { env, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stderr.write(chunk);
    });
    const onAbort = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', reject);
    child.on('close', () => {
      options.signal.removeEventListener('abort', onAbort);
      if (output && !output.endsWith('\n')) process.stderr.write('\n');
      if (options.signal.aborted) reject(options.signal.reason);
      else resolveRun(output);
    });
  });
}
