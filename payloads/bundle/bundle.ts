import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import type { Logger } from '../../lab/util/log.js';
import { withLock } from '../../lab/util/lock.js';
import { cacheDir, projectRoot } from '../../lab/util/paths.js';
import { run } from '../../lab/util/proc.js';
import { masterManifest } from '../hyperkube/manifests.js';
import { payloadImages, type PayloadVersions } from '../images.js';
import { writeDockerArchive, type ImageSpec } from './archive.js';

/**
 * The emulated payload's image bundle for one architecture and one set of versions: a
 * `docker save`-format archive holding etcd, flannel, hyperkube and pause under their real
 * names, which `offline.sh bootstrap` loads (OFFLINE_BUNDLE). Built offline and cached under
 * $LAB_CACHE_DIR/payloads; the Debian layers are shared by every version.
 */

const payloadsRoot = join(projectRoot, 'payloads');
const layersScript = join(payloadsRoot, 'bundle', 'layers.sh');
const SUITE = 'bookworm';

export interface Bundle {
  file: string;
  images: string[];
  bytes: number;
}

export async function ensureBundle(
  arch: string,
  versions: PayloadVersions,
  options: { log: Logger; signal?: AbortSignal; mirror?: string },
): Promise<Bundle> {
  const root = join(cacheDir(), 'payloads');
  mkdirSync(root, { recursive: true });
  const layersKey = `layers-${arch}-${hash(readFileSync(layersScript))}`;
  const programs = await bundlePrograms();
  const key = `bundle-${arch}-${hash(JSON.stringify(versions), layersKey, ...programs.map((p) => p.text))}`;
  const file = join(root, key, 'images.tar.gz');
  const images = payloadImages(versions, arch).map((i) => i.tag);
  const done = (): Bundle => ({ file, images, bytes: statSync(file).size });
  if (existsSync(file)) return done();

  return withLock(
    join(root, `.${arch}.lock`),
    { signal: options.signal, onWait: (pid) => options.log.info(`waiting for another lab (pid ${pid}) building the ${arch} payload`) },
    async () => {
      if (existsSync(file)) return done();
      return options.log.step(`building the emulated payload for ${arch} (etcd, flannel, hyperkube ${versions.k8s}, pause)`, async () => {
        const layers = join(root, layersKey);
        if (!existsSync(join(layers, '.done'))) {
          const partial = `${layers}.partial`;
          await run(['bash', layersScript], {
            signal: options.signal,
            env: {
              PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
              ARCH: arch,
              OUT: partial,
              SUITE,
              MIRROR: options.mirror ?? process.env.LAB_MIRROR ?? 'http://deb.debian.org/debian',
              APT_ROOT: join(root, `apt-${arch}`),
            },
            onLine: (line) => line.startsWith('lab:') && options.log.info(line.slice(5)),
          });
          writeFileSync(join(partial, '.done'), '');
          rmSync(layers, { recursive: true, force: true });
          renameSync(partial, layers);
        }
        const work = join(root, `${key}.partial`);
        rmSync(work, { recursive: true, force: true });
        const app = join(work, 'app');
        writeProgramsLayer(app, programs);
        const versionLayer = join(work, 'version');
        writeVersionLayer(versionLayer, versions, arch);
        const specs = imageSpecs(versions, arch, {
          base: join(layers, 'base'),
          etcd: join(layers, 'etcd'),
          runtime: join(layers, 'runtime'),
          app,
          version: versionLayer,
        });
        mkdirSync(join(root, key), { recursive: true });
        await writeDockerArchive(specs, work, file);
        rmSync(work, { recursive: true, force: true });
        options.log.info(`payload bundle ${file} (${Math.round(statSync(file).size / 1e6)} MB)`);
        return done();
      });
    },
  );
}

export interface Program {
  name: string;
  text: string;
}

/** The stand-ins compiled into one file each, for the guests' Node 18. */
export async function bundlePrograms(): Promise<Program[]> {
  const entries = { flanneld: 'flannel/flanneld.ts', hyperkube: 'hyperkube/hyperkube.ts' };
  return Promise.all(
    Object.entries(entries).map(async ([name, entry]) => {
      const result = await build({
        entryPoints: [join(payloadsRoot, entry)],
        bundle: true,
        platform: 'node',
        target: 'node18',
        format: 'esm',
        write: false,
        logLevel: 'silent',
      });
      return { name, text: result.outputFiles[0]?.text ?? '' };
    }),
  );
}

const script = (dir: string, path: string, text: string): void => {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
  chmodSync(join(dir, path), 0o755);
};

/** The programs and the commands the scripts call them by (/opt/bin/flanneld, /hyperkube), plus etcd as the 2016 image ran it. */
function writeProgramsLayer(dir: string, programs: Program[]): void {
  for (const program of programs) script(dir, `opt/lab/${program.name}.mjs`, program.text);
  script(dir, 'opt/bin/flanneld', '#!/bin/sh\nexec node --no-warnings /opt/lab/flanneld.mjs "$@"\n');
  script(dir, 'hyperkube', '#!/bin/sh\nexec node --no-warnings /opt/lab/hyperkube.mjs "$@"\n');
  // etcd 2.2.5 served the v2 API and etcdctl spoke it; Debian's 3.4 does both when asked.
  script(dir, 'usr/local/bin/etcd', '#!/bin/sh\nexec /usr/bin/etcd --enable-v2=true "$@"\n');
  script(dir, 'usr/local/bin/etcdctl', '#!/bin/sh\nexport ETCDCTL_API=${ETCDCTL_API:-2}\nexec /usr/bin/etcdctl "$@"\n');
}

/** What differs per K8S_VERSION: the version the binaries report and the master's static pod. */
function writeVersionLayer(dir: string, versions: PayloadVersions, arch: string): void {
  mkdirSync(join(dir, 'etc/kubernetes/manifests-multi'), { recursive: true });
  writeFileSync(join(dir, 'etc/kubernetes/version'), `${versions.k8s}\n`);
  writeFileSync(join(dir, 'etc/kubernetes/manifests-multi/master.json'), `${JSON.stringify(masterManifest(versions, arch), null, 2)}\n`);
}

function imageSpecs(
  versions: PayloadVersions,
  arch: string,
  layers: { base: string; etcd: string; runtime: string; app: string; version: string },
): ImageSpec[] {
  const byName = {
    etcd: [layers.base, layers.etcd, layers.app],
    flannel: [layers.base, layers.runtime, layers.app],
    hyperkube: [layers.base, layers.runtime, layers.app, layers.version],
    pause: [layers.base],
  };
  return payloadImages(versions, arch).map((image) => ({
    tags: [image.tag],
    layers: byName[image.name],
    architecture: arch,
    ...(image.name === 'pause' ? { entrypoint: ['/pause'] } : {}),
  }));
}

const hash = (...parts: (string | Buffer)[]): string => {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return digest.digest('hex').slice(0, 12);
};
