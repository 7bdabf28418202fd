/**
 * Snapshot layers, in one run: scenarios/two-node-flocker cold (--fresh: every step, every layer
 * saved anew), then fully cached (the deepest layer restored, only the checks run), then with only
 * the Flocker steps changed (a copy of provisioners/flocker with one comment added: the layers up
 * to dns-addon are restored, the two Flocker steps run). Prints each run's phases, the time to
 * the start of the checks, where the checks' time goes, and the ratios against the cold run.
 * Run: npm run bench:snapshot (after bin/lab setup). Needs about 25 minutes on 2 cores under TCG.
 */
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../lab/report/summary.js';
import { runScenario } from '../lab/run/orchestrator.js';
import { Logger } from '../lab/util/log.js';
import { projectRoot, provisionersDir } from '../lab/util/paths.js';

const log = new Logger();
const work = mkdtempSync(join(tmpdir(), 'bench-snapshot-'));
process.env.LAB_REPORTS_DIR = join(work, 'reports');
const scenario = join(projectRoot, 'scenarios', 'two-node-flocker');

/** two-node-flocker with its own copy of the Flocker scripts, one comment line added to common.sh. */
function flockerChanged(): string {
  const dir = join(work, 'flocker-changed');
  mkdirSync(dir, { recursive: true });
  cpSync(join(provisionersDir, 'flocker'), join(dir, 'flocker'), { recursive: true });
  const common = join(dir, 'flocker', 'common.sh');
  writeFileSync(common, `${readFileSync(common, 'utf8')}# changed for bench/snapshot.ts\n`);
  const parent = readFileSync(join(scenario, 'scenario.yaml'), 'utf8');
  const steps = parent.slice(parent.indexOf('provision:'), parent.indexOf('checks:')).replace(/script: flocker\//g, 'script: ./flocker/').replace(/ready: flocker\//g, 'ready: ./flocker/');
  writeFileSync(join(dir, 'scenario.yaml'), `extends: ${scenario}\nname: two-node-flocker-changed\n${steps}`);
  return dir;
}

async function measured(label: string, target: string, snapshots: 'on' | 'fresh'): Promise<RunSummary> {
  log.info(`\n=== ${label}`);
  const outcome = await runScenario({ scenario: target, snapshots, log, signal: new AbortController().signal });
  if (outcome.exitCode !== 0) throw new Error(`${label}: the run ${outcome.summary.verdict} (${outcome.runDir})`);
  return outcome.summary;
}

const phase = (summary: RunSummary, name: string) => summary.phases.find((p) => p.name === name)?.seconds ?? 0;
const untilChecks = (summary: RunSummary) =>
  summary.phases.filter((p) => ['images', 'network', 'machines', 'certificates', 'payload', 'provision'].includes(p.name)).reduce((sum, p) => sum + p.seconds, 0);
const checkTimes = (summary: RunSummary) => {
  const byCheck = new Map<string, number>();
  for (const check of summary.checks) byCheck.set(check.check, (byCheck.get(check.check) ?? 0) + check.seconds);
  return [...byCheck].map(([name, seconds]) => `${name} ${seconds.toFixed(0)} s`).join(', ');
};

try {
  const cold = await measured('cold: lab run --fresh scenarios/two-node-flocker', scenario, 'fresh');
  const cached = await measured('cached: lab run scenarios/two-node-flocker', scenario, 'on');
  const changed = await measured('Flocker steps changed: the prefix restored, the Flocker steps run', flockerChanged(), 'on');
  log.info('\nscenarios/two-node-flocker, amd64, TCG, 2 cores (seconds):');
  log.info(`  ${'run'.padEnd(22)} ${['machines', 'certs', 'payload', 'provision', 'to checks', 'checks', 'total'].map((h) => h.padStart(10)).join('')}`);
  for (const [label, s] of [['cold (--fresh)', cold], ['cached', cached], ['Flocker changed', changed]] as const) {
    const row = [phase(s, 'machines'), phase(s, 'certificates'), phase(s, 'payload'), phase(s, 'provision'), untilChecks(s), phase(s, 'checks'), s.seconds];
    log.info(`  ${label.padEnd(22)} ${row.map((n) => n.toFixed(1).padStart(10)).join('')}`);
  }
  log.info(`  layers: cold saved ${cold.snapshot?.saved.length} (${((cold.snapshot?.saved.reduce((sum, l) => sum + l.bytes, 0) ?? 0) / 1024 ** 3).toFixed(2)} GiB, ${cold.snapshot?.saved.map((l) => `${l.name} ${l.seconds} s`).join(', ')})`);
  log.info(`  cached restored ${cached.snapshot?.restored?.depth} of ${cached.snapshot?.layers} layers in ${cached.snapshot?.restored?.seconds} s; Flocker changed restored ${changed.snapshot?.restored?.depth} and saved ${changed.snapshot?.saved.length}`);
  log.info(`  ratio to the start of the checks, cached / cold: ${(untilChecks(cached) / untilChecks(cold)).toFixed(3)} (target: <= 60 s, i.e. ${(60 / untilChecks(cold)).toFixed(3)})`);
  log.info(`  ratio of the whole run, cached / cold: ${(cached.seconds / cold.seconds).toFixed(3)} (target: <= 0.5)`);
  log.info(`  ratio of the whole run, Flocker changed / cold: ${(changed.seconds / cold.seconds).toFixed(3)}`);
  log.info(`  where the checks' time goes: cold ${checkTimes(cold)}; cached ${checkTimes(cached)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
