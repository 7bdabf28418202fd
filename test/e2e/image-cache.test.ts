import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { fullOnly, lab, waitForOutput } from './helpers.js';

/**
 * Two builders of the same image at once, the first killed with SIGKILL in the middle of its
 * build (while its chroot has /proc, /sys and /dev bound in). The second must wait for the lock,
 * take it over, clear the dead build safely and produce one valid image.
 */
const cache = mkdtempSync(join(tmpdir(), 'lab-cache-'));
// Share the downloaded packages with the real cache: this test is about the cache's integrity, not the mirror.
mkdirSync('/var/cache/lab/debs', { recursive: true });
symlinkSync('/var/cache/lab/debs', join(cache, 'debs'));
const env = { ...process.env, LAB_SKIP_SETUP: '1', LAB_CACHE_DIR: cache };

function startBuild(): { child: ReturnType<typeof spawn>; output: () => string; done: Promise<number | null> } {
  const child = spawn(lab, ['images', 'build', '--arch', 'amd64'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return { child, output: () => text, done: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

const mountsUnder = (dir: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((line) => line.split(' ')[1]?.startsWith(dir));

afterAll(() => {
  for (const line of mountsUnder(cache)) spawnSync('umount', ['-l', line.split(' ')[1] as string]);
  rmSync(cache, { recursive: true, force: true });
});

describe('image cache', () => {
  // Nightly (LAB_E2E_FULL=1): two image builds of their own (about 2.5 minutes); CI's 90 minutes are spent.
  fullOnly('a killed builder leaves nothing half-valid and a concurrent builder finishes the image', async () => {
    const first = startBuild();
    await waitForOutput(first.output, (t) => t.includes('installing kernel and packages'), 300_000);
    expect(mountsUnder(cache).length, 'the first build has its chroot mounts up').toBeGreaterThan(0);

    const second = startBuild();
    await waitForOutput(second.output, (t) => /waiting for another lab \(pid \d+\) that is building image base-amd64-/.test(t), 30_000);
    first.child.kill('SIGKILL');
    expect(await first.done).toBe(null);

    expect(await second.done, second.output()).toBe(0);
    const images = join(cache, 'images');
    const entries = readdirSync(images);
    expect(
      entries.filter((e) => e.startsWith('.build-')),
      'no unfinished build folder is left',
    ).toEqual([]);
    expect(entries.filter((e) => e.startsWith('base-amd64-'))).toHaveLength(1);
    expect(mountsUnder(cache)).toEqual([]);

    const list = spawnSync(lab, ['images', 'list'], { env });
    expect(list.stderr.toString()).toMatch(/base-amd64-[0-9a-f]{12} {2}\d+ MiB {2}built /);
  });
});
