import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { descendants, discardLayer, layerBytes, listLayers, reapDeadLayerBuilds, snapshotsDir, USED_MARK, type Layer } from '../snapshots/store.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

/** When a layer was last restored (or made). */
function lastUsed(layer: Layer): number {
  const used = join(layer.dir, USED_MARK);
  return Math.max(Date.parse(layer.madeAt), existsSync(used) ? statSync(used).mtimeMs : 0);
}

/** `lab snapshot list|rm|prune`: the layer cache, its sizes and keys. */
export async function snapshotCommand(action: string, args: string[], options: { olderThan?: string; maxSize?: string }, log: Logger): Promise<void> {
  switch (action) {
    case 'list': {
      const layers = listLayers().sort((a, b) => a.scenario.localeCompare(b.scenario) || a.depth - b.depth || a.madeAt.localeCompare(b.madeAt));
      if (!layers.length) return log.info(`no snapshot layers in ${snapshotsDir()}`);
      for (const layer of layers)
        log.info(
          `${layer.key}  ${layer.scenario} ${layer.depth}: ${layer.name.padEnd(22)} ${gib(layerBytes(layer)).padStart(10)}  made ${layer.madeAt} by ${layer.madeBy}${layer.parent ? `  on ${layer.parent.slice(0, 12)}` : ''}`,
        );
      log.info(`${layers.length} layer(s), ${gib(layers.reduce((sum, l) => sum + layerBytes(l), 0))} in ${snapshotsDir()}`);
      return;
    }
    case 'rm': {
      if (!args.length) throw new InputError('lab snapshot rm takes one or more layer keys (lab snapshot list shows them)');
      const layers = listLayers();
      for (const key of args) {
        const matches = layers.filter((l) => l.key.startsWith(key));
        if (matches.length !== 1) throw new InputError(`${matches.length ? `${matches.length} layers start with` : 'no layer has the key'} ${key}`);
      }
      for (const key of args) {
        const layer = layers.find((l) => l.key.startsWith(key)) as Layer;
        const above = descendants(layer.key);
        await discardLayer(layer.key);
        log.info(`removed ${layer.key} (${layer.scenario} ${layer.depth}: ${layer.name})${above.length ? ` and the ${above.length} layer(s) standing on it` : ''}`);
      }
      return;
    }
    case 'prune': {
      if (options.olderThan === undefined && options.maxSize === undefined)
        throw new InputError('lab snapshot prune needs --older-than (e.g. 7d) or --max-size (e.g. 20G)');
      const olderThan = options.olderThan === undefined ? undefined : parseAge(options.olderThan);
      const maxSize = options.maxSize === undefined ? undefined : parseSize(options.maxSize);
      for (const build of reapDeadLayerBuilds()) log.info(`removed an unfinished layer left by a killed lab: ${build}`);
      let removed = 0;
      if (olderThan !== undefined)
        for (const layer of listLayers().filter((l) => Date.now() - lastUsed(l) > olderThan)) {
          if (!existsSync(layer.dir)) continue;
          await discardLayer(layer.key);
          removed++;
        }
      if (maxSize !== undefined) {
        // Least recently used first; a layer goes with the ones standing on it.
        for (const layer of listLayers().sort((a, b) => lastUsed(a) - lastUsed(b))) {
          const total = listLayers().reduce((sum, l) => sum + layerBytes(l), 0);
          if (total <= maxSize) break;
          if (!existsSync(layer.dir)) continue;
          await discardLayer(layer.key);
          removed++;
        }
      }
      log.info(`pruned ${removed} layer(s) (and the layers standing on them); ${listLayers().length} left`);
      return;
    }
    default:
      throw new InputError(`unknown snapshot action "${action}" (use list, rm or prune)`);
  }
}

/** `30m`, `12h`, `7d` as milliseconds. */
export function parseAge(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([mhd])$/.exec(text.trim());
  if (!match) throw new InputError(`--older-than takes an age like 30m, 12h or 7d, not "${text}"`);
  return Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
}

/** `500M`, `20G` as bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([MG])$/i.exec(text.trim());
  if (!match) throw new InputError(`--max-size takes a size like 500M or 20G, not "${text}"`);
  return Number(match[1]) * (match[2]?.toUpperCase() === 'G' ? 1024 ** 3 : 1024 ** 2);
}
