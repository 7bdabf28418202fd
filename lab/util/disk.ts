import { existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** `path`, or its nearest ancestor that exists (where it will be made). */
export function existingAncestor(path: string): string {
  let at = path;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}

/** Free bytes on the file system that holds `path` (or would, once made). */
export function freeBytes(path: string): number {
  const stats = statfsSync(existingAncestor(path));
  return stats.bavail * stats.bsize;
}

/** Below this, a failed write is put down to a full disk. */
const NEARLY_FULL_BYTES = 64 * 2 ** 20;

/**
 * When work that wrote into `dir` failed: "its file system is full (...)" if it is (nearly), so
 * the user reads the cause rather than the symptom a tool printed ("Couldn't download", "Broken pipe").
 */
export function fullDiskReason(dir: string): string | undefined {
  const free = freeBytes(dir);
  return free < NEARLY_FULL_BYTES ? `the file system of ${dir} is full (${Math.round(free / 2 ** 20)} MiB free)` : undefined;
}
