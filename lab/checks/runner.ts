import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BaseSequencer, Reporter, TestCase, TestModule, TestSpecification, Vitest } from 'vitest/node';
import type { Logger } from '../util/log.js';
import { projectRoot } from '../util/paths.js';
import { CLUSTER_ENV, FAIL_FAST_ENV, type ClusterDescriptor } from './descriptor.js';

/** The outcome of one test of one check file. */
export interface CheckResult {
  /** The check's name: its file name without `.check.ts`. */
  check: string;
  /** The test's full name inside the check, e.g. "nodes-up node1 > hostname is node1". */
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  seconds: number;
  message?: string;
}

export const checkName = (file: string): string => basename(file).replace(/\.check\.ts$/, '');

/** Collects results as vitest reports them and prints one line per test. */
class LabReporter implements Reporter {
  readonly results: CheckResult[] = [];
  vitest: Vitest | undefined;
  constructor(private readonly log: Logger) {}

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
    // Vitest's logger ends the process on SIGINT/SIGTERM: the lab's own handler must decide
    // (stop the checks, then tear down and report), or a Ctrl-C leaves the run's state behind.
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      for (const listener of process.listeners(signal)) if (!this.labListeners.has(listener)) process.off(signal, listener);
  }

  private readonly labListeners = new Set([...process.listeners('SIGINT'), ...process.listeners('SIGTERM')]);

  onTestCaseResult(testCase: TestCase): void {
    const result = testCase.result();
    const status = result.state === 'failed' ? 'failed' : result.state === 'passed' ? 'passed' : 'skipped';
    // A failure's errors; a step skipped on purpose says why (ctx.skip's note).
    const message = result.state === 'failed' ? result.errors.map((e) => e.message).join('\n') : result.state === 'skipped' ? result.note : undefined;
    const seconds = (testCase.diagnostic()?.duration ?? 0) / 1000;
    this.results.push({ check: checkName(testCase.module.moduleId), name: testCase.fullName, status, seconds, message });
    const mark = status === 'passed' ? '✓' : status === 'failed' ? '✗' : '-';
    this.log.info(`   ${mark} ${testCase.fullName} (${seconds.toFixed(1)} s)${message ? `\n${indent(message)}` : ''}`);
  }

  onTestModuleEnd(testModule: TestModule): void {
    // A check file that cannot even load (syntax error, bad import) is a failed check, not a pass.
    for (const error of testModule.errors()) {
      const check = checkName(testModule.moduleId);
      this.results.push({ check, name: `${check} (loading)`, status: 'failed', seconds: 0, message: error.message });
      this.log.info(`   ✗ ${check} could not run\n${indent(error.message)}`);
    }
  }
}

/** A vitest sequencer that runs the files as listed (vitest/node is loaded only when checks run). */
function inOrder(files: string[], Base: typeof BaseSequencer): typeof BaseSequencer {
  const rank = (spec: TestSpecification) => files.indexOf(spec.moduleId);
  return class extends Base {
    override async sort(specs: TestSpecification[]): Promise<TestSpecification[]> {
      return [...specs].sort((a, b) => rank(a) - rank(b));
    }
  };
}

const indent = (text: string) => text.replace(/^/gm, '       ');

/**
 * Runs check files through vitest's Node API, with allure-vitest writing `allureResultsDir`.
 * The cluster is handed over as a descriptor file named in LAB_CLUSTER.
 */
export async function runChecks(options: {
  files: string[];
  descriptor: ClusterDescriptor;
  workDir: string;
  allureResultsDir: string;
  timeoutSeconds: number;
  log: Logger;
  /** Each check stops at its first failed test (the tests after it are reported skipped); the other checks go on. */
  failFast?: boolean;
  /** Ctrl-C: the checks stop now (their workers are ended); the results so far are returned. */
  signal?: AbortSignal;
}): Promise<CheckResult[]> {
  options.signal?.throwIfAborted();
  const { startVitest, BaseSequencer } = await import('vitest/node');
  mkdirSync(options.workDir, { recursive: true });
  const descriptorFile = join(options.workDir, 'cluster.json');
  writeFileSync(descriptorFile, JSON.stringify(options.descriptor, null, 2));
  process.env[CLUSTER_ENV] = descriptorFile;
  const reporter = new LabReporter(options.log);
  // A running check may wait minutes for a cluster (or sleep): cancelling only skips the tests not
  // begun yet, so the workers are closed too.
  const stop = () => void reporter.vitest?.cancelCurrentRun('keyboard-input').finally(() => reporter.vitest?.close());
  options.signal?.addEventListener('abort', stop, { once: true });
  const vitest = await startVitest(
    'test',
    options.files,
    {
      root: projectRoot,
      config: false,
      watch: false,
      include: options.files,
      dir: '/',
      reporters: [['allure-vitest/reporter', { resultsDir: options.allureResultsDir, links: {} }], reporter],
      setupFiles: ['allure-vitest/setup'],
      testTimeout: options.timeoutSeconds * 1000,
      hookTimeout: 120_000,
      // Checks of one run share the cluster: run files one after the other. (Side by side they
      // were faster, but the extra load made the dns check's 20 s lookups flaky under TCG.)
      fileParallelism: false,
      // In the order the scenario lists them (vitest's own puts the largest file first).
      sequence: { sequencer: inOrder(options.files, BaseSequencer) },
      pool: 'forks',
      env: { [CLUSTER_ENV]: descriptorFile, [FAIL_FAST_ENV]: options.failFast ? '1' : '0' },
    },
    { cacheDir: join(options.workDir, 'vite-cache'), logLevel: 'error', server: { watch: null } },
  );
  options.signal?.removeEventListener('abort', stop);
  await vitest.close();
  return reporter.results;
}
