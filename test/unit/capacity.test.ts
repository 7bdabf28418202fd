import { describe, expect, test } from 'vitest';
import { capacityVerdict, ensureCapacity, QEMU_OVERHEAD_MIB, type HostCapacity } from '../../lab/run/capacity.js';
import { Scenario } from '../../lab/scenario/schema.js';
import { InputError } from '../../lab/util/errors.js';
import { silentLogger } from '../../lab/util/log.js';

const GiB = 2 ** 30;
const host: HostCapacity = { memoryAvailableMiB: 23_000, cores: 2, stateFreeBytes: 80 * GiB };
const scenario = (nodes: number, node: Record<string, unknown> = {}, image = 'base') =>
  Scenario.parse({ name: 'cap', image, network: { cidr: '10.0.0.0/8' }, nodes: Array.from({ length: nodes }, (_, i) => ({ name: `n${i}`, ...node })) });

describe('capacityVerdict', () => {
  test('two ordinary nodes fit this kind of host without a word', () => {
    expect(capacityVerdict(scenario(2), host)).toEqual({ refusals: [], warnings: [] });
  });

  test('5000 nodes are refused on memory, vCPUs and disk, each with its figures', () => {
    const { refusals } = capacityVerdict(scenario(5000), host);
    expect(refusals).toEqual([
      `5000 node(s) need ${((5000 * (1024 + QEMU_OVERHEAD_MIB)) / 1024).toFixed(1)} GiB of memory (5000.0 GiB for the guests, ${QEMU_OVERHEAD_MIB} MiB for each QEMU); this host has 22.5 GiB available`,
      "5000 node(s) have 10000 vCPUs together; this host has 2 core(s), and more than 4 per core leaves the guests' clocks and timeouts no chance",
      expect.stringMatching(/^5000 node\(s\) can grow their overlays to 10000\.0 GiB \(the base image's disk each\) in \S+, which has 80\.0 GiB free$/),
    ]);
  });

  test('what fits but barely is a warning, not a refusal', () => {
    const { refusals, warnings } = capacityVerdict(scenario(3, { cpus: 2, memory: 5120 }, 'docker'), { memoryAvailableMiB: 21_000, cores: 2, stateFreeBytes: 13 * GiB });
    expect(refusals).toEqual([]);
    expect(warnings).toEqual([
      expect.stringMatching(/^3 node\(s\) need 18\.5 GiB of memory .* 20\.5 GiB available: it fits, but barely$/),
      '3 node(s) have 6 vCPUs together; this host has 2 core(s): more than 2 per core makes every step slower',
      expect.stringMatching(/^3 node\(s\) can grow their overlays to 12\.0 GiB \(the docker image's disk each\) .* 13\.0 GiB free: it fits, but barely$/),
    ]);
  });

  test('ensureCapacity refuses as bad input, naming the scenario', () => {
    expect(() => ensureCapacity(scenario(40, { memory: 1024 }), silentLogger(), host)).toThrow(InputError);
    expect(() => ensureCapacity(scenario(40, { memory: 1024 }), silentLogger(), host)).toThrow(/^this host cannot hold scenario cap\n {2}- 40 node\(s\) need 86\.3 GiB/);
  });
});
