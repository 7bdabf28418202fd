import { describe, expect, test } from 'vitest';
import { imageKey, recipeFor } from '../../lab/images/recipe.js';

describe('recipeFor', () => {
  test('arm64 also loads virtio_mmio to find its disk', () => {
    expect(recipeFor('base', 'amd64')).toEqual({
      variant: 'base',
      arch: 'amd64',
      suite: 'bookworm',
      packages: [],
      modules: ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'],
      loadModules: [],
      diskSize: '2G',
    });
    // flannel's tunnels need these on the node, and its container cannot load them.
    expect(recipeFor('docker', 'amd64').loadModules).toEqual(['fou', 'ipip', 'vxlan', 'loop']);
    // The 2016 scripts' tools, and the script that makes the rest of a 2016 Docker host.
    expect(recipeFor('docker', 'amd64').packages).toEqual(expect.arrayContaining(['docker.io', 'net-tools', 'lsb-release']));
    expect(recipeFor('docker', 'arm64').setup).toBe('docker-2016/setup.sh');
    expect(recipeFor('base', 'arm64').modules).toEqual(['virtio_pci', 'virtio_mmio', 'virtio_blk', 'virtio_net', 'ext4']);
  });
});

describe('imageKey', () => {
  test('has the form <variant>-<arch>-<12 hex>', () => {
    expect(imageKey(recipeFor('base', 'amd64'))).toMatch(/^base-amd64-[0-9a-f]{12}$/);
    expect(imageKey(recipeFor('base', 'arm64'))).toMatch(/^base-arm64-[0-9a-f]{12}$/);
  });

  test('is stable for the same recipe', () => {
    expect(imageKey(recipeFor('base', 'amd64'))).toBe(imageKey(recipeFor('base', 'amd64')));
    expect(imageKey({ ...recipeFor('base', 'amd64') })).toBe(imageKey(recipeFor('base', 'amd64')));
  });

  test('differs between arches and when the recipe changes', () => {
    const amd64 = recipeFor('base', 'amd64');
    const hash = (key: string) => key.slice(-12);
    const keys = [
      imageKey(amd64),
      imageKey(recipeFor('base', 'arm64')),
      imageKey({ ...amd64, packages: ['curl'] }),
      imageKey({ ...amd64, suite: 'trixie' }),
      imageKey({ ...amd64, diskSize: '4G' }),
    ];
    expect(new Set(keys.map(hash)).size).toBe(keys.length);
  });
});
