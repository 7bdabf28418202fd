import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { imageKey, recipeFor } from '../../lab/images/recipe.js';
import { expectNothingNew, hostResources, onlyRun, runLab } from './helpers.js';

/** A cache folder on a tmpfs of `mib` MiB, unmounted and removed after the test. */
const mounted: string[] = [];
function smallCache(mib: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'lab-full-cache-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mount.status !== 0) throw new Error(`mount tmpfs: ${mount.stderr}`);
  mounted.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of mounted.splice(0)) {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Everything below a folder, as relative paths. */
const filesBelow = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

describe("the cache's disk full", () => {
  test('while building an image: a clear message, no partial image, no mount left, exit 1', async () => {
    const cache = smallCache(200);
    const before = hostResources();
    const result = await runLab(['images', 'build', '--variant', 'base', '--arch', 'amd64'], { env: { LAB_CACHE_DIR: cache } });
    expect(result.code, result.output).toBe(1);
    const key = imageKey(recipeFor('base', 'amd64'));
    expect(result.output).toMatch(new RegExp(`ERROR: failed to build image ${key}: the file system of ${cache}/images is full \\(\\d+ MiB free\\); nothing of the build is kept`));
    // What debootstrap downloaded stays as the package cache; of the image, nothing.
    expect(filesBelow(join(cache, 'images'))).toEqual([]);
    expect(spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n').filter((m) => m.startsWith(`${cache}/`))).toEqual([]);
    expectNothingNew(before);
  });

  test('while saving a snapshot layer: the run fails saying so, no partial layer, nothing left', async () => {
    // Room for the image and about 30 MiB: the first layer (the booted VM's RAM and disk) does not fit.
    const cache = smallCache(656);
    const image = join(cache, 'images', imageKey(recipeFor('base', 'amd64')));
    mkdirSync(join(cache, 'images'));
    cpSync(join(process.env.LAB_CACHE_DIR ?? '/var/cache/lab', 'images', imageKey(recipeFor('base', 'amd64'))), image, { recursive: true });
    const before = hostResources();
    // The run's own guard (no layers below 8 GiB free) would only stop saving: off, to reach a real ENOSPC.
    const result = await runLab(['run', 'scenarios/smoke'], { env: { LAB_CACHE_DIR: cache, LAB_SNAPSHOT_MIN_FREE: '0' } });
    expect(result.code, result.output).toBe(1);
    expect(result.output).toMatch(
      new RegExp(`snapshot layer [0-9a-f]{24} not saved: the file system of ${cache}/snapshots is full \\(\\d+ MiB free\\); nothing of it is kept`),
    );
    const { summary } = onlyRun(result);
    expect(summary.verdict).toBe('error');
    expect(summary.phases.find((p) => p.name === 'machines')?.status).toBe('failed');
    expect(filesBelow(join(cache, 'snapshots'))).toEqual([]);
    expectNothingNew(before);
  });
});
