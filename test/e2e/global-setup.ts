import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Builds the CLI and the amd64 image once, with the lab's own progress output, before any e2e test. */
export default function setup(): void {
  const lab = join(import.meta.dirname, '..', '..', 'bin', 'lab');
  const result = spawnSync(lab, ['images', 'build', '--arch', 'amd64'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`bin/lab images build failed with exit ${result.status}`);
}
