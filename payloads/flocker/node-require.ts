/**
 * Gives the ESM bundle a `require` before anything else runs: the `yaml` package's Node build is
 * CommonJS and requires `process`, which esbuild's ESM output cannot do by itself ("Dynamic
 * require of "process" is not supported"). Imported first by the program entries that use yaml.
 */
import { createRequire } from 'node:module';

const scope = globalThis as { require?: NodeJS.Require };
scope.require ??= createRequire(import.meta.url);
