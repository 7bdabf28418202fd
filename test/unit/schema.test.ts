import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { scenarioJsonSchema } from '../../lab/scenario/schema.js';
import { projectRoot } from '../../lab/util/paths.js';

interface JsonSchema {
  type?: string;
  required?: string[];
  additionalProperties?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** As `bin/lab schema` prints it: JSON only (zod's own `~standard` member is dropped). */
const schema = JSON.parse(JSON.stringify(scenarioJsonSchema())) as JsonSchema;

describe('scenario JSON Schema', () => {
  test('the committed scenario.schema.json is up to date', () => {
    const committed: unknown = JSON.parse(readFileSync(join(projectRoot, 'scenario.schema.json'), 'utf8'));
    expect(committed, 'scenario.schema.json is stale: regenerate it with `bin/lab schema > scenario.schema.json`').toEqual(schema);
  });

  test('unknown keys are forbidden at the top level and in nodes items', () => {
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    const node = schema.properties?.nodes?.items;
    expect(node?.additionalProperties).toBe(false);
    expect(Object.keys(node?.properties ?? {})).toEqual(['name', 'role', 'arch', 'cpus', 'memory', 'address', 'env']);
    expect(node?.required).toEqual(['name']);
  });

  test('fields with defaults are optional for editors', () => {
    expect(schema.required).toContain('nodes');
    for (const key of ['driver', 'payload', 'arch', 'env', 'scripts', 'provision', 'checks', 'timeouts'])
      expect(schema.required).not.toContain(key);
  });

  test('name is optional, as the loader defaults it to the folder name', () => {
    expect(schema.required).not.toContain('name');
  });
});
