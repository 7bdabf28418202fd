import { ensureImage } from '../../images/builder.js';
import { recipeFor } from '../../images/recipe.js';
import { ensureBundle } from '../../../payloads/bundle/bundle.js';
import { payloadVersions } from '../../../payloads/images.js';
import { nodeArch, type Phase } from '../context.js';
import { needsPayload } from './payload.js';

/** Makes sure an image (and the payload bundle, when the scenario installs Kubernetes) exists for every architecture in the scenario (built once, then cached). */
export const imagesPhase: Phase = {
  name: 'images',
  async execute(ctx) {
    const arches = [...new Set(ctx.scenario.spec.nodes.map((node) => nodeArch(ctx, node)))];
    for (const arch of arches) {
      const image = await ensureImage(recipeFor(ctx.scenario.spec.image, arch), { log: ctx.log, signal: ctx.signal });
      ctx.log.debug(`image for ${arch}: ${image.dir}`);
      ctx.images.set(arch, image);
      if (needsPayload(ctx) && ctx.scenario.spec.payload === 'emulated')
        ctx.bundles.set(arch, await ensureBundle(arch, payloadVersions(ctx.env), { log: ctx.log, signal: ctx.signal }));
    }
  },
};
