import { readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { QEMU_OVERHEAD_MIB } from '../../lab/run/capacity.js';
import { expectNothingNew, hostResources, runLab, type LabResult } from './helpers.js';

/** Bad input: exit 2, and nothing was started (no report folder, no state folder, no VM). */
async function refused(args: string[]): Promise<LabResult> {
  const before = hostResources();
  const result = await runLab(args);
  expect(result.code, result.output).toBe(2);
  expect(readdirSync(result.reportsDir)).toEqual([]);
  expectNothingNew(before);
  return result;
}

describe('bad input', () => {
  test('lab run reports every shape problem with file, line and field, exits 2 and starts nothing', async () => {
    const result = await runLab(['run', 'test/scenarios/bad-input']);
    expect(result.code, result.output).toBe(2);
    const file = 'test/scenarios/bad-input/scenario.yaml';
    expect(result.output).toContain(
      [
        `ERROR: invalid scenario ${file}`,
        `  - ${file}:5:5: nodes[0].cpus: Too big: expected number to be <=8`,
        `  - ${file}:6:5: nodes[1].name: must be a hostname: lowercase letters, digits and "-", starting with a letter`,
        `  - ${file}:8:5: nodes[1].colour: unknown key "colour"`,
        `  - ${file}:9:1: checks: Invalid input: expected array, received string`,
      ].join('\n'),
    );
    expect(readdirSync(result.reportsDir)).toEqual([]);
  });

  test('lab run reports every rule problem (names that clash or do not exist) the same way', async () => {
    const result = await runLab(['run', 'test/scenarios/bad-rules']);
    expect(result.code, result.output).toBe(2);
    const file = 'test/scenarios/bad-rules/scenario.yaml';
    expect(result.output).toContain(`${file}:4:5: nodes[1].name: duplicate node name "node1"`);
    expect(result.output).toContain(`${file}:7:5: provision[0].script: no script smoke/does-not-exist.sh`);
    expect(result.output).toContain(`${file}:8:13: provision[0].nodes[0]: no node named "node9" in this scenario`);
    expect(result.output).toContain(`${file}:10:5: checks[0]: unknown check "no-such-check"`);
    expect(readdirSync(result.reportsDir)).toEqual([]);
  });

  test('a missing scenario is bad input too', async () => {
    const result = await runLab(['run', 'scenarios/nope']);
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/no scenario file at scenarios\/nope\/scenario.yaml/);
  });

  test('bad overrides are bad input: --driver, --arch, --set', async () => {
    for (const [args, message] of [
      [['--driver', 'hyperv'], '--driver must be one of qemu, libvirt, vagrant, not "hyperv"'],
      [['--arch', 'mips'], '--arch must be one of amd64, arm64, not "mips"'],
      [['--set', '9LIVES=1'], '--set takes KEY=VALUE with KEY a shell variable name, not "9LIVES=1"'],
    ] as const) {
      const result = await runLab(['run', ...args, 'scenarios/smoke']);
      expect(result.code, result.output).toBe(2);
      expect(result.output).toContain(message);
      expect(readdirSync(result.reportsDir)).toEqual([]);
    }
  });

  test('a YAML alias bomb is refused at its first alias, for validate and run alike', async () => {
    const file = 'test/scenarios/alias-bomb/scenario.yaml';
    for (const command of ['validate', 'run']) {
      const result = await refused([command, 'test/scenarios/alias-bomb']);
      expect(result.output).toContain(`${file}:3:8: YAML: Excessive alias count indicates a resource exhaustion attack`);
    }
  });

  test('a network too small for its nodes is refused by validate and run', async () => {
    const file = 'test/scenarios/tiny-network/scenario.yaml';
    for (const command of ['validate', 'run']) {
      const result = await refused([command, 'test/scenarios/tiny-network']);
      expect(result.output).toContain(
        `${file}:3:3: network.cidr: 10.77.0.0/30 has 2 host addresses (10.77.0.1 to 10.77.0.2); the scenario has 4 nodes`,
      );
    }
  });

  test('a scenario this host cannot hold is refused up front with the figures, nothing booted', async () => {
    for (const command of ['validate', 'run']) {
      const result = await refused([command, 'test/scenarios/too-big']);
      expect(result.output).toContain('ERROR: this host cannot hold scenario too-big');
      const needed = ((64 * (16384 + QEMU_OVERHEAD_MIB)) / 1024).toFixed(1);
      expect(result.output).toContain(
        `- 64 node(s) need ${needed} GiB of memory (1024.0 GiB for the guests, ${QEMU_OVERHEAD_MIB} MiB for each QEMU); this host has `,
      );
      expect(result.output).toMatch(/- 64 node\(s\) have 512 vCPUs together; this host has \d+ core\(s\)/);
    }
  });

  test('an unknown command is bad input', async () => {
    const result = await runLab(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.output).toContain('unknown command: frobnicate');
  });
});
