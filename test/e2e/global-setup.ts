import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const lab = join(import.meta.dirname, '..', '..', 'bin', 'lab');

/** The builds under way: one that fails stops the others, which would otherwise outlive the test run. */
const running = new Set<ChildProcess>();

/** `bin/lab images build` for each image in turn, with the lab's own progress output. */
async function build(images: [variant: string, arch: string][]): Promise<void> {
  for (const [variant, arch] of images) {
    const args = ['images', 'build', '--variant', variant, '--arch', arch];
    const child = spawn(lab, args, { stdio: 'inherit', env: { ...process.env, LAB_SKIP_SETUP: '1' } });
    running.add(child);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    running.delete(child);
    if (code !== 0) throw new Error(`bin/lab ${args.join(' ')} failed with exit ${code}`);
  }
}

/** Stops the other builds (the lab stops its builder and removes its partial image on SIGTERM) and waits for them. */
async function stopOthers(): Promise<void> {
  await Promise.all([...running].map((child) => new Promise((resolve) => (child.once('close', resolve), child.kill('SIGTERM')))));
}

/**
 * Builds the CLI and the images the tests use once, before any e2e test. The arm64 image (its
 * second debootstrap stage emulated: 500 s of a 700 s cold build, mostly on one core) is built
 * beside the two amd64 ones, which take the other core; each arch has its own .deb cache.
 */
export default async function setup(): Promise<void> {
  // Once, before the builds side by side: installs what is missing and builds the CLI they run.
  const setup = await new Promise<number | null>((resolve) => spawn(lab, ['setup'], { stdio: 'inherit' }).once('close', resolve));
  if (setup !== 0) throw new Error(`bin/lab setup failed with exit ${setup}`);
  await Promise.all([
    build([['base', 'arm64']]),
    build([
      ['base', 'amd64'],
      ['docker', 'amd64'],
    ]),
  ]).catch(async (error: unknown) => {
    await stopOthers();
    throw error;
  });
}
