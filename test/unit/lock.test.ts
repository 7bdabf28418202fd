import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { withLock } from '../../lab/util/lock.js';

let dir: string;
let lockFile: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lab-lock-'));
  lockFile = join(dir, 'images.lock');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `argv`; resolves with its PID once it runs, and a promise of its exit. */
async function started(argv: string[]): Promise<{ pid: number; exited: Promise<void>; kill: () => void }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return { pid: child.pid!, exited, kill: () => child.kill('SIGKILL') };
}

describe('withLock', () => {
  test('serializes two holders in one process and removes the lock file afterwards', async () => {
    const events: string[] = [];
    const holder = (name: string) => async () => {
      events.push(`${name} start`);
      expect(readFileSync(lockFile, 'utf8')).toBe(String(process.pid));
      await sleep(150);
      events.push(`${name} end`);
      return name;
    };
    const waits: number[] = [];
    const first = withLock(lockFile, {}, holder('first'));
    const second = withLock(lockFile, { onWait: (pid) => waits.push(pid) }, holder('second'));
    expect(await Promise.all([first, second])).toEqual(['first', 'second']);
    expect(events).toEqual(['first start', 'first end', 'second start', 'second end']);
    expect(waits).toEqual([process.pid]);
    expect(existsSync(lockFile)).toBe(false);
  });

  test('takes over a lock whose owner is dead, without waiting', async () => {
    const dead = await started(['true']);
    await dead.exited;
    writeFileSync(lockFile, String(dead.pid));
    const waits: number[] = [];
    const owner = await withLock(lockFile, { onWait: (pid) => waits.push(pid) }, async () => readFileSync(lockFile, 'utf8'));
    expect(owner).toBe(String(process.pid));
    expect(waits).toEqual([]);
    expect(existsSync(lockFile)).toBe(false);
  });

  test('calls onWait once with a live owner, and takes over when it dies', async () => {
    const owner = await started(['sleep', '30']);
    writeFileSync(lockFile, String(owner.pid));
    const waits: number[] = [];
    const result = await withLock(
      lockFile,
      {
        onWait: (pid) => {
          waits.push(pid);
          owner.kill();
        },
      },
      async () => 'mine',
    );
    expect(result).toBe('mine');
    expect(waits).toEqual([owner.pid]);
    expect(existsSync(lockFile)).toBe(false);
  });

  test("the lock is removed when fn throws; an aborted wait rejects and leaves the owner's lock", async () => {
    await expect(withLock(lockFile, {}, async () => Promise.reject(new Error('build failed')))).rejects.toThrow('build failed');
    expect(existsSync(lockFile)).toBe(false);

    writeFileSync(lockFile, String(process.pid));
    const controller = new AbortController();
    const waiting = withLock(lockFile, { signal: controller.signal, onWait: () => controller.abort(new Error('stop')) }, async () => 1);
    // Node's abortable sleep rejects with an AbortError (the reason is its cause).
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(readFileSync(lockFile, 'utf8')).toBe(String(process.pid));
  });
});
