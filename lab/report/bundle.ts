import { renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from '../util/proc.js';

/** `lab-<run-id>.tar.gz` inside the run folder: everything of the run, to attach to a bug report. */
export async function writeBundle(runDir: string): Promise<string> {
  const name = `lab-${basename(runDir)}.tar.gz`;
  // Written beside the folder, then moved in: tar must not read the archive it is writing.
  const outside = join(dirname(runDir), `.${name}`);
  await run(['tar', '-C', dirname(runDir), '-czf', outside, basename(runDir)]);
  const file = join(runDir, name);
  renameSync(outside, file);
  return file;
}
