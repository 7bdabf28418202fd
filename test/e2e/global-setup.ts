import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Builds the CLI and the images the tests use once, with the lab's own progress output, before any e2e test. */
export default function setup(): void {
  const lab = join(import.meta.dirname, '..', '..', 'bin', 'lab');
  for (const [variant, arch] of [
    ['base', 'amd64'],
    ['base', 'arm64'],
    ['docker', 'amd64'],
  ]) {
    const args = ['images', 'build', '--variant', variant as string, '--arch', arch as string];
    const result = spawnSync(lab, args, { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`bin/lab ${args.join(' ')} failed with exit ${result.status}`);
  }
}
