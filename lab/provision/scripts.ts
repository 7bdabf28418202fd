import { existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { provisionersDir } from '../util/paths.js';

/**
 * The folders a bare script path (`docker-multinode/master.sh`) is looked up in, in order: the
 * scenario's `scripts:` folders (a user's own checkout), then LAB_PROVISIONERS_PATH's (colon
 * separated, as PATH), then the lab's provisioners/.
 */
export function scriptFolders(scenarioFolders: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.LAB_PROVISIONERS_PATH ?? '').split(delimiter).filter(Boolean);
  return [...scenarioFolders, ...fromEnv.map((folder) => resolve(folder)), provisionersDir];
}

/** Every place a step's script may be, in the order they are tried. */
export function scriptCandidates(script: string, scenarioDir: string, folders: string[]): string[] {
  if (isAbsolute(script)) return [script];
  if (script.startsWith('./') || script.startsWith('../')) return [resolve(scenarioDir, script)];
  return folders.map((folder) => join(folder, script));
}

/**
 * Where a step's script lives: an absolute path as it is, `./x.sh` or `../x.sh` next to the
 * scenario, anything else in the first of `folders` that holds it (the first folder when none does).
 */
export function resolveScript(script: string, scenarioDir: string, folders: string[]): string {
  const candidates = scriptCandidates(script, scenarioDir, folders);
  return candidates.find((path) => existsSync(path)) ?? (candidates[0] as string);
}

/** `$NAME` or `${NAME}` at the start of a `scripts` folder. */
export const FOLDER_VARIABLE = /^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/;
