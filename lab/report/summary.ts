import { writeFileSync } from 'node:fs';
import type { CheckResult } from '../checks/runner.js';

export type Status = 'passed' | 'failed' | 'skipped';

/** One phase of the lifecycle: images, machines, provision, checks, report, destroy. */
export interface PhaseResult {
  name: string;
  status: Status;
  seconds: number;
  error?: string;
}

/** One provisioner step on one node. */
export interface StepResult {
  step: string;
  node: string;
  status: Status;
  seconds: number;
  exitCode?: number;
  /** Log file, relative to the run folder. */
  log: string;
  error?: string;
}

/** `summary.json`: what a CI system reads. */
export interface RunSummary {
  runId: string;
  scenario: { name: string; file: string; axes: Record<string, string> };
  nodes: { name: string; role: string; arch: string }[];
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** passed: every step and check passed; failed: a step or check failed; error: the lab itself could not do its job. */
  verdict: 'passed' | 'failed' | 'error';
  error?: string;
  phases: PhaseResult[];
  steps: StepResult[];
  checks: CheckResult[];
}

export function writeSummary(file: string, summary: RunSummary): void {
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
}

/** passed only when there was something to pass and nothing failed. */
export function verdictOf(summary: Pick<RunSummary, 'phases' | 'steps' | 'checks'>): 'passed' | 'failed' {
  const failed = [...summary.phases, ...summary.steps, ...summary.checks].some((r) => r.status === 'failed');
  return failed ? 'failed' : 'passed';
}
