import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../../lab/report/summary.js';
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
export function leftovers(runId: string): string[] {
  const found = processes()
    .filter(({ args }) => args.some((arg) => arg.includes(`lab:${runId}:`) || arg.includes(`/runs/${runId}/`)))
    .map(({ pid, args }) => `process ${pid}: ${args.slice(0, 3).join(' ')}`);
  const state = join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', 'runs', runId);
  if (existsSync(state)) found.push(`state folder ${state}: ${readdirSync(state).join(', ')}`);
  return found;
}

/** Waits until `predicate(output)` holds, polling every 200 ms (bounded). */
export async function waitForOutput(output: () => string, predicate: (text: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(output())) {
    if (Date.now() > deadline) throw new Error(`output never matched within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
