import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeControl } from '../machines/faults.js';

/**
 * What one run's emulated OpenStack knows, in the run's state folder (`<state>/cloud/`):
 * `cloud.json` (its one project and user, made per run, 0600), `servers.json` (the run's VMs as
 * Nova's servers, written by the lab once they run), `volumes.json` and `volumes/<id>.raw` (the
 * Cinder volumes, sparse files).
 */

/** The cloud's one region, project and user; the password is made per run and never reaches a report. */
export interface CloudIdentity {
  region: string;
  projectId: string;
  projectName: string;
  userId: string;
  userName: string;
  password: string;
  /** How long a token lives (Keystone's default: one hour). */
  tokenSeconds: number;
}

/** A VM of the run, as Nova lists it. */
export interface Server {
  id: string;
  name: string;
  /** The node's cluster address: Flocker found its own server by its addresses. */
  address: string;
  mac: string;
  vcpus: number;
  memoryMiB: number;
  /** Where the hot-plug reaches the VM; absent for a driver without a monitor. */
  control?: NodeControl;
}

export type VolumeStatus = 'creating' | 'available' | 'attaching' | 'in-use' | 'detaching' | 'deleting' | 'error';

export interface Attachment {
  /** Cinder's attachment id (its own uuid). */
  id: string;
  serverId: string;
  /** What Nova said the device is ("/dev/vdb"); the guest finds the disk by its serial instead. */
  device: string;
  attachedAt: string;
}

export interface Volume {
  id: string;
  name: string;
  description: string;
  /** GiB, as Cinder counts. */
  size: number;
  status: VolumeStatus;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  attachment?: Attachment;
}

export const IDENTITY_FILE = 'cloud.json';
export const SERVERS_FILE = 'servers.json';
const VOLUMES_FILE = 'volumes.json';

/** Makes the identity of a new run's cloud: random ids and password. */
export function newIdentity(): CloudIdentity {
  const hex = () => randomUUID().replace(/-/g, '');
  return {
    region: 'RegionOne',
    projectId: hex(),
    projectName: 'lab',
    userId: hex(),
    userName: 'lab',
    password: randomUUID(),
    tokenSeconds: 3600,
  };
}

function writeJson(file: string, value: unknown, mode = 0o600): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`, { mode });
  renameSync(`${file}.tmp`, file);
}

const readJson = <T>(file: string, fallback: T): T => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : fallback);

export function writeIdentity(dir: string, identity: CloudIdentity): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeJson(join(dir, IDENTITY_FILE), identity);
}

export const readIdentity = (dir: string): CloudIdentity =>
  readJson<CloudIdentity | undefined>(join(dir, IDENTITY_FILE), undefined) ?? missing(dir);

function missing(dir: string): never {
  throw new Error(`no ${IDENTITY_FILE} in ${dir}: the cloud was not set up`);
}

export function writeServers(dir: string, servers: Server[]): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeJson(join(dir, SERVERS_FILE), servers);
}

/** The cloud's volumes; every change is written through, so a cloud started again finds them. */
export class VolumeStore {
  private readonly volumes: Map<string, Volume>;
  readonly fileDir: string;

  constructor(private readonly dir: string) {
    this.fileDir = join(dir, 'volumes');
    mkdirSync(this.fileDir, { recursive: true, mode: 0o700 });
    this.volumes = new Map(readJson<Volume[]>(join(dir, VOLUMES_FILE), []).map((v) => [v.id, v]));
  }

  list(): Volume[] {
    return [...this.volumes.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): Volume | undefined {
    return this.volumes.get(id);
  }

  /** The volume's disk on the host. */
  file(id: string): string {
    return join(this.fileDir, `${id}.raw`);
  }

  put(volume: Volume): void {
    volume.updatedAt = new Date().toISOString();
    this.volumes.set(volume.id, volume);
    this.save();
  }

  remove(id: string): void {
    this.volumes.delete(id);
    this.save();
  }

  /** Drops every volume and its disk: the VMs went back to a snapshot layer, which holds none. */
  clear(): void {
    for (const id of this.volumes.keys()) rmSync(this.file(id), { force: true });
    this.volumes.clear();
    this.save();
  }

  private save(): void {
    writeJson(join(this.dir, VOLUMES_FILE), this.list());
  }
}

/** Whether the cloud of `dir` holds any volume (a snapshot layer cannot keep them: their disks are in VMs). */
export const hasVolumes = (dir: string): boolean => readJson<Volume[]>(join(dir, VOLUMES_FILE), []).length > 0;

/** The servers the lab wrote for this run (re-read on every request: the lab writes them once the VMs run). */
export const readServers = (dir: string): Server[] => readJson<Server[]>(join(dir, SERVERS_FILE), []);
