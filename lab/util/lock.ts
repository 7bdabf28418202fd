import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './proc.js';

/**
 * An exclusive lock file holding the owner's PID. A lock whose owner died is taken over, so a
 * killed `lab` never blocks the next one. `onWait` is called once when another live process holds it.
 */
export async function withLock<T>(
  file: string,
  options: { signal?: AbortSignal; onWait?: (ownerPid: number) => void },
  fn: () => Promise<T>,
): Promise<T> {
  let told = false;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readOwner(file));
      if (!owner || !isAlive(owner)) {
        tryUnlink(file);
        continue;
      }
      if (!told) options.onWait?.(owner);
      told = true;
      await sleep(1000, undefined, { signal: options.signal });
    }
  }
  try {
    return await fn();
  } finally {
    if (readOwner(file) === String(process.pid)) tryUnlink(file);
  }
}

function readOwner(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function tryUnlink(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* already gone */
  }
}
