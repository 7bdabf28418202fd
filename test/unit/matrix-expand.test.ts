import { describe, expect, test } from 'vitest';
import { cellLabel, cellOverrides, cellSlug, expandMatrix, matrixSpec, parseShard, shardCells } from '../../lab/matrix/expand.js';
import { cellRunOverrides } from '../../lab/matrix/run.js';

describe('matrix expansion, as GitHub Actions expands strategy.matrix', () => {
  test('the product of the axes, in the order they are written', () => {
    const cells = expandMatrix({
      axes: [
        ['K8S_VERSION', ['v1.2.4', 'v1.3.0']],
        ['arch', ['amd64', 'arm64']],
      ],
      include: [],
      exclude: [],
    });
    expect(cells.map(cellLabel)).toEqual([
      'K8S_VERSION=v1.2.4 arch=amd64',
      'K8S_VERSION=v1.2.4 arch=arm64',
      'K8S_VERSION=v1.3.0 arch=amd64',
      'K8S_VERSION=v1.3.0 arch=arm64',
    ]);
  });

  test("GitHub's own include example: added to every combination whose original values it keeps, or a combination of its own", () => {
    // docs.github.com, "Expanding or adding matrix configurations".
    const cells = expandMatrix({
      axes: [
        ['fruit', ['apple', 'pear']],
        ['animal', ['cat', 'dog']],
      ],
      include: [
        { color: 'green' },
        { color: 'pink', animal: 'cat' },
        { fruit: 'apple', shape: 'circle' },
        { fruit: 'banana' },
        { fruit: 'banana', animal: 'cat' },
      ],
      exclude: [],
    });
    expect(cells).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
  });

  test('exclude removes every combination matching all of an entry, before include', () => {
    const cells = expandMatrix({
      axes: [
        ['K8S_VERSION', ['v1.2.4', 'v1.3.0']],
        ['arch', ['amd64', 'arm64']],
      ],
      exclude: [{ K8S_VERSION: 'v1.2.4', arch: 'arm64' }],
      include: [{ K8S_VERSION: 'v1.2.4', FLANNEL_BACKEND: 'vxlan' }],
    });
    expect(cells.map(cellLabel)).toEqual([
      'K8S_VERSION=v1.2.4 arch=amd64 FLANNEL_BACKEND=vxlan',
      'K8S_VERSION=v1.3.0 arch=amd64',
      'K8S_VERSION=v1.3.0 arch=arm64',
    ]);
  });

  test('no axes: only what include names', () => {
    expect(expandMatrix({ axes: [], include: [{ arch: 'arm64' }], exclude: [] })).toEqual([{ arch: 'arm64' }]);
    expect(expandMatrix({ axes: [], include: [], exclude: [] })).toEqual([]);
  });
});

describe('shards, names and overrides of cells', () => {
  const cells = Array.from({ length: 7 }, (_, i) => `cell${i}`);

  test('--shard i/n: every cell in exactly one shard, the same each time, sizes differing by one at most', () => {
    const shards = [1, 2, 3].map((index) => shardCells(cells, { index, count: 3 }));
    expect(shards).toEqual([
      ['cell0', 'cell3', 'cell6'],
      ['cell1', 'cell4'],
      ['cell2', 'cell5'],
    ]);
    expect(shards.flat().sort()).toEqual(cells);
    expect(shardCells(cells, { index: 1, count: 1 })).toEqual(cells);
  });

  test('a shard is i/n with 1 <= i <= n', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/4', '5/4', '1/0', '1', 'a/b', '1/2/3', '-1/2']) expect(parseShard(bad), bad).toBeUndefined();
  });

  test('a cell names its folder with safe characters, and splits into arch, driver and env values', () => {
    const cell = { K8S_VERSION: 'v1.2.4', arch: 'arm64', GREETING: 'hi there/you' };
    expect(cellSlug(cell)).toBe('K8S_VERSION-v1.2.4_arch-arm64_GREETING-hi-there-you');
    expect(cellOverrides(cell)).toEqual({ arch: 'arm64', set: { K8S_VERSION: 'v1.2.4', GREETING: 'hi there/you' } });
    expect(cellOverrides({ driver: 'libvirt' })).toEqual({ driver: 'libvirt', set: {} });
  });
});

describe("a scenario's matrix and the command line's axes", () => {
  test('values become strings; --axis changes an axis in its place or adds one last', () => {
    const declared = {
      K8S_VERSION: ['v1.2.4', 'v1.3.0'],
      FLANNEL_IPMASQ: [true],
      include: [{ K8S_VERSION: 'v1.2.4', FLANNEL_BACKEND: 'vxlan' }],
      exclude: [],
    };
    expect(matrixSpec(declared)).toEqual({
      axes: [
        ['K8S_VERSION', ['v1.2.4', 'v1.3.0']],
        ['FLANNEL_IPMASQ', ['true']],
      ],
      include: [{ K8S_VERSION: 'v1.2.4', FLANNEL_BACKEND: 'vxlan' }],
      exclude: [],
    });
    expect(
      matrixSpec(declared, [
        { name: 'K8S_VERSION', values: ['v1.3.0'] },
        { name: 'arch', values: ['amd64', 'arm64'] },
      ]).axes,
    ).toEqual([
      ['K8S_VERSION', ['v1.3.0']],
      ['FLANNEL_IPMASQ', ['true']],
      ['arch', ['amd64', 'arm64']],
    ]);
    expect(matrixSpec(undefined, [{ name: 'arch', values: ['arm64'] }])).toEqual({ axes: [['arch', ['arm64']]], include: [], exclude: [] });
  });

  test("a cell's values win over the command line's --set, --arch and --driver", () => {
    expect(cellRunOverrides({ arch: 'amd64', set: { GREETING: 'all', OTHER: 'x' } }, { arch: 'arm64', GREETING: 'cell' })).toEqual({
      arch: 'arm64',
      set: { GREETING: 'cell', OTHER: 'x' },
    });
  });
});
