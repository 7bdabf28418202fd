/**
 * Flocker's `loopback` dataset backend, for real: a dataset's volume is a sparse file
 * `<root_path>/<dataset_id>` of maximum_size bytes, attached with `losetup`, formatted ext4 once,
 * mounted at `<mount_root>/<dataset_id>` (/flocker/<id>, where Flocker mounted datasets).
 *
 * What is attached and mounted is always read from the system (`losetup -j`, /proc/self/mountinfo),
 * never only remembered, so a restarted agent finds its volumes as it left them. The one thing kept
 * on disk is `<root_path>/.flocker-lab-agent.json`: which datasets this node has had and which node
 * each was created for, so that a volume is only ever created once, on its own node: loopback
 * volumes cannot travel, and a dataset moved to a node that lacks its file must not get an empty
 * one there (that would look like a successful move with the data gone).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAXIMUM_SIZE, isUuid } from './schema.js';
import type { AgentConfiguration, AgentDataset, ReportedDataset } from './types.js';

export const DEFAULT_ROOT_PATH = '/var/lib/flocker/loopback';
export const DEFAULT_MOUNT_ROOT = '/flocker';
const RECORDS_FILE = '.flocker-lab-agent.json';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell, stdin closed (mkfs must never wait for an answer). */
export function run(command: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin`, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function must(command: string, args: string[]): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.trim() || `exit status ${result.code}`}`);
  return result.stdout;
}

/** The mount points of /proc/self/mountinfo, each with the sources mounted there (innermost last). */
export function readMounts(): Map<string, string[]> {
  const mounts = new Map<string, string[]>();
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields.length < dash + 3) continue;
    const point = unescape(fields[4] as string);
    const source = unescape(fields[dash + 2] as string);
    mounts.set(point, [...(mounts.get(point) ?? []), source]);
  }
  return mounts;
}

interface DatasetRecord {
  /** The node the dataset was created for: the only one that may create its volume. */
  origin: string;
  /** This node has had the volume (created or found it). */
  had: boolean;
}

export class LoopbackBackend {
  /** Per dataset: the last notice logged, so a standing problem is logged once. */
  private readonly notices = new Map<string, string>();

  constructor(
    readonly rootPath: string = DEFAULT_ROOT_PATH,
    readonly mountRoot: string = DEFAULT_MOUNT_ROOT,
  ) {}

  fileOf(datasetId: string): string {
    return join(this.rootPath, datasetId);
  }

  mountPointOf(datasetId: string): string {
    return join(this.mountRoot, datasetId);
  }

  /** Where the kernel says a dataset is mounted (mountinfo shows resolved paths). */
  private realMountPoint(datasetId: string): string {
    mkdirSync(this.mountRoot, { recursive: true });
    return join(realpathSync(this.mountRoot), datasetId);
  }

  private loadRecords(): Record<string, DatasetRecord> {
    try {
      return (JSON.parse(readFileSync(join(this.rootPath, RECORDS_FILE), 'utf8')) as { datasets: Record<string, DatasetRecord> }).datasets;
    } catch {
      return {};
    }
  }

  private saveRecords(records: Record<string, DatasetRecord>): void {
    const file = join(this.rootPath, RECORDS_FILE);
    writeFileSync(`${file}.tmp`, `${JSON.stringify({ datasets: records }, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }

  /** The loop devices the volume's file is attached to (`losetup -j` matches by device and inode). */
  async devicesOf(file: string): Promise<string[]> {
    if (!existsSync(file)) return [];
    const out = await must('losetup', ['-j', file]);
    return out
      .split('\n')
      .map((line) => /^(\/dev\/[^:]+):/.exec(line)?.[1])
      .filter((device): device is string => device !== undefined);
  }

  /** The file system on a device: its TYPE, or undefined when blkid finds no signature at all. */
  async filesystemOf(device: string): Promise<string | undefined> {
    const result = await run('blkid', ['-p', '-o', 'export', device]);
    if (result.code === 2) return undefined;
    if (result.code !== 0) throw new Error(`blkid -p ${device}: ${result.stderr.trim() || `exit status ${result.code}`}`);
    const values = Object.fromEntries(
      result.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    return values.TYPE ?? (values.PTTYPE ? `${values.PTTYPE} partition table` : 'unknown signature');
  }

  /** The volumes on this node as the system has them: every dataset file, with `path` when mounted. */
  async observe(): Promise<ReportedDataset[]> {
    if (!existsSync(this.rootPath)) return [];
    const mounts = readMounts();
    const result: ReportedDataset[] = [];
    for (const id of readdirSync(this.rootPath).filter(isUuid).sort()) {
      const file = this.fileOf(id);
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        continue;
      }
      const sources = mounts.get(this.realMountPoint(id)) ?? [];
      const devices = sources.length ? await this.devicesOf(file).catch(() => []) : [];
      const attached = devices.some((d) => sources.includes(d));
      result.push({ dataset_id: id, maximum_size: size, ...(attached ? { path: this.mountPointOf(id) } : {}) });
    }
    return result;
  }

  /**
   * Makes the system match the configuration for this node, then reports what it has. A failure
   * with one dataset is logged and the others go on; it is tried again on the next round.
   */
  async converge(myUuid: string, configuration: AgentConfiguration, log: (line: string) => void): Promise<ReportedDataset[]> {
    mkdirSync(this.rootPath, { recursive: true });
    const me = myUuid.toLowerCase();
    const records = this.loadRecords();
    const before = JSON.stringify(records);
    const noticed = new Set<string>();
    const notice = (key: string, message: string): void => {
      noticed.add(key);
      if (this.notices.get(key) !== message) log(message);
      this.notices.set(key, message);
    };
    const leased = new Set(configuration.leases.filter((l) => l.node_uuid.toLowerCase() === me).map((l) => l.dataset_id));
    for (const dataset of configuration.datasets) {
      const id = dataset.dataset_id;
      if (!isUuid(id)) continue;
      try {
        await this.convergeDataset(me, dataset, records, leased.has(id), log, (message) => notice(id, message));
      } catch (error) {
        notice(id, `dataset ${id}: ${(error as Error).message}`);
      }
    }
    for (const key of this.notices.keys()) if (!noticed.has(key)) this.notices.delete(key);
    if (JSON.stringify(records) !== before) this.saveRecords(records);
    return this.observe();
  }

  private async convergeDataset(
    me: string,
    dataset: AgentDataset,
    records: Record<string, DatasetRecord>,
    leasedHere: boolean,
    log: (line: string) => void,
    notice: (message: string) => void,
  ): Promise<void> {
    const id = dataset.dataset_id;
    const file = this.fileOf(id);
    const mountPoint = this.mountPointOf(id);
    const realMountPoint = this.realMountPoint(id);
    const primary = dataset.primary.toLowerCase();
    // The node it was created for: the control service says so; a configuration without it counts
    // the primary this node first saw it with.
    const record = (records[id] ??= { origin: (dataset.origin ?? primary).toLowerCase(), had: false });
    if (dataset.origin) record.origin = dataset.origin.toLowerCase();
    const exists = existsSync(file);
    if (exists) record.had = true;

    if (!dataset.deleted && primary === me) {
      if (!exists) {
        if (record.had) {
          notice(`dataset ${id}: its loopback volume ${file} is gone from this node; not creating an empty one`);
          return;
        }
        if (record.origin !== me) {
          notice(`dataset ${id}: its loopback volume is not on this node`);
          return;
        }
        const size = dataset.maximum_size ?? DEFAULT_MAXIMUM_SIZE;
        const fd = openSync(file, 'wx', 0o600);
        try {
          ftruncateSync(fd, size);
        } finally {
          closeSync(fd);
        }
        record.had = true;
        log(`dataset ${id}: created the loopback volume ${file} (${size} bytes, sparse)`);
      }
      const mounted = readMounts().get(realMountPoint) ?? [];
      let device = (await this.devicesOf(file))[0];
      if (!device) {
        device = (await must('losetup', ['--find', '--show', file])).trim();
        log(`dataset ${id}: attached ${file} as ${device}`);
      }
      if (mounted.length) {
        if (!mounted.includes(device))
          throw new Error(`${mountPoint} is mounted from ${mounted.join(', ')}, not from ${device}; leaving it alone`);
        return;
      }
      const type = await this.filesystemOf(device);
      if (type === undefined) {
        // Only a device without any signature is formatted: an existing file system is never touched.
        await must('mkfs.ext4', ['-q', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', device]);
        log(`dataset ${id}: made an ext4 file system on ${device}`);
      } else if (type !== 'ext4') {
        throw new Error(`${device} holds ${type}, not ext4; not formatting or mounting it`);
      }
      mkdirSync(mountPoint, { recursive: true });
      // noinit_itable: no background zeroing of inode tables, which would fill the sparse file.
      await must('mount', ['-t', 'ext4', '-o', 'noinit_itable', device, mountPoint]);
      log(`dataset ${id}: mounted ${device} at ${mountPoint}`);
      return;
    }

    // Deleted, or its primary is another node: nothing of it may stay attached here.
    const devices = await this.devicesOf(file);
    const mounted = readMounts().has(realMountPoint);
    const why = dataset.deleted ? 'deleted' : `moved to node ${primary}`;
    if (leasedHere && (mounted || devices.length > 0 || (dataset.deleted && exists))) {
      // A lease held by this node keeps the dataset where it is until it is released or expires.
      notice(`dataset ${id}: ${why}, but this node holds a lease on it; leaving it as it is`);
      return;
    }
    for (let i = 0; i < 8 && readMounts().has(realMountPoint); i++) {
      await must('umount', [mountPoint]);
      log(`dataset ${id}: ${why}; unmounted ${mountPoint}`);
    }
    if (readMounts().has(realMountPoint)) throw new Error(`${mountPoint} is still mounted`);
    if (mounted || existsSync(mountPoint)) {
      try {
        rmdirSync(mountPoint);
      } catch {
        // not empty or already gone: leave it
      }
    }
    for (const device of devices) {
      await must('losetup', ['-d', device]);
      log(`dataset ${id}: ${why}; detached ${device}`);
    }
    if (dataset.deleted && exists) {
      if ((await this.devicesOf(file)).length) throw new Error(`${file} is still attached; not destroying it`);
      rmSync(file);
      log(`dataset ${id}: deleted; destroyed the loopback volume ${file}`);
    }
  }
}
