/**
 * Idle load: what a provisioned two-node-flocker cluster costs the host while nothing is asked of
 * it (the stand-ins' own loops: heartbeats, node monitoring, the agents' reports, etcd's ticks),
 * against the same two VMs booted bare, both measured in this run. Under TCG every guest cycle is
 * the host's, and each kept-cluster test runs on top of this load, so it is the figure a cheaper
 * payload must move. Prints each VM's host CPU over the window (% of one core), the ratio to the
 * bare baseline, and the guest processes that used the most. Both clusters come from the snapshot
 * layers when they are cached (two-node-flocker takes about 18 minutes cold otherwise).
 * Run: npm run bench:idle (after bin/lab setup). BENCH_IDLE_SECONDS sets the window (default 60).
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ClusterDescriptor } from '../lab/checks/descriptor.js';
import { loadDriver } from '../lab/machines/registry.js';
import { SshSession } from '../lab/remote/ssh.js';
import { runScenario } from '../lab/run/orchestrator.js';
import { destroyRun, keptRuns, procStatFields } from '../lab/run/registry.js';
import { Logger } from '../lab/util/log.js';
import { projectRoot } from '../lab/util/paths.js';

const log = new Logger();
const work = mkdtempSync(join(tmpdir(), 'bench-idle-'));
process.env.LAB_REPORTS_DIR = join(work, 'reports');
const windowSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
// A restored cluster first catches up (clocks stepped, heartbeats and leases renewed), a booted VM
// finishes its boot-time jobs.
const SETTLE_SECONDS = Number(process.env.BENCH_IDLE_SETTLE ?? 60);
const TICKS_PER_SECOND = 100; // USER_HZ, on the host and in the guests

function scenario(name: string, yaml: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'scenario.yaml'), yaml);
  return dir;
}

/** utime + stime of a process, in ticks (fields 14 and 15 of /proc/<pid>/stat). */
function cpuTicks(pid: number): number {
  const fields = procStatFields(pid);
  return Number(fields[11]) + Number(fields[12]);
}

// In the guest, before and after the window: every process's ticks (one cat for all) and the vCPUs'
// busy ticks (/proc/stat's cpu line without idle and iowait), read last before the window and first
// after it; then what each process runs. Nothing of the lab runs in the guest during the window:
// the host's figure is the cluster's own (forking a reader per process cost a bare VM 20% of a core).
const BUSY = `awk '/^cpu / { print "busy", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat`;
const PROCESSES = `cat /proc/[0-9]*/stat 2>/dev/null | awk '{ r = substr($0, index($0, ") ") + 2); split(r, a, " "); print $1, a[12] + a[13] }'`;
const BEFORE = `{ ${PROCESSES}; ${BUSY}; } > /tmp/bench-idle-a`;
const AFTER = `{ ${BUSY}; ${PROCESSES}; } | sort > /tmp/bench-idle-b; sort /tmp/bench-idle-a > /tmp/bench-idle-s
join /tmp/bench-idle-s /tmp/bench-idle-b | while read -r pid a b; do
  [ "$pid" = busy ] && { echo "busy $((b - a))"; continue; }
  [ "$b" -gt "$a" ] || continue
  cmd=$(tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null | cut -c1-200); [ -n "$cmd" ] || cmd="[$(cat /proc/$pid/comm 2>/dev/null)]"
  echo "$((b - a)) $cmd"
done; rm -f /tmp/bench-idle-a /tmp/bench-idle-b /tmp/bench-idle-s`;

/** A short name for a guest command line: the program (without node and its flags), and hyperkube's component. */
function label(cmd: string): string {
  if (cmd.startsWith('[')) return cmd.trim(); // a kernel thread, by its name
  const words = cmd.split(' ').filter((w) => w && !w.startsWith('-') && w !== 'node');
  const program = basename(words[0] ?? cmd).replace(/\.mjs$/, '');
  return program === 'hyperkube' ? `hyperkube ${words[1] ?? ''}` : program;
}

interface NodeLoad {
  node: string;
  hostPercent: number;
  /** The guest's own busy time over its vCPUs, in % of one vCPU: the rest of hostPercent is emulation's overhead. */
  guestPercent: number;
  top: { label: string; percent: number }[];
}

/** Keeps the scenario's cluster, lets it settle, then samples host and guests over the same window; always destroys it. */
async function idleLoad(title: string, dir: string): Promise<NodeLoad[]> {
  log.info(`\n=== ${title}`);
  const outcome = await runScenario({ scenario: dir, keep: 'always', log, signal: new AbortController().signal });
  const { runId } = outcome.summary;
  const qemu = await loadDriver('qemu');
  try {
    if (outcome.exitCode !== 0) throw new Error(`${title}: the run ${outcome.summary.verdict} (${outcome.runDir})`);
    const kept = keptRuns().find((r) => r.runId === runId);
    if (!kept) throw new Error(`${title}: run ${runId} was not kept`);
    const { nodes } = JSON.parse(readFileSync(kept.kept.descriptorFile, 'utf8')) as ClusterDescriptor;
    const vms = await qemu.list(runId);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_SECONDS * 1000));
    log.info(`sampling ${windowSeconds} s of idle load on ${nodes.map((n) => n.name).join(', ')} ...`);
    const sessions = await Promise.all(nodes.map((n) => SshSession.connect(n.ssh)));
    try {
      await Promise.all(sessions.map((s) => s.exec(BEFORE, { timeout: 60 })));
      const before = new Map(vms.map((vm) => [vm.name, cpuTicks(vm.pid)]));
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
      const after = new Map(vms.map((vm) => [vm.name, cpuTicks(vm.pid)]));
      const seconds = (performance.now() - started) / 1000;
      const guests = await Promise.all(sessions.map((s) => s.exec(AFTER, { timeout: 120 })));
      return nodes.map((node, i) => {
        const vm = vms.find((v) => v.name === node.name);
        if (!vm) throw new Error(`${title}: no QEMU process for ${node.name}`);
        const byLabel = new Map<string, number>();
        let busy = 0;
        for (const line of guests[i]?.stdout.split('\n') ?? []) {
          const [ticks, ...cmd] = line.split(' ');
          if (ticks === 'busy') busy = Number(cmd[0]);
          if (ticks === 'busy' || !cmd.length) continue;
          const name = label(cmd.join(' '));
          byLabel.set(name, (byLabel.get(name) ?? 0) + Number(ticks));
        }
        const percent = (ticks: number) => (100 * ticks) / TICKS_PER_SECOND / seconds;
        return {
          node: node.name,
          hostPercent: percent((after.get(node.name) ?? 0) - (before.get(node.name) ?? 0)),
          guestPercent: percent(busy),
          top: [...byLabel]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 8)
            .map(([name, ticks]) => ({ label: name, percent: percent(ticks) })),
        };
      });
    } finally {
      for (const s of sessions) s.close();
    }
  } finally {
    await destroyRun(runId, [qemu]);
  }
}

const total = (loads: NodeLoad[]) => loads.reduce((sum, l) => sum + l.hostPercent, 0);
try {
  const bare = await idleLoad(
    "baseline: two-node-flocker's two VMs, booted bare",
    scenario('bare', 'name: idle-bare\nnodes:\n  - name: master\n    memory: 1536\n  - name: worker\nchecks: [nodes-up]\n'),
  );
  const cluster = await idleLoad(
    'scenarios/two-node-flocker, provisioned',
    scenario('cluster', `extends: ${join(projectRoot, 'scenarios', 'two-node-flocker')}\nname: idle-cluster\nchecks: [nodes-up]\n`),
  );
  const results = [
    ['bare', bare],
    ['two-node-flocker', cluster],
  ] as const;
  log.info(`\nidle load, amd64, TCG, ${windowSeconds} s window after ${SETTLE_SECONDS} s to settle (host CPU, % of one core):`);
  for (const [name, loads] of results) {
    log.info(
      `  ${name.padEnd(18)} ${loads.map((l) => `${l.node} ${l.hostPercent.toFixed(1)} (its guest busy ${l.guestPercent.toFixed(1)})`).join(', ')}; total ${total(loads).toFixed(1)}`,
    );
  }
  log.info(`  ratio of the cluster's idle load to the bare VMs' (baseline): ${(total(cluster) / total(bare)).toFixed(2)}`);
  for (const [name, loads] of results)
    for (const l of loads)
      log.info(
        `  ${name} ${l.node}'s busiest guest processes (% of one vCPU): ${l.top.map((t) => `${t.label} ${t.percent.toFixed(1)}`).join(', ')}`,
      );
} finally {
  rmSync(work, { recursive: true, force: true });
}
