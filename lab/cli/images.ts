import { existsSync } from 'node:fs';
import { ensureImage } from '../images/builder.js';
import { discardLayer, listLayers } from '../snapshots/store.js';
import { diskUsage, imagesDir, listImages, reapDeadBuilds, removeImage } from '../images/cache.js';
import { IMAGE_VARIANTS, imageKey, recipeFor, type ImageVariant } from '../images/recipe.js';
import { Arch } from '../scenario/schema.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

/** `lab images list|build|box|prune`. Prune keeps the images the current recipes produce, and the snapshot layers standing on them. */
export async function imagesCommand(
  action: string,
  options: { arch: string; variant: string; rebuild?: boolean },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  switch (action) {
    case 'list': {
      const images = listImages();
      if (!images.length) log.info(`no images in ${imagesDir()}`);
      for (const image of images) log.info(`${image.key}  ${mib(diskUsage(image.dir))}  built ${image.builtAt} in ${image.buildSeconds} s`);
      return;
    }
    case 'build': {
      const image = await ensureImage(recipeOf(options), { log, signal, rebuild: options.rebuild });
      log.info(`${image.key}: ${image.dir}`);
      return;
    }
    case 'box': {
      // A vagrant-libvirt box of the image, added to the lab's Vagrant home and kept as a file for users.
      const image = await ensureImage(recipeOf(options), { log, signal });
      const { ensureBox } = await import('../machines/vagrant/box.js');
      const box = await ensureBox(image, log, signal);
      log.info(`box ${box.name}: ${box.file}`);
      log.info(`to use it with your own Vagrant: vagrant box add --name ${box.name} ${box.file}`);
      return;
    }
    case 'prune': {
      const current = new Set(Arch.options.flatMap((arch) => IMAGE_VARIANTS.map((variant) => imageKey(recipeFor(variant, arch)))));
      for (const image of listImages().filter((i) => !current.has(i.key))) {
        removeImage(image);
        log.info(`removed ${image.key}`);
      }
      for (const build of await reapDeadBuilds()) log.info(`removed unfinished build ${build}`);
      // Snapshot layers that stand on an image no longer there are of no use: those go too.
      for (const layer of listLayers().filter((l) => !l.parent && l.nodes.some((node) => !existsSync(node.diskBase)))) {
        await discardLayer(layer.key);
        log.info(`removed snapshot layer ${layer.key} (${layer.scenario}: ${layer.name}) and the layers on it: its image is gone`);
      }
      return;
    }
    default:
      throw new InputError(`unknown images action "${action}" (use list, build, box or prune)`);
  }
}

/** The recipe that `--arch` and `--variant` name; bad values are bad input. */
function recipeOf(options: { arch: string; variant: string }) {
  const arch = Arch.safeParse(options.arch);
  if (!arch.success) throw new InputError(`--arch must be one of ${Arch.options.join(', ')}, not "${options.arch}"`);
  if (!IMAGE_VARIANTS.includes(options.variant as ImageVariant))
    throw new InputError(`--variant must be one of ${IMAGE_VARIANTS.join(', ')}, not "${options.variant}"`);
  return recipeFor(options.variant as ImageVariant, arch.data);
}
