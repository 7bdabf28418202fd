import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../util/paths.js';
import { isAlive, run } from '../util/proc.js';
import type { ImageRecipe } from './recipe.js';

/** A built image in the cache: a base disk plus the kernel and initrd for direct kernel boot. */
export interface Image {
  key: string;
  dir: string;
  recipe: ImageRecipe;
  disk: string;
  kernel: string;
  initrd: string;
  /** Private key that logs in as root; one per image. */
  clientKey: string;
  /** The guest's SSH host key (OpenSSH public key line), pinned by every connection. */
  hostKey: string;
  builtAt: string;
  buildSeconds: number;
}

export const imagesDir = (): string => join(cacheDir(), 'images');

/** Written last, inside the temporary folder, before the atomic rename: an entry without it is not an image. */
export const MANIFEST = 'image.json';

export function readImage(dir: string): Image | undefined {
  const manifest = join(dir, MANIFEST);
  if (!existsSync(manifest)) return undefined;
  const meta = JSON.parse(readFileSync(manifest, 'utf8')) as Omit<Image, 'dir' | 'disk' | 'kernel' | 'initrd' | 'clientKey' | 'hostKey'>;
  return {
    ...meta,
    dir,
    disk: join(dir, 'disk.qcow2'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    clientKey: join(dir, 'id_ed25519'),
    hostKey: readFileSync(join(dir, 'host_key.pub'), 'utf8').trim(),
  };
}

export function listImages(): Image[] {
  if (!existsSync(imagesDir())) return [];
  return readdirSync(imagesDir())
    .filter((name) => !name.startsWith('.'))
    .map((name) => readImage(join(imagesDir(), name)))
    .filter((image): image is Image => image !== undefined);
}

export function diskUsage(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? diskUsage(path) : statSync(path).size;
  }
  return total;
}

/** Temporary build folders are named `.build-<key>-<pid>`; the PID says whether the builder lives. */
export const buildDirName = (key: string, pid: number): string => `.build-${key}-${pid}`;

/**
 * Removes the folders of builds whose builder died (a killed `lab`), unmounting whatever the
 * builder had bound inside its chroot first, so that removing the folder never reaches the host.
 */
export async function reapDeadBuilds(): Promise<string[]> {
  if (!existsSync(imagesDir())) return [];
  const reaped: string[] = [];
  for (const name of readdirSync(imagesDir())) {
    const match = /^\.build-.+-(\d+)$/.exec(name);
    if (!match || isAlive(Number(match[1]))) continue;
    await stopOrphanBuilder(join(imagesDir(), name));
    await removeBuildDir(join(imagesDir(), name));
    reaped.push(name);
  }
  return reaped;
}

/** A builder whose `lab` was killed keeps running in its own process group: stop that group. */
async function stopOrphanBuilder(dir: string): Promise<void> {
  const pgidFile = join(dir, 'builder.pgid');
  const pgid = existsSync(pgidFile) ? Number(readFileSync(pgidFile, 'utf8')) : 0;
  if (!pgid || !isAlive(pgid)) return;
  const cmdline = readFileSync(`/proc/${pgid}/cmdline`, 'utf8');
  if (!cmdline.includes('build-image.sh')) return;
  process.kill(-pgid, 'SIGKILL');
  for (let i = 0; i < 50 && isAlive(pgid); i++) await new Promise((r) => setTimeout(r, 100));
}

export async function removeBuildDir(dir: string): Promise<void> {
  await unmountBelow(dir);
  await run(['rm', '-rf', '--one-file-system', dir]);
}

/** Unmounts, deepest first, every mount point at or below `dir`. */
export async function unmountBelow(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((point): point is string => !!point && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await run(['umount', '-l', point], { check: false });
}

export function removeImage(image: Image): void {
  rmSync(image.dir, { recursive: true, force: true });
}
