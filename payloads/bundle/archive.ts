import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../lab/util/proc.js';

/**
 * Writes images in the format `docker save` produces and `docker load` reads, without a Docker
 * daemon: one tar per layer (named by its content hash, so layers shared between images are
 * stored once), a config per image naming its layers' diff IDs, and manifest.json with the tags.
 */

export interface ImageSpec {
  /** Full tags, e.g. gcr.io/google_containers/etcd-amd64:2.2.5. */
  tags: string[];
  /** Folders whose trees are the layers, bottom first. */
  layers: string[];
  architecture: string;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
  workingDir?: string;
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Writes the gzipped archive of `images` to `file` (atomically: a temporary name, then a rename). */
export async function writeDockerArchive(images: ImageSpec[], workDir: string, file: string): Promise<void> {
  const root = join(workDir, 'archive');
  mkdirSync(root, { recursive: true });
  const layerIds = new Map<string, string>();
  for (const dir of new Set(images.flatMap((i) => i.layers))) layerIds.set(dir, await writeLayer(dir, root));

  const manifest = images.map((image) => {
    const diffIds = image.layers.map((dir) => `sha256:${layerIds.get(dir)}`);
    const config = JSON.stringify({
      architecture: image.architecture,
      os: 'linux',
      created: '2016-07-01T00:00:00Z',
      config: {
        Env: [PATH, ...(image.env ?? [])],
        ...(image.entrypoint ? { Entrypoint: image.entrypoint } : {}),
        ...(image.cmd ? { Cmd: image.cmd } : {}),
        WorkingDir: image.workingDir ?? '/',
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: image.layers.map(() => ({ created: '2016-07-01T00:00:00Z', created_by: 'lab payload bundle' })),
    });
    const configName = `${sha256(config)}.json`;
    writeFileSync(join(root, configName), config);
    return { Config: configName, RepoTags: image.tags, Layers: image.layers.map((dir) => `${layerIds.get(dir)}/layer.tar`) };
  });
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest));

  // gzip -1: a third of the bytes to send to each node for 3 s here; `docker load` reads it as is.
  const partial = `${file}.partial-${process.pid}`;
  await run(['sh', '-c', 'tar -C "$1" -cf - . | gzip -1 > "$2"', 'sh', root, partial]);
  renameSync(partial, file);
}

/** Tars a layer reproducibly (sorted, owned by root, fixed times) and stores it under its digest. */
async function writeLayer(dir: string, root: string): Promise<string> {
  const temporary = join(root, `layer-${process.pid}.tar`);
  await run(['tar', '--sort=name', '--mtime=@1467331200', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', temporary, '.']);
  const digest = await fileSha256(temporary);
  mkdirSync(join(root, digest), { recursive: true });
  renameSync(temporary, join(root, digest, 'layer.tar'));
  writeFileSync(join(root, digest, 'VERSION'), '1.0');
  return digest;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
