import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../scenario/schema.js';
import { projectRoot } from '../util/paths.js';

/** Everything that decides the bytes of an image. Its hash names the cache entry. */
export interface ImageRecipe {
  variant: ImageVariant;
  arch: Arch;
  suite: string;
  /** Packages added to the base set (systemd, udev, openssh-server, iproute2, iputils-ping, procps). */
  packages: string[];
  /** Kernel modules the slim initramfs loads to find the root disk. */
  modules: string[];
  diskSize: string;
}

export type ImageVariant = 'base';

export const buildScript = join(projectRoot, 'lab', 'images', 'build-image.sh');

const VARIANT_PACKAGES: Record<ImageVariant, string[]> = {
  base: [],
};

const BOOT_MODULES: Record<Arch, string[]> = {
  amd64: ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'],
  arm64: ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'virtio_net', 'ext4'],
};

export function recipeFor(variant: ImageVariant, arch: Arch): ImageRecipe {
  return { variant, arch, suite: 'bookworm', packages: VARIANT_PACKAGES[variant], modules: BOOT_MODULES[arch], diskSize: '2G' };
}

/** Cache key: variant, arch and a hash of the recipe plus the build script that applies it. */
export function imageKey(recipe: ImageRecipe): string {
  const hash = createHash('sha256').update(JSON.stringify(recipe)).update(readFileSync(buildScript)).digest('hex');
  return `${recipe.variant}-${recipe.arch}-${hash.slice(0, 12)}`;
}
