import type { CheckResult } from '../checks/runner.js';
import type { RunSummary } from '../report/summary.js';
import type { BugSpec } from '../scenario/schema.js';

/**
 * Whether a run reproduced the bug its scenario names, as strict as pytest's
 * `xfail(strict=True, raises=...)`: the bug's failure signature must be what failed, and nothing
 * else; a run where everything passed is loud, never green.
 */
export type BugVerdictKind = 'reproduced' | 'not reproduced' | 'failed differently';

export interface BugVerdict {
  url: string;
  title: string;
  verdict: BugVerdictKind;
  /** One line for the terminal and the reports: what matched, or what happened instead. */
  reason: string;
  /** The failed check results that matched the signature (with the entry they matched). */
  matched: { check: string; name: string; message: string; signature: number }[];
}

/** How the run is judged: `bug` against the scenario's signature, `pass` as a plain scenario (--expect=pass). */
export type Expectation = 'bug' | 'pass';

type Judged = Pick<RunSummary, 'verdict' | 'phases' | 'steps' | 'checks'> & { error?: string };

const compile = (pattern: string | undefined) => (pattern === undefined ? undefined : new RegExp(pattern));

/** The first line of a message (or its first 200 characters), for a verdict's one line. */
const firstLine = (text = '') => (text.split('\n')[0] ?? '').slice(0, 200);

/**
 * `changed`: the env values the caller set (its environment, `--set`), which a "not reproduced"
 * names: the bug no longer shows *with those values*.
 */
export function bugVerdict(bug: BugSpec, run: Judged, changed: Record<string, string> = {}): BugVerdict {
  const base = { url: bug.url, title: bug.title };
  const failedChecks = run.checks.filter((c) => c.status === 'failed');
  const failedSteps = run.steps.filter((s) => s.status === 'failed');
  const failedPhases = run.phases.filter((p) => p.status === 'failed' && p.name !== 'provision' && p.name !== 'checks');

  // The lab could not do its job (a VM did not boot, an image could not be built): the bug was never tried.
  if (run.verdict === 'error' || failedPhases.length)
    return {
      ...base,
      verdict: 'failed differently',
      reason: `the run could not get as far as the bug: ${firstLine(run.error ?? failedPhases[0]?.error ?? 'the lab failed')}`,
      matched: [],
    };
  if (failedSteps.length)
    return {
      ...base,
      verdict: 'failed differently',
      reason: `provision step ${failedSteps[0]?.step} failed on ${failedSteps[0]?.node} before the checks: ${firstLine(failedSteps[0]?.error)}`,
      matched: [],
    };
  if (!failedChecks.length) {
    const values = Object.entries(changed).map(([key, value]) => `${key}=${value}`);
    const where = values.length ? `with ${values.join(' ')}` : 'here';
    return { ...base, verdict: 'not reproduced', reason: `every step and check passed: the bug no longer shows ${where}`, matched: [] };
  }

  const matched: BugVerdict['matched'] = [];
  const misses: string[] = [];
  bug.reproduces.forEach((signature, index) => {
    const step = compile(signature.step);
    const message = compile(signature.message);
    const atStep = failedChecks.filter((c) => c.check === signature.check && (!step || step.test(c.name)));
    const hit = atStep.find((c) => !message || message.test(c.message ?? ''));
    if (hit) matched.push({ check: hit.check, name: hit.name, message: hit.message ?? '', signature: index });
    else if (atStep.length)
      misses.push(`${atStep[0]?.name} failed, but its message does not match /${signature.message}/: ${firstLine(atStep[0]?.message)}`);
    else
      misses.push(
        `${signature.check}${signature.step ? ` (a step matching /${signature.step}/)` : ''} did not fail` +
          `; what failed: ${failedChecks.map((c) => c.name).join('; ')}`,
      );
  });
  if (misses.length) return { ...base, verdict: 'failed differently', reason: misses.join('; '), matched };

  const others = failedChecks.filter((c) => !followsFrom(matched, c, run.checks));
  if (others.length)
    return {
      ...base,
      verdict: 'failed differently',
      reason: `the signature matched, but ${others.map((c) => c.name).join('; ')} failed too: ${firstLine(others[0]?.message)}`,
      matched,
    };
  return {
    ...base,
    verdict: 'reproduced',
    reason: matched.map((m) => `${m.name}: ${firstLine(m.message)}`).join('; '),
    matched,
  };
}

/** The lab's exit code for a bug scenario: 0 reproduced (what `git bisect run` calls bad is the caller's to map), 1 otherwise. */
export const bugExitCode = (verdict: BugVerdict): 0 | 1 => (verdict.verdict === 'reproduced' ? 0 : 1);

/** The terminal's line for a verdict. */
export function bugLine(verdict: BugVerdict): string {
  const head = `bug ${verdict.url} (${verdict.title}): ${verdict.verdict.toUpperCase()}`;
  return `${head}: ${verdict.reason}`;
}

/**
 * A failed result that is the bug's: a matched step, or a later step of the same check (those fail
 * because of it, "the test above says why"). Any other failure is something else going wrong.
 */
function followsFrom(matched: BugVerdict['matched'], result: Pick<CheckResult, 'check' | 'name'>, all: CheckResult[]): boolean {
  const position = (check: string, name: string) => all.findIndex((r) => r.check === check && r.name === name);
  return matched.some((m) => m.check === result.check && position(result.check, result.name) >= position(m.check, m.name));
}

/** Whether a check result is part of a reproduced bug: the reports show it as an expected failure. */
export const partOfBug = (verdict: BugVerdict | undefined, result: CheckResult, all: CheckResult[]): boolean =>
  verdict?.verdict === 'reproduced' && result.status === 'failed' && followsFrom(verdict.matched, result, all);
