import { createHash } from 'node:crypto';
import { fullDiskReason } from '../util/disk.js';
import { chmodSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepResult } from '../report/summary.js';
import { withLock } from '../util/lock.js';
import { cacheDir } from '../util/paths.js';
import { isAlive } from '../util/proc.js';

/**
 * The snapshot layer cache, under the image cache's rules: `$LAB_CACHE_DIR/snapshots/<key>/`,
 * built in a temporary folder of the builder's (`.build-<key>-<pid>`), under a lock, and made
 * visible by an atomic rename once its manifest (written last) lists every file with its size
 * and SHA-256. A layer is checked against those before use; one that fails is removed. The
 * folders are 0700 and the files 0600: RAM states and certificate sets hold private keys.
 */

export const snapshotsDir = (): string => join(cacheDir(), 'snapshots');
/** Touched whenever a run restores the layer (not part of its checksummed files): what `prune` goes by. */
export const USED_MARK = '.used';
export const markUsed = (layer: Layer): void => writeFileSync(join(layer.dir, USED_MARK), '');
export const layerDir = (key: string): string => join(snapshotsDir(), key);
const MANIFEST = 'layer.json';

/** One VM's files in a layer. */
export interface LayerNode {
  name: string;
  /** File names inside the layer folder. */
  state: string;
  disk: string;
  /** Absolute path of the disk this layer's disk is an overlay of (the parent layer's, or the image's). */
  diskBase: string;
  /** That disk's SHA-256 when it is a layer's: a layer made again below is a different disk, and this one would not fit it. */
  baseSha256?: string;
  cmdline: string;
}

export interface LayerManifest {
  key: string;
  parent?: string;
  /** 1 for the machines layer, then one more per layer. */
  depth: number;
  /** What made it: "machines", "certificates", "payload" or "step <name>". */
  name: string;
  scenario: string;
  driver: string;
  madeAt: string;
  madeBy: string;
  /** When the VMs were paused for the save (host time, ms): a restore moves the guests' clocks on by the time since. */
  pausedAt: number;
  /** Seconds the work that made the layer took (the boot, the step), and the save itself. */
  seconds: number;
  saveSeconds: number;
  nodes: LayerNode[];
  /** The run's environment once this layer's work was done (the payload phase adds to it). */
  env: Record<string, string>;
  /** The step's results on each node, for a run that restores the layer. */
  steps: StepResult[];
  /** Folders of key material the layer carries (the certificates layer: the Flocker set). */
  secrets: string[];
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface Layer extends LayerManifest {
  dir: string;
}

export function readLayer(key: string): Layer | undefined {
  const dir = layerDir(key);
  try {
    return { ...(JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as LayerManifest), dir };
  } catch {
    return undefined;
  }
}

export function listLayers(): Layer[] {
  if (!existsSync(snapshotsDir())) return [];
  return readdirSync(snapshotsDir())
    .filter((name) => !name.startsWith('.'))
    .map(readLayer)
    .filter((layer): layer is Layer => layer !== undefined);
}

export const layerBytes = (layer: LayerManifest): number => Object.values(layer.files).reduce((sum, f) => sum + f.bytes, 0);

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Where a layer notes the files it has summed and found right, with their inode, size and change
 * times: a file none of those changed for since is not read again (any write, even of one byte in
 * place, changes its ctime). Not part of the checksummed files.
 */
const VERIFIED = '.verified';
type Verified = Record<string, { stamp: string; sha256: string }>;
const stampOf = (path: string): string => {
  const stat = statSync(path, { bigint: true });
  return `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
};
function readVerified(dir: string): Verified {
  try {
    return JSON.parse(readFileSync(join(dir, VERIFIED), 'utf8')) as Verified;
  } catch {
    return {};
  }
}

/** Every file of the layer as its manifest lists it: present, of its size and its SHA-256. The first mismatch, or undefined. */
export async function damage(layer: Layer, only?: (file: string) => boolean): Promise<string | undefined> {
  const verified = readVerified(layer.dir);
  try {
    for (const [file, expected] of Object.entries(layer.files)) {
      if (only && !only(file)) continue;
      const path = join(layer.dir, file);
      if (!existsSync(path)) return `${file} is missing`;
      const bytes = statSync(path).size;
      if (bytes !== expected.bytes) return `${file} has ${bytes} bytes, not ${expected.bytes}`;
      const stamp = stampOf(path);
      if (verified[file]?.stamp === stamp && verified[file]?.sha256 === expected.sha256) continue;
      delete verified[file];
      if ((await sha256Of(path)) !== expected.sha256) return `${file} does not match its checksum`;
      verified[file] = { stamp, sha256: expected.sha256 };
    }
    return undefined;
  } finally {
    if (existsSync(layer.dir)) writeFileSync(join(layer.dir, VERIFIED), JSON.stringify(verified), { mode: 0o600 });
  }
}

/** Files of a folder, recursively, as paths relative to it. */
function filesBelow(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesBelow(dir, join(prefix, entry.name)) : [join(prefix, entry.name)],
  );
}

export const buildDirName = (key: string, pid = process.pid): string => `.build-${key}-${pid}`;

/**
 * Makes a layer: `fill` writes its files into a fresh temporary folder; then every file is summed,
 * the manifest written, and the folder renamed into place. Under the key's lock; when another run
 * made the same layer meanwhile, that one is kept and `undefined` returned.
 */
export async function writeLayer(
  key: string,
  options: { signal?: AbortSignal; onWait?: (pid: number) => void; replace?: boolean },
  fill: (dir: string) => Promise<Omit<LayerManifest, 'key' | 'files'>>,
): Promise<Layer | undefined> {
  mkdirSync(snapshotsDir(), { recursive: true, mode: 0o700 });
  return withLock(join(snapshotsDir(), `.${key}.lock`), options, async () => {
    if (readLayer(key) && !options.replace) return undefined;
    reapDeadLayerBuilds();
    const tmp = join(snapshotsDir(), buildDirName(key));
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o700 });
    try {
      const manifest = await fill(tmp);
      const files: LayerManifest['files'] = {};
      const verified: Verified = {};
      for (const file of filesBelow(tmp).sort()) {
        const path = join(tmp, file);
        chmodSync(path, 0o600);
        files[file] = { bytes: statSync(path).size, sha256: await sha256Of(path) };
        verified[file] = { stamp: stampOf(path), sha256: files[file].sha256 };
      }
      writeFileSync(join(tmp, VERIFIED), JSON.stringify(verified), { mode: 0o600 });
      writeFileSync(join(tmp, MANIFEST), `${JSON.stringify({ key, ...manifest, files }, null, 2)}\n`, { mode: 0o600 });
      // A layer made anew is another disk: whatever stood on the old one goes with it.
      removeLayer(key);
      for (const above of descendants(key)) removeLayer(above);
      renameSync(tmp, layerDir(key));
      return readLayer(key);
    } catch (error) {
      const full = fullDiskReason(snapshotsDir());
      throw full ? new Error(`snapshot layer ${key} not saved: ${full}; nothing of it is kept (free space, or \`lab snapshot prune\`)`, { cause: error }) : error;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

export function removeLayer(key: string): void {
  rmSync(layerDir(key), { recursive: true, force: true });
}

/** Removes a layer, and every layer standing on it, under its key's lock (it never races a run writing the same layer). */
export async function discardLayer(key: string): Promise<void> {
  await withLock(join(snapshotsDir(), `.${key}.lock`), {}, async () => {
    for (const above of descendants(key)) removeLayer(above);
    removeLayer(key);
  });
}

/** Keys of the layers that stand on `key`, directly or further up. */
export function descendants(key: string): string[] {
  const layers = listLayers();
  const found: string[] = [];
  const below = new Set([key]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const layer of layers)
      if (layer.parent && below.has(layer.parent) && !below.has(layer.key)) {
        below.add(layer.key);
        found.push(layer.key);
        grew = true;
      }
  }
  return found;
}

/** Temporary folders of layer builds whose builder died (a `lab` killed mid-save), and the locks it held. */
export function reapDeadLayerBuilds(): string[] {
  if (!existsSync(snapshotsDir())) return [];
  const reaped: string[] = [];
  for (const name of readdirSync(snapshotsDir())) {
    const path = join(snapshotsDir(), name);
    const build = /^\.build-.+-(\d+)$/.exec(name);
    const owner = build ? Number(build[1]) : name.endsWith('.lock') ? Number(readFileSync(path, 'utf8').trim() || 0) : undefined;
    if (owner === undefined || isAlive(owner)) continue;
    rmSync(path, { recursive: true, force: true });
    if (build) reaped.push(name);
  }
  return reaped;
}
