import { copyFileSync, cpSync } from 'node:fs';
import { settleAll } from '../util/limit.js';
import { run } from '../util/proc.js';
import { basename, join } from 'node:path';
import type { Vm } from '../machines/driver.js';
import type { Logger } from '../util/log.js';
import { pauseTogether, resumeTogether, snapshotsOf } from './resume.js';
import { writeLayer, type Layer, type LayerManifest } from './store.js';

/** What a layer records of the run that makes it, and what it takes to make it. */
export interface SaveRequest extends Pick<LayerManifest, 'key' | 'parent' | 'depth' | 'name' | 'scenario' | 'driver' | 'seconds' | 'env' | 'steps'> {
  runId: string;
  /** Each VM with the cached disk its current disk stands on (the image's, or the last layer's, with its SHA-256). */
  nodes: { vm: Vm; diskBase: string; baseSha256?: string }[];
  /** Make the layer anew even if it exists (`--fresh`). */
  replace?: boolean;
  /** Folders of key material to keep with the layer (the run's Flocker certificates). */
  secrets: string[];
  log: Logger;
  signal?: AbortSignal;
}

/**
 * Saves the whole cluster as one layer: every VM paused before any is saved, each one's state and
 * frozen disk written, then all resumed together (also when the save fails). Returns the layer;
 * `undefined` when another run made the same layer meanwhile.
 */
export async function saveLayer(request: SaveRequest): Promise<{ layer: Layer } | undefined> {
  const started = performance.now();
  let pausedAt = 0;
  const layer = await writeLayer(
    request.key,
    { signal: request.signal, replace: request.replace, onWait: (pid) => request.log.info(`waiting for another lab (pid ${pid}) that is saving layer ${request.key}`) },
    async (dir): Promise<Omit<LayerManifest, 'key' | 'files'>> => {
      const vms = request.nodes.map((node) => node.vm);
      pausedAt = await pauseTogether(vms);
      // Side by side (each VM's migration keeps a core busy); every one ends before any VM goes on.
      const saving = settleAll(
        request.nodes.map(async ({ vm, diskBase, baseSha256 }) => ({ name: vm.spec.name, diskBase, baseSha256, ...(await snapshotsOf(vm).save(dir)) })),
      );
      const saved = await saving.catch(async (error: unknown) => {
        // Those that were saved go on; the save's own failure is what the run reports.
        await resumeTogether(vms).catch(() => undefined);
        throw error;
      });
      await resumeTogether(vms);
      // The frozen disks are never written again: they are copied while the cluster runs on, each
      // pointed at the cached disk it stands on.
      for (const node of saved) {
        const disk = join(dir, `${node.name}.qcow2`);
        copyFileSync(node.frozenDisk, disk);
        await run(['qemu-img', 'rebase', '-u', '-F', 'qcow2', '-b', node.diskBase, disk]);
      }
      for (const secret of request.secrets) cpSync(secret, join(dir, basename(secret)), { recursive: true });
      return {
        parent: request.parent,
        depth: request.depth,
        name: request.name,
        scenario: request.scenario,
        driver: request.driver,
        madeAt: new Date().toISOString(),
        madeBy: request.runId,
        pausedAt,
        seconds: request.seconds,
        saveSeconds: Math.round((performance.now() - started) / 100) / 10,
        nodes: saved.map((s) => ({ name: s.name, state: basename(s.state), disk: `${s.name}.qcow2`, diskBase: s.diskBase, baseSha256: s.baseSha256, cmdline: s.cmdline })),
        env: request.env,
        steps: request.steps,
        secrets: request.secrets.map((secret) => basename(secret)),
      };
    },
  );
  return layer && { layer };
}
