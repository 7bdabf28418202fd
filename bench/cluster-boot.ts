/**
 * Cluster boot: wall time of the machines phase (switch, parallel boots, SSH logins, /etc/hosts)
 * for 1, 2 and 3 amd64 nodes and for 1 arm64 node, in one run, with ratios against the 1-node
 * amd64 baseline. Run: npm run bench:cluster (after bin/lab setup). BENCH_ROUNDS sets the rounds.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScenario } from '../lab/run/orchestrator.js';
import { Logger, silentLogger } from '../lab/util/log.js';

const log = new Logger();
const work = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
process.env.LAB_REPORTS_DIR = join(work, 'reports');

function scenario(name: string, arch: string, nodes: number): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const list = Array.from({ length: nodes }, (_, i) => `  - name: n${i + 1}`).join('\n');
  writeFileSync(join(dir, 'scenario.yaml'), `name: ${name}\narch: ${arch}\nnodes:\n${list}\n`);
  return dir;
}

async function machinesSeconds(dir: string): Promise<number> {
  const outcome = await runScenario({
    scenario: dir,
    // Boots, every time: a restored layer would measure something else (bench/snapshot.ts does).
    snapshots: 'off',
    log: silentLogger(),
    signal: new AbortController().signal,
  });
  const phase = outcome.summary.phases.find((p) => p.name === 'machines');
  if (!phase || phase.status !== 'passed') throw new Error(`${dir}: machines phase ${phase?.status}: ${phase?.error}`);
  return phase.seconds;
}

const cases = [
  { label: '1 x amd64', dir: scenario('one', 'amd64', 1) },
  { label: '2 x amd64', dir: scenario('two', 'amd64', 2) },
  { label: '3 x amd64', dir: scenario('three', 'amd64', 3) },
  { label: '1 x arm64', dir: scenario('arm', 'arm64', 1) },
];
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const times = new Map<string, number[]>(cases.map((c) => [c.label, []]));
try {
  for (let round = 1; round <= rounds; round++) {
    for (const c of cases) {
      const seconds = await machinesSeconds(c.dir);
      times.get(c.label)?.push(seconds);
      log.info(`round ${round}: ${c.label}: ${seconds.toFixed(1)} s`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const base = mean(times.get('1 x amd64') ?? [1]);
log.info(`machines phase (boot to SSH login on every node, TCG, 2 vCPU and 1 GiB per node, ${rounds} round(s)):`);
for (const c of cases) {
  const m = mean(times.get(c.label) ?? []);
  log.info(`  ${c.label}: ${m.toFixed(1)} s   ratio to 1 x amd64 (baseline): ${(m / base).toFixed(2)}`);
}
