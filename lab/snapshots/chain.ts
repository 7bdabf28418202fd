import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import { damage, discardLayer, readLayer, type Layer } from './store.js';

/**
 * The deepest layer of a scenario's planned chain that can be restored: present, with every
 * layer below it present (their disks back its disks), its own files and every disk below it
 * matching their checksums, and each disk standing on the one below it (or on the image). A
 * damaged layer is removed, with the layers standing on it, and the search goes on below.
 */
export async function deepestIntact(keys: string[], imageDisks: Map<string, string>, log: Logger): Promise<Layer | undefined> {
  for (let depth = keys.length; depth > 0; depth--) {
    const layer = readLayer(keys[depth - 1] as string);
    if (!layer) continue;
    const chain: Layer[] = [];
    for (const key of keys.slice(0, depth)) {
      const below = readLayer(key);
      if (below) chain.push(below);
    }
    if (chain.length !== depth) {
      log.warn(`snapshot layer ${layer.key} (${layer.name}) lacks a layer below it; removed`);
      await discardLayer(layer.key);
      continue;
    }
    const problem = await inspect(chain, imageDisks);
    if (!problem) return layer;
    log.warn(`snapshot layer ${problem.layer.key} (${problem.layer.name}) is damaged: ${problem.why}; removed, it will be made again`);
    // A bad disk takes every layer above it along; a bad state file only its own layer.
    await discardLayer(problem.inDisk ? problem.layer.key : layer.key);
  }
  return undefined;
}

async function inspect(chain: Layer[], imageDisks: Map<string, string>): Promise<{ layer: Layer; why: string; inDisk: boolean } | undefined> {
  const top = chain.at(-1) as Layer;
  for (const [index, layer] of chain.entries()) {
    const below = chain[index - 1];
    for (const node of layer.nodes) {
      const disk = below?.nodes.find((n) => n.name === node.name)?.disk ?? '?';
      const base = below ? join(below.dir, disk) : imageDisks.get(node.name);
      if (node.diskBase !== base) return { layer, why: `${node.disk} stands on ${node.diskBase}, not on ${base}`, inDisk: true };
      if (below && node.baseSha256 !== below.files[disk]?.sha256)
        return { layer, why: `${node.disk} was made on another ${disk} than the one below it now`, inDisk: true };
    }
    const isDisk = (file: string) => layer.nodes.some((node) => node.disk === file);
    const bad = await damage(layer, layer === top ? undefined : isDisk);
    if (bad) return { layer, why: bad, inDisk: isDisk(bad.split(' ')[0] ?? '') };
  }
  return undefined;
}
