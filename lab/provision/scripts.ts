import { join, resolve } from 'node:path';
import { provisionersDir } from '../util/paths.js';

/** Where a step's script lives: `./x.sh` next to the scenario, anything else under provisioners/. */
export function resolveScript(script: string, scenarioDir: string): string {
  return script.startsWith('./') || script.startsWith('../') ? resolve(scenarioDir, script) : join(provisionersDir, script);
}
