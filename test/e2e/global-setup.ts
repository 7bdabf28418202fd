import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Builds the CLI and both images once, with the lab's own progress output, before any e2e test. */
export default function setup(): void {
  const lab = join(import.meta.dirname, '..', '..', 'bin', 'lab');
  for (const arch of ['amd64', 'arm64']) {
    const result = spawnSync(lab, ['images', 'build', '--arch', arch], { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`bin/lab images build --arch ${arch} failed with exit ${result.status}`);
  }
}
