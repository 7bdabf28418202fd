import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Image } from '../../images/cache.js';
import type { Logger } from '../../util/log.js';
import { withLock } from '../../util/lock.js';
import { cacheDir, projectRoot } from '../../util/paths.js';
import { run } from '../../util/proc.js';

/** Vagrant's own home (boxes, plugins' data) lives in the lab's cache, not in the user's ~/.vagrant.d. */
export const vagrantHome = (): string => join(cacheDir(), 'vagrant');
export const boxesDir = (): string => join(cacheDir(), 'boxes');

const builder = join(projectRoot, 'vagrant', 'build-box.sh');

/** A box per lab image and box builder: a changed image recipe or builder makes a new box. */
const boxKey = (image: Image): string => `${image.key}-${createHash('sha256').update(readFileSync(builder)).digest('hex').slice(0, 6)}`;
export const boxName = (image: Image): string => `lab/${boxKey(image)}`;
export const boxFile = (image: Image): string => join(boxesDir(), `${boxKey(image)}.box`);

/** The environment every Vagrant command of the lab runs with. */
export function vagrantEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    VAGRANT_HOME: vagrantHome(),
    VAGRANT_CHECKPOINT_DISABLE: '1',
    VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
    VAGRANT_DEFAULT_PROVIDER: 'libvirt',
    ...extra,
  };
}

const boxAdded = (image: Image): boolean =>
  existsSync(join(vagrantHome(), 'boxes', boxName(image).replace('/', '-VAGRANTSLASH-'), '0', 'libvirt', 'box.img'));

/**
 * `lab images box`: turns a lab image into a vagrant-libvirt box file (vagrant/build-box.sh) and
 * adds it to the lab's Vagrant home, once per image; concurrent labs wait for one another.
 */
export function ensureBox(image: Image, log: Logger, signal?: AbortSignal): Promise<{ name: string; file: string }> {
  // Nodes of one run ask at the same time: one making per box and process (the lock is per process).
  const key = boxKey(image);
  let making = inProcess.get(key);
  if (!making) {
    making = makeBox(image, log, signal);
    inProcess.set(key, making);
    making.catch(() => inProcess.delete(key));
  }
  return making;
}

const inProcess = new Map<string, Promise<{ name: string; file: string }>>();

async function makeBox(image: Image, log: Logger, signal?: AbortSignal): Promise<{ name: string; file: string }> {
  mkdirSync(boxesDir(), { recursive: true });
  const name = boxName(image);
  const file = boxFile(image);
  await withLock(
    join(boxesDir(), `${boxKey(image)}.lock`),
    { signal, onWait: (pid) => log.info(`waiting for lab ${pid}, which is making box ${name}`) },
    async () => {
      if (boxAdded(image) && existsSync(file)) return;
      await log.step(`making Vagrant box ${name} from image ${image.key}`, async () => {
        if (!existsSync(file)) await run([builder, image.dir, file], { signal });
        await run(['vagrant', 'box', 'add', '--force', '--name', name, file], { env: vagrantEnv(), signal });
      });
    },
  );
  return { name, file };
}
