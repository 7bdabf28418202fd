import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver } from '../machines/driver.js';
import { reapDeadBuilds } from '../images/cache.js';
import { reapDeadLayerBuilds } from '../snapshots/store.js';
import type { Logger } from '../util/log.js';
import { stateDir } from '../util/paths.js';
import { isAlive, stopProcesses } from '../util/proc.js';
import { processes } from '../util/procfs.js';

/**
 * Every live run has a folder under `<state>/runs/<run-id>/` with `run.json` (the lab's PID and
 * start time) and its VMs' overlays. A run whose lab process is gone was killed: the next `lab`
 * stops its VMs and removes its folder (testcontainers' Ryuk, without a daemon).
 */
export interface RunRecord {
  runId: string;
  pid: number;
  /** Kernel start time of the lab process, so a reused PID is not mistaken for it. */
  pidStart: string;
  scenario: string;
  reportDir: string;
  startedAt: string;
  /** Set when the run ended with its VMs kept: how to reach them. */
  kept?: KeptRun;
}

/** What `lab ssh`, `lab verify` and `lab down` need to find a kept run again. */
export interface KeptRun {
  keptAt: string;
  /** The cluster descriptor the checks use (nodes, SSH endpoints, addresses). */
  descriptorFile: string;
  /** Absolute paths of the scenario's check files. */
  checks: string[];
  /** Where the VMs' specs and the run's last snapshot layer are recorded (see KeptMachines), when it has one. */
  machinesFile?: string;
}

export const runsDir = (): string => join(stateDir(), 'runs');
export const runStateDir = (runId: string): string => join(runsDir(), runId);

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): [0] is field 3, the state. */
export function procStatFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStart(pid: number): string {
  try {
    return procStatFields(pid)[19] ?? '';
  } catch {
    return '';
  }
}

export function registerRun(record: Omit<RunRecord, 'pid' | 'pidStart'>): string {
  const dir = runStateDir(record.runId);
  mkdirSync(dir, { recursive: true });
  const full: RunRecord = { ...record, pid: process.pid, pidStart: processStart(process.pid) };
  writeFileSync(join(dir, 'run.json.new'), `${JSON.stringify(full, null, 2)}\n`);
  renameSync(join(dir, 'run.json.new'), join(dir, 'run.json'));
  return dir;
}

export function markKept(runId: string, kept: KeptRun): void {
  const record = readRecord(runId);
  if (!record) throw new Error(`run ${runId} has no record`);
  writeFileSync(join(runStateDir(runId), 'run.json'), `${JSON.stringify({ ...record, kept }, null, 2)}\n`);
}

/** Runs whose VMs were kept after their lab ended, oldest first. */
export function keptRuns(): (RunRecord & { kept: KeptRun })[] {
  if (!existsSync(runsDir())) return [];
  return readdirSync(runsDir())
    .map(readRecord)
    .filter((r): r is RunRecord & { kept: KeptRun } => !!r?.kept)
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** Every process of one run (or of all runs): hypervisors by their label, helpers by their state folder; each PID once. */
async function runProcesses(drivers: Driver[], runId?: string): Promise<{ runId: string; pid: number }[]> {
  const all = [...(await Promise.all(drivers.map((d) => d.list(runId)))).flat(), ...helperProcesses()];
  const byPid = new Map(all.filter((p) => runId === undefined || p.runId === runId).map((p) => [p.pid, p]));
  return [...byPid.values()];
}

/** Stops every process of a run (VMs, switch) and removes its state folder. */
export async function destroyRun(runId: string, drivers: Driver[]): Promise<number> {
  const processes = await runProcesses(drivers, runId);
  await stopProcesses(processes.map((p) => p.pid));
  unregisterRun(runId);
  return processes.length;
}

export function unregisterRun(runId: string): void {
  rmSync(runStateDir(runId), { recursive: true, force: true });
}

function readRecord(runId: string): RunRecord | undefined {
  const file = join(runStateDir(runId), 'run.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

const ownerAlive = (record: RunRecord): boolean => isAlive(record.pid) && processStart(record.pid) === record.pidStart;

/** A lab that is starting has made its run folder and is about to write run.json: not abandoned. */
const STARTING_MS = 60_000;

/** A run folder whose lab is gone and whose VMs were not kept. */
export function abandoned(runId: string): boolean {
  const record = readRecord(runId);
  if (record) return !record.kept && !ownerAlive(record);
  try {
    return Date.now() - statSync(runStateDir(runId)).mtimeMs > STARTING_MS;
  } catch {
    return false;
  }
}

/**
 * What every command about runs does first (list, ssh, verify, reset, down): if a killed lab left
 * a run folder, clean up after it. Costs a directory listing when there is nothing to clean.
 */
export async function reapAbandonedRuns(log: Logger): Promise<void> {
  if (!existsSync(runsDir()) || !readdirSync(runsDir()).some(abandoned)) return;
  const { allDrivers } = await import('../machines/registry.js');
  await reapOrphans(await allDrivers(), log);
}

function namesStateFolder(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${runsDir()}/`);
  } catch {
    return false;
  }
}

/** Helper processes (the cluster switch) that name a run's state folder on their command line. */
function helperProcesses(): { runId: string; pid: number }[] {
  const marker = `${runsDir()}/`;
  const found: { runId: string; pid: number }[] = [];
  for (const { pid, args } of processes()) {
    const cmdline = args.join('\0');
    const at = cmdline.indexOf(marker);
    if (at < 0 || pid === process.pid) continue;
    const runId = cmdline.slice(at + marker.length).split(/[/\0]/)[0];
    if (runId) found.push({ runId, pid });
  }
  return found;
}

/** Stops and removes what killed labs left: VMs, run folders, half-built images and snapshot layers. Returns what it cleaned. */
export async function reapOrphans(drivers: Driver[], log: Logger): Promise<string[]> {
  const cleaned: string[] = [];
  const runIds = new Set(existsSync(runsDir()) ? readdirSync(runsDir()) : []);
  // A hypervisor of a run without a folder here is this state folder's only if its command line
  // names it (another LAB_STATE_DIR's lab may be running it).
  const processes = (await runProcesses(drivers)).filter((p) => runIds.has(p.runId) || namesStateFolder(p.pid));
  for (const p of processes) runIds.add(p.runId);
  for (const runId of runIds) {
    // A run with no folder left here has no record either: only its processes remain, and they go.
    if (existsSync(runStateDir(runId)) && !abandoned(runId)) continue;
    for (const p of processes.filter((q) => q.runId === runId)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    unregisterRun(runId);
    cleaned.push(runId);
    log.info(`cleaned up after run ${runId}: its lab process is gone`);
  }
  for (const build of await reapDeadBuilds()) {
    cleaned.push(build);
    log.info(`removed an unfinished image build left by a killed lab: ${build}`);
  }
  for (const build of reapDeadLayerBuilds()) {
    cleaned.push(build);
    log.info(`removed an unfinished snapshot layer left by a killed lab: ${build}`);
  }
  return cleaned;
}
