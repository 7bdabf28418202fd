import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Layer keys, as a container build keys its cache: a hash of the layer below and of everything
 * that decided this one. Bump LAYER_FORMAT when what a layer holds, or how a VM is started from
 * it, changes: old layers then simply stop matching.
 */
export const LAYER_FORMAT = 2;

export function layerKey(parent: string | undefined, inputs: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify({ format: LAYER_FORMAT, parent: parent ?? null, inputs }))
    .digest('hex')
    .slice(0, 24);
}

/** A folder's content: every file's relative path, mode and bytes, in a stable order (`except` files left out). */
export function folderHash(dir: string, except: string[] = []): string {
  const hash = createHash('sha256');
  const walk = (prefix: string) => {
    for (const name of readdirSync(join(dir, prefix)).sort()) {
      const relative = join(prefix, name);
      if (except.includes(join(dir, relative))) continue;
      const stat = statSync(join(dir, relative));
      if (stat.isDirectory()) walk(relative);
      else hash.update(`${relative}\0${(stat.mode & 0o777).toString(8)}\0`).update(readFileSync(join(dir, relative))).update('\0');
    }
  };
  if (existsSync(dir)) walk('');
  return hash.digest('hex');
}

export const fileHash = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Which of `names` appear as words in the text of a folder's files (`except` files left out). */
export function namedVariables(dir: string, names: string[], except: string[] = []): Set<string> {
  const found = new Set<string>();
  const walk = (path: string) => {
    if (!existsSync(path) || except.includes(path)) return;
    if (statSync(path).isDirectory()) return readdirSync(path).forEach((name) => walk(join(path, name)));
    const text = readFileSync(path, 'latin1');
    for (const name of names) if (!found.has(name) && new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`).test(text)) found.add(name);
  };
  walk(dir);
  return found;
}
