import { fullDiskReason } from '../util/disk.js';
import { mkdirSync, renameSync, writeFileSync, appendFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import { withLock } from '../util/lock.js';
import { cacheDir } from '../util/paths.js';
import { run } from '../util/proc.js';
import { CommandError, tail } from '../util/errors.js';
import { buildDirName, imagesDir, MANIFEST, readImage, reapDeadBuilds, removeBuildDir, type Image } from './cache.js';
import { buildScript, imageKey, setupScript, type ImageRecipe } from './recipe.js';

export const mirror = (): string => process.env.LAB_MIRROR ?? 'http://deb.debian.org/debian';

/**
 * Returns the cached image for a recipe, building it first if needed. Two builders of the same
 * recipe serialize on a lock; the image appears by an atomic rename of a complete folder, so a
 * killed build never leaves a half-valid entry behind.
 */
export async function ensureImage(recipe: ImageRecipe, options: { log: Logger; signal?: AbortSignal; rebuild?: boolean }): Promise<Image> {
  const key = imageKey(recipe);
  const finalDir = join(imagesDir(), key);
  const cached = readImage(finalDir);
  if (cached && !options.rebuild) return cached;
  mkdirSync(imagesDir(), { recursive: true });
  return withLock(
    join(imagesDir(), `.${key}.lock`),
    { signal: options.signal, onWait: (pid) => options.log.info(`waiting for another lab (pid ${pid}) that is building image ${key}`) },
    async () => {
      const built = readImage(finalDir);
      if (built && !options.rebuild) return built;
      await reapDeadBuilds();
      return options.log.step(`building image ${key} (debootstrap ${recipe.suite} ${recipe.arch}; a few minutes on first use)`, () =>
        build(recipe, key, finalDir, options),
      );
    },
  );
}

async function build(recipe: ImageRecipe, key: string, finalDir: string, options: { log: Logger; signal?: AbortSignal }): Promise<Image> {
  const tmp = join(imagesDir(), buildDirName(key, process.pid));
  await removeBuildDir(tmp);
  const out = join(tmp, 'out');
  mkdirSync(out, { recursive: true });
  mkdirSync(join(tmp, 'work'));
  const logFile = join(tmp, 'build.log');
  const started = performance.now();
  try {
    await run(['bash', buildScript], {
      signal: options.signal,
      group: (pgid) => writeFileSync(join(tmp, 'builder.pgid'), String(pgid)),
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        OUT: out,
        WORK: join(tmp, 'work'),
        ARCH: recipe.arch,
        SUITE: recipe.suite,
        MIRROR: mirror(),
        PACKAGES: recipe.packages.join(' '),
        MODULES: recipe.modules.join(' '),
        LOAD_MODULES: recipe.loadModules.join(' '),
        DISK_SIZE: recipe.diskSize,
        SETUP: recipe.setup ? setupScript(recipe.setup) : '',
        DEB_CACHE: join(cacheDir(), 'debs', recipe.arch),
      },
      onLine: (line) => {
        // A full disk fails the build; it must not also crash the lab from inside an output handler.
        try {
          appendFileSync(logFile, `${line}\n`);
        } catch {
          /* the build's own failure says why */
        }
        if (line.startsWith('==> ')) options.log.info(`    ${line.slice(4)} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      },
    });
    const buildSeconds = Math.round((performance.now() - started) / 100) / 10;
    const manifest = { key, recipe, builtAt: new Date().toISOString(), buildSeconds };
    renameSync(logFile, join(out, 'build.log'));
    writeFileSync(join(out, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    await removeBuildDir(finalDir);
    renameSync(out, finalDir);
    const image = readImage(finalDir);
    if (!image) throw new Error(`image ${key} has no manifest after the build`);
    return image;
  } catch (error) {
    const full = fullDiskReason(imagesDir());
    if (full) throw new Error(`failed to build image ${key}: ${full}; nothing of the build is kept`, { cause: error });
    if (error instanceof CommandError && existsSync(logFile)) {
      const kept = join(imagesDir(), `failed-${key}.log`);
      renameSync(logFile, kept);
      throw new Error(`failed to build image ${key} (full log: ${kept})\n${tail(readFileSync(kept, 'utf8'), 15)}`);
    }
    throw new Error(`failed to build image ${key}`, { cause: error });
  } finally {
    await removeBuildDir(tmp);
  }
}
