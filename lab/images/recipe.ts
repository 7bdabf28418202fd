import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { folderHash } from '../snapshots/keys.js';
import type { Arch } from '../machines/arch.js';
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
  /** Kernel modules loaded at boot (systemd-modules-load). */
  loadModules: string[];
  diskSize: string;
  /** A script (relative to lab/images/) that finishes the root file system, and the folder it lives in goes into the key. */
  setup?: string;
}

/** base: systemd, SSH and networking tools. docker: base plus Debian's Docker and what the multinode scripts call. */
export const IMAGE_VARIANTS = ['base', 'docker'] as const;
export type ImageVariant = (typeof IMAGE_VARIANTS)[number];

export const buildScript = join(projectRoot, 'lab', 'images', 'build-image.sh');

const VARIANT_PACKAGES: Record<ImageVariant, string[]> = {
  base: [],
  // The guide's scripts call curl, ip, brctl, iptables and docker (whose default profile needs
  // apparmor, on in Debian's kernel); busybox-static gives the emulated payload's images a userland;
  // kubectl (Debian's kubernetes-client) is what the guide's v1.2 DNS step and a user of a kept cluster run.
  // ifconfig and lsb_release: the 2016 scripts call them (docker-2016/setup.sh has the rest of 2016's Docker host).
  docker: [
    'docker.io',
    'apparmor',
    'curl',
    'ca-certificates',
    'iptables',
    'bridge-utils',
    'busybox-static',
    'kubernetes-client',
    'net-tools',
    'lsb-release',
  ],
};
const SETUP: Partial<Record<ImageVariant, string>> = { docker: 'docker-2016/setup.sh' };

const DISK_SIZE: Record<ImageVariant, string> = { base: '2G', docker: '4G' };
/** The most a node's overlay of this image can grow to. */
export const diskSizeBytes = (variant: ImageVariant): number => Number.parseInt(DISK_SIZE[variant], 10) * 2 ** 30;
// The payload's flannel tunnels through the kernel (fou + ipip for udp, vxlan), from a container
// that cannot load modules itself; Debian's kernel has them as modules. So does Flocker's dataset
// agent with its loop devices.
const LOAD_MODULES: Record<ImageVariant, string[]> = { base: [], docker: ['fou', 'ipip', 'vxlan', 'loop'] };

const BOOT_MODULES: Record<Arch, string[]> = {
  amd64: ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'],
  arm64: ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'virtio_net', 'ext4'],
};

export function recipeFor(variant: ImageVariant, arch: Arch): ImageRecipe {
  return {
    variant,
    arch,
    suite: 'bookworm',
    packages: VARIANT_PACKAGES[variant],
    modules: BOOT_MODULES[arch],
    loadModules: LOAD_MODULES[variant],
    diskSize: DISK_SIZE[variant],
    ...(SETUP[variant] ? { setup: SETUP[variant] } : {}),
  };
}

/** Cache key: variant, arch and a hash of the recipe plus the build script that applies it. */
export function imageKey(recipe: ImageRecipe): string {
  const hash = createHash('sha256').update(JSON.stringify(recipe)).update(readFileSync(buildScript));
  if (recipe.setup) hash.update(folderHash(dirname(setupScript(recipe.setup))));
  return `${recipe.variant}-${recipe.arch}-${hash.digest('hex').slice(0, 12)}`;
}

export const setupScript = (setup: string): string => join(projectRoot, 'lab', 'images', setup);
