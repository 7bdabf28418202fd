import { ensureImage } from '../../images/builder.js';
import type { Image } from '../../images/cache.js';
import { recipeFor } from '../../images/recipe.js';
import type { Arch } from '../../machines/arch.js';
import { ensureBundle, type Bundle } from '../../../payloads/bundle/bundle.js';
import { payloadVersions } from '../../../payloads/images.js';
import { nodeArch, type RunContext } from '../context.js';
import { needsPayload } from './payload.js';

/** What the machines and the payload phase start from, per architecture. */
export interface Prepared {
  images: Map<Arch, Image>;
  /** The emulated payload's bundle, when the scenario installs Kubernetes with it. */
  bundles: Map<Arch, Bundle>;
}

/** Makes sure an image (and the payload bundle, when the scenario installs Kubernetes) exists for every architecture in the scenario (built once, then cached). */
export async function prepareImages(ctx: RunContext): Promise<Prepared> {
  const prepared: Prepared = { images: new Map(), bundles: new Map() };
  const arches = [...new Set(ctx.scenario.spec.nodes.map((node) => nodeArch(ctx, node)))];
  for (const arch of arches) {
    const image = await ensureImage(recipeFor(ctx.scenario.spec.image, arch), { log: ctx.log, signal: ctx.signal });
    ctx.log.debug(`image for ${arch}: ${image.dir}`);
    prepared.images.set(arch, image);
    if (needsPayload(ctx) && ctx.scenario.spec.payload === 'emulated')
      prepared.bundles.set(arch, await ensureBundle(arch, payloadVersions(ctx.env), { log: ctx.log, signal: ctx.signal }));
  }
  return prepared;
}
