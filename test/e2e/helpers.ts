import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudAccess } from '../../lab/checks/descriptor.js';
import type { CheckResult } from '../../lab/checks/runner.js';
import type { RunSummary } from '../../lab/report/summary.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { parseRunLabel } from '../../lab/machines/guest.js';
import { abandoned, runsDir } from '../../lab/run/registry.js';
import { processes } from '../../lab/util/procfs.js';

export const root = join(import.meta.dirname, '..', '..');
export const lab = join(root, 'bin', 'lab');

export interface LabResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  reportsDir: string;
}

/**
 * Runs bin/lab as a user would, with a private reports folder. `during` gets the child process
 * and the output so far, to interrupt or kill things mid-run.
 */
export function runLab(
  args: string[],
  options: {
    env?: Record<string, string>;
    during?: (child: ReturnType<typeof spawn>, output: () => string, reportsDir: string) => void;
  } = {},
): Promise<LabResult> {
  const reportsDir = mkdtempSync(join(tmpdir(), 'lab-reports-'));
  // A passed test's reports go with it; a failed one's stay for the person reading the failure.
  // (Outside a test, in a beforeAll, vitest refuses the hook: useKeptRun removes its own.)
  try {
    onTestFinished(({ task }) => {
      if (task.result?.state === 'pass') rmSync(reportsDir, { recursive: true, force: true });
    });
  } catch {}
  return new Promise((resolve) => {
    const child = spawn(lab, args, {
      cwd: root,
      env: { ...process.env, LAB_SKIP_SETUP: '1', LAB_REPORTS_DIR: reportsDir, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    options.during?.(child, () => output, reportsDir);
    child.on('close', (code, signal) => resolve({ code, signal, output, reportsDir }));
  });
}

/** The single run folder a lab invocation wrote into its reports folder. */
export function onlyRun(result: LabResult): { runId: string; dir: string; summary: RunSummary } {
  const runs = readdirSync(result.reportsDir).filter((name) => !name.startsWith('.'));
  if (runs.length !== 1)
    throw new Error(`expected one run folder in ${result.reportsDir}, found ${runs.join(', ') || 'none'}\n${result.output}`);
  const runId = runs[0] as string;
  const dir = join(result.reportsDir, runId);
  const summaryFile = join(dir, 'summary.json');
  const summary = existsSync(summaryFile)
    ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as RunSummary)
    : (undefined as unknown as RunSummary);
  return { runId, dir, summary };
}

/** What a run left on the host: QEMU processes carrying its label, helpers naming its state folder, the folder. Empty means clean. */
export function leftovers(runId: string, stateDir = process.env.LAB_STATE_DIR ?? '/var/lib/lab'): string[] {
  const found = processes()
    .filter(({ args }) => args.some((arg) => arg.includes(`lab:${runId}:`) || arg.includes(`/runs/${runId}/`)))
    .map(({ pid, args }) => `process ${pid}: ${args.slice(0, 3).join(' ')}`);
  const state = join(stateDir, 'runs', runId);
  if (existsSync(state)) found.push(`state folder ${state}: ${readdirSync(state).join(', ')}`);
  return found;
}

/**
 * What any lab could leave on the host, counted across runs: processes of the lab's runs (labelled
 * hypervisors, helpers naming a run folder), run state folders, network namespaces and loop
 * devices. A fault test takes it before, and finds nothing new after.
 */
export function hostResources(): string[] {
  const runs = join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', 'runs');
  const labProcesses = processes()
    .filter(({ args }) => args.some((arg) => /process=lab:|\/runs\//.test(arg)) && !args.some((arg) => arg.includes('vitest')))
    .map(({ pid, args }) => `process ${pid} of run ${runOf(args)}: ${args.slice(0, 2).join(' ')}`);
  const folders = existsSync(runs) ? readdirSync(runs).map((run) => `state folder ${run}`) : [];
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns').map((ns) => `netns ${ns}`) : [];
  const loops = spawnSync('losetup', ['-n', '-O', 'NAME'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map((dev) => `loop ${dev}`);
  return [...labProcesses, ...folders, ...namespaces, ...loops].sort();
}

/** The run a lab process belongs to: its hypervisor's label (process=lab:<run>:<node>) or the run folder it names. */
function runOf(args: string[]): string {
  const labelled = args.map(parseRunLabel).find(Boolean);
  return labelled?.runId ?? /\/runs\/([^/\s]+)/.exec(args.join(' '))?.[1] ?? '?';
}

/**
 * Whether a resource belongs to a run another lab is busy with or keeps (a developer's kept
 * cluster, a second lab on the host): it may come, reset and go beside a test, and is not its
 * leftover. A run whose lab is gone and that was not kept is nobody's: what it left counts.
 */
function anotherLabs(resource: string): boolean {
  const runId = /^(?:process \d+ of run|state folder) (\S+)/.exec(resource)?.[1];
  return runId !== undefined && existsSync(join(runsDir(), runId)) && !abandoned(runId);
}

/** Nothing the host has now that it did not have `before`, but another lab's runs (a lab may reap what an earlier one left: that is fine). */
export function expectNothingNew(before: string[]): void {
  expect(hostResources().filter((resource) => !before.includes(resource) && !anotherLabs(resource))).toEqual([]);
}

/** Waits until `predicate(output)` holds, polling every 200 ms (bounded). */
export async function waitForOutput(output: () => string, predicate: (text: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(output())) {
    if (Date.now() > deadline) throw new Error(`output never matched within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** bin/lab run to completion (up to 15 min), its exit code and what it printed. */
export function labSync(...args: string[]): { code: number | null; out: string; err: string } {
  const result = spawnSync(lab, args, { cwd: root, env: { ...process.env, LAB_SKIP_SETUP: '1' }, encoding: 'utf8', timeout: 900_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** What one `lab verify` found: its exit code and output, and its checks.json. */
export interface Verified {
  code: number | null;
  err: string;
  checks: CheckResult[];
}

/**
 * A kept run as the e2e tests drive it: commands on its nodes (one string is one command line, as
 * with ssh), resets to its last snapshot layer, and checks against it.
 */
export class KeptRun {
  constructor(readonly runId: string) {}

  ssh(node: string, command: string) {
    return labSync('ssh', node, '--run', this.runId, '--', command);
  }

  /** Runs a command that must succeed on a node; returns its stdout. */
  succeed(node: string, command: string): string {
    const result = this.ssh(node, command);
    if (result.code !== 0) throw new Error(`${node}: \`${command}\` exited with ${result.code}:\n${result.out}${result.err}`);
    return result.out;
  }

  /** Polls a shell condition on a node (bounded): true as soon as it holds. */
  until(node: string, condition: string, tries: number, pause = 2): boolean {
    return this.ssh(node, `for i in $(seq ${tries}); do ${condition} && exit 0; sleep ${pause}; done; exit 1`).code === 0;
  }

  /** Back at the run's last snapshot layer: whatever an earlier test broke is gone. */
  reset(): void {
    const result = labSync('reset', '--run', this.runId);
    if (result.code !== 0) throw new Error(`lab reset --run ${this.runId} failed:\n${result.err}`);
  }

  /** `lab verify --check <name>...`, stopping at the first failed step unless told otherwise; `sets` as --set. */
  verify(names: string[], sets: Record<string, string> = {}, failFast = true): Verified {
    const args = [
      'verify',
      '--run',
      this.runId,
      ...names.flatMap((c) => ['--check', c]),
      ...Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
    ];
    const result = labSync(...args, ...(failFast ? ['--fail-fast'] : []));
    return verified(result.code, result.err);
  }

  down(): void {
    labSync('down', this.runId);
  }
}

/** What a `lab verify` that exited with `code` and printed `output` found: its checks.json, which the output names. */
export function verified(code: number | null, output: string): Verified {
  const file = /verify report: (\S+)/.exec(output)?.[1];
  const checks = file && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { checks: CheckResult[] }).checks : [];
  return { code, err: output, checks };
}

/**
 * The check failed at this step and nowhere before it: its first failed test (the only one, with
 * --fail-fast) is the one named, and every test of the check before it passed. Returns its message
 * (a failure inside a named step starts with `step "<step>" failed: `).
 */
export function failedAt(verified: Verified, check: string, test: string): string {
  const mine = verified.checks.filter((c) => c.check === check);
  const failed = mine.filter((c) => c.status === 'failed');
  if (verified.code !== 1 || !failed.length)
    throw new Error(
      `expected ${check} to fail at "${test}", but verify exited ${verified.code} with ${failed.length} failure(s):\n${verified.err.slice(-3000)}`,
    );
  const first = failed[0] as CheckResult;
  if (!first.name.includes(test)) throw new Error(`expected ${check} to fail at "${test}", it failed at "${first.name}": ${first.message}`);
  // A step skipped on purpose says why (flocker-attach's move with a backend that cannot move); any other did not pass.
  const before = mine.slice(0, mine.indexOf(first)).filter((c) => c.status === 'failed' || (c.status === 'skipped' && !c.message));
  if (before.length) throw new Error(`steps before "${test}" did not pass: ${before.map((c) => `${c.name}: ${c.status}`).join('; ')}`);
  return first.message ?? '';
}

/**
 * A kept run for the tests of one file (or describe block): `lab run --keep=always <args>` before
 * them, which must pass, and destroyed after them with nothing left behind. Its phases are logged.
 * 45 minutes by default: two-node-flocker from a cold cache took over 30 on a slow day (with other VMs beside it).
 */
export function useKeptRun(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): { run: KeptRun; summary: RunSummary; dir: string } {
  const made = {} as { run: KeptRun; summary: RunSummary; dir: string };
  let passedReports: string | undefined;
  beforeAll(
    async () => {
      const result = await runLab(['run', '--keep=always', ...args], { env: options.env });
      const { runId, summary, dir } = onlyRun(result);
      Object.assign(made, { run: new KeptRun(runId), summary, dir });
      if (result.code === 0) passedReports = result.reportsDir;
      console.log(
        `${args.join(' ')} phases (s): ${JSON.stringify(Object.fromEntries((summary?.phases ?? []).map((p) => [p.name, p.seconds])))}`,
      );
      expect(result.code, result.output).toBe(0);
    },
    options.timeoutMs ?? 45 * 60_000,
  );
  afterAll(() => {
    if (!made.run) return;
    made.run.down();
    if (passedReports) rmSync(passedReports, { recursive: true, force: true });
    expect(leftovers(made.run.runId)).toEqual([]);
  });
  return made;
}

export type Kept = ReturnType<typeof useKeptRun>;

/**
 * A test of the full sweep: it runs with LAB_E2E_FULL=1 (the nightly job), and is listed as
 * skipped otherwise. Nightly only: the five breakages of the steps after dns's lookups and
 * flocker-attach's first pod, busybox gone from the worker (3 minutes), node-failure's negative
 * (6) and scenarios/two-node's own run, whose checks
 * two-node-flocker's run passes on the same layers; every other breakage runs in CI. Also the
 * v1.2.4/vxlan/Flocker 1.13.0 cluster (vxlan.test.ts, 10), the smoke matrix over both
 * architectures, whole and sharded (about 4 minutes), the docker image's
 * fresh install of the 2016 forms (6) and the image cache's killed builder (2.5): CI's 90 minutes
 * are spent.
 */
export const fullOnly = test.runIf(process.env.LAB_E2E_FULL === '1');

/** What a loopback cluster's checks do not pass: flocker-attach's move, skipped with its reason (loopback volumes stay on their node). */
export const LOOPBACK_NOT_PASSED = [
  expect.objectContaining({
    check: 'flocker-attach',
    status: 'skipped',
    message: expect.stringContaining('the loopback backend cannot move a dataset'),
  }),
];

/** One way of breaking a kept cluster, and what its check must then say. */
export interface Breakage {
  /** The check (or checks) it breaks. */
  check: string;
  title: string;
  /** Breaks the cluster, runs the check and asserts where and how it failed. */
  run: (run: KeptRun) => void | Promise<void>;
  /** Only with LAB_E2E_FULL=1 (see fullOnly). */
  nightly?: boolean;
}

/**
 * Breakages that share one reset of the kept run, each its own test, in order. Put together only
 * breakages whose breaks touch nothing the other checks read before the step they fail at (of
 * one check, the one that fails at the later step goes first); failedAt's "every step before it
 * passed" is what shows they did not. A breakage that takes the whole cluster down (etcd, the
 * apiserver) goes last.
 */
export function fromOneReset(kept: Kept, title: string, breakages: Breakage[]): void {
  describe(title, () => {
    beforeAll(() => kept.run.reset(), 10 * 60_000);
    for (const breakage of breakages)
      (breakage.nightly ? fullOnly : test)(`${breakage.check}: ${breakage.title}`, () => breakage.run(kept.run));
  });
}

/** What test/scenarios/faults/faults.check.ts's tests did, each as `<verb>:<status>` (block, pause, reboot, crash). */
export const faultVerbs = (checks: CheckResult[]): string[] =>
  checks.filter((c) => c.check === 'faults').map((c) => `${/^fault verbs > (\w+) /.exec(c.name)?.[1] ?? c.name}:${c.status}`);
export const FAULT_VERBS_PASSED = ['block:passed', 'pause:passed', 'reboot:passed', 'crash:passed'];

/** The environment Debian's openstack client needs for a run's cloud (Keystone v3 on 127.0.0.1, the run's user). */
export const openstackEnv = (cloud: CloudAccess): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  OS_AUTH_URL: cloud.authUrl,
  OS_IDENTITY_API_VERSION: '3',
  OS_USERNAME: cloud.username,
  OS_PASSWORD: cloud.password,
  OS_PROJECT_NAME: cloud.project,
  OS_USER_DOMAIN_NAME: 'Default',
  OS_PROJECT_DOMAIN_NAME: 'Default',
  OS_REGION_NAME: cloud.region,
});

/** docker-multinode's bootstrap Docker daemon (etcd and flanneld run on it). */
export const BOOTSTRAP = 'docker -H unix:///var/run/docker-bootstrap.sock';

/** The container of a component, by what its command line runs (static pods, bootstrap daemon), as a shell expression. */
export const containerOf = (docker: string, pattern: string) =>
  `$(${docker} ps --no-trunc --format '{{.ID}} {{.Command}}' | awk '/${pattern}/ {print $1}' | head -1)`;
