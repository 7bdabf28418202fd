import { ensureImage } from '../images/builder.js';
import { diskUsage, imagesDir, listImages, reapDeadBuilds, removeImage } from '../images/cache.js';
import { imageKey, recipeFor } from '../images/recipe.js';
import { Arch } from '../scenario/schema.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

/** `lab images list|build|box|prune`. Prune keeps the images the current recipes produce. */
export async function imagesCommand(
  action: string,
  options: { arch: string; rebuild?: boolean },
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
      const arch = Arch.safeParse(options.arch);
      if (!arch.success) throw new InputError(`--arch must be one of ${Arch.options.join(', ')}, not "${options.arch}"`);
      const image = await ensureImage(recipeFor('base', arch.data), { log, signal, rebuild: options.rebuild });
      log.info(`${image.key}: ${image.dir}`);
      return;
    }
    case 'box': {
      // A vagrant-libvirt box of the image, added to the lab's Vagrant home and kept as a file for users.
      const arch = Arch.safeParse(options.arch);
      if (!arch.success) throw new InputError(`--arch must be one of ${Arch.options.join(', ')}, not "${options.arch}"`);
      const image = await ensureImage(recipeFor('base', arch.data), { log, signal });
      const { ensureBox } = await import('../machines/vagrant/box.js');
      const box = await ensureBox(image, log, signal);
      log.info(`box ${box.name}: ${box.file}`);
      log.info(`to use it with your own Vagrant: vagrant box add --name ${box.name} ${box.file}`);
      return;
    }
    case 'prune': {
      const current = new Set(Arch.options.map((arch) => imageKey(recipeFor('base', arch))));
      for (const image of listImages().filter((i) => !current.has(i.key))) {
        removeImage(image);
        log.info(`removed ${image.key}`);
      }
      for (const build of await reapDeadBuilds()) log.info(`removed unfinished build ${build}`);
      return;
    }
    default:
      throw new InputError(`unknown images action "${action}" (use list, build, box or prune)`);
  }
}
