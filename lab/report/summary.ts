import { writeFileSync } from 'node:fs';
import type { BugVerdict } from '../bugs/verdict.js';
import type { CheckResult } from '../checks/runner.js';

export type Status = 'passed' | 'failed' | 'skipped';

/** One phase of the lifecycle: images, machines, provision, checks, report, destroy. */
export interface PhaseResult {
  name: string;
  status: Status;
  seconds: number;
  error?: string;
  /** Its work came from a snapshot layer instead of being done again. */
  restored?: boolean;
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
  /** The step did not run in this run: its work came from a snapshot layer, made by an earlier run. */
  restored?: RestoredFrom;
}

export interface RestoredFrom {
  layer: string;
  madeAt: string;
  madeBy: string;
}

/** What the run took from the snapshot cache and what it added to it. */
export interface SnapshotSummary {
  /** on: restore the deepest cached layer, save the rest; fresh: save every layer anew; off: neither. */
  mode: 'on' | 'fresh' | 'off';
  /** Layers this scenario has: machines, then one per phase or step that changes the cluster. */
  layers: number;
  restored?: RestoredFrom & { depth: number; name: string; seconds: number };
  saved: { layer: string; depth: number; name: string; seconds: number; bytes: number }[];
  /** Why snapshots were not used, or stopped being saved. */
  note?: string;
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
  snapshot?: SnapshotSummary;
  /** A scenario that reproduces a bug (its `bug:`), judged by its signature; absent with --expect=pass. */
  bug?: BugVerdict;
}

export function writeSummary(file: string, summary: RunSummary): void {
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
}

/** passed only when there was something to pass and nothing failed. */
export function verdictOf(summary: Pick<RunSummary, 'phases' | 'steps' | 'checks'>): 'passed' | 'failed' {
  const failed = [...summary.phases, ...summary.steps, ...summary.checks].some((r) => r.status === 'failed');
  return failed ? 'failed' : 'passed';
}

/** How a restored step came to be done, for people reading the report. */
export const restoredFrom = (from: RestoredFrom): string =>
  `restored from snapshot layer ${from.layer} (made ${from.madeAt} by run ${from.madeBy}); it did not run again`;

/** What the run took from the snapshot cache and added to it, in one line. */
export function snapshotLine(summary: RunSummary): string | undefined {
  const snapshot = summary.snapshot;
  if (!snapshot) return undefined;
  if (snapshot.mode === 'off') return `off${snapshot.note ? ` (${snapshot.note})` : ''}`;
  const restored = snapshot.restored
    ? `restored ${snapshot.restored.depth} of ${snapshot.layers} layers (snapshot ${snapshot.restored.layer.slice(0, 12)}, ${snapshot.restored.name}, made ${snapshot.restored.madeAt})`
    : `nothing restored${snapshot.mode === 'fresh' ? ' (--fresh)' : ''}`;
  return `${restored}; saved ${snapshot.saved.length} layer(s)${snapshot.note ? `; ${snapshot.note}` : ''}`;
}
