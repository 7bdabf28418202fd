import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { projectRoot } from '../util/paths.js';

export const builtinChecksDir = join(projectRoot, 'lab', 'checks', 'builtin');

/**
 * A check is named either by a built-in name (`nodes-up` -> lab/checks/builtin/nodes-up.check.ts)
 * or by a path to a `.check.ts` file relative to the scenario folder. Returns the absolute file.
 */
export function resolveCheck(name: string, scenarioDir: string): string | undefined {
  const isPath = name.includes('/') || name.endsWith('.ts');
  const file = isPath ? (isAbsolute(name) ? name : resolve(scenarioDir, name)) : join(builtinChecksDir, `${name}.check.ts`);
  return existsSync(file) && file.endsWith('.check.ts') ? file : undefined;
}
