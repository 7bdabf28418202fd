import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import type { Logger } from '../../lab/util/log.js';
import { withLock } from '../../lab/util/lock.js';
import { cacheDir, projectRoot } from '../../lab/util/paths.js';
import { run } from '../../lab/util/proc.js';
import { kubeDnsObjects } from '../hyperkube/addons.js';
import { addonManagerManifest, kubeProxyManifest, masterManifest } from '../hyperkube/manifests.js';
import { bundledImages, deploysAddons, scriptImages, type PayloadVersions } from '../images.js';
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
  const perVersion = versionFiles(versions, arch);
  // Everything the archive is made from: the image names, programs, commands and per-version files.
  const key = `bundle-${arch}-${hash(
    JSON.stringify(versions),
    JSON.stringify(bundledImages(versions, arch)),
    JSON.stringify(perVersion),
    layersKey,
    ...programs.map((p) => p.text),
    ...Object.values(ETCD_COMMANDS).map((file) => readFileSync(file)),
  )}`;
  const file = join(root, key, 'images.tar.gz');
  const images = bundledImages(versions, arch).map((i) => i.tag);
  const done = (): Bundle => ({ file, images, bytes: statSync(file).size });
  if (existsSync(file)) return done();

  return withLock(
    join(root, `.${arch}.lock`),
    { signal: options.signal, onWait: (pid) => options.log.info(`waiting for another lab (pid ${pid}) building the ${arch} payload`) },
    async () => {
      if (existsSync(file)) return done();
      return options.log.step(
        `building the emulated payload for ${arch} (etcd, flannel, hyperkube ${versions.k8s}, pause, kube-dns, busybox, flocker ${versions.flocker})`,
        async () => {
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
          writeFiles(versionLayer, perVersion);
          const flockerVersionLayer = join(work, 'flocker-version');
          writeFiles(flockerVersionLayer, { 'opt/lab/flocker-version': `${versions.flocker}\n` });
          // flanneld reports the release its image is tagged with (0.5.5, 0.6.1).
          const flannelVersions = new Map(
            [
              versions.flannel,
              ...scriptImages(versions, arch)
                .filter((i) => i.name === 'flannel')
                .map((i) => i.version),
            ].map((v) => {
              const dir = join(work, `flannel-version-${v}`);
              writeFiles(dir, { [FLANNEL_VERSION_FILE]: `${v.replace(/^v/, '')}\n` });
              return [v, dir] as const;
            }),
          );
          const specs = imageSpecs(versions, arch, flannelVersions, {
            base: join(layers, 'base'),
            etcd: join(layers, 'etcd'),
            runtime: join(layers, 'runtime'),
            storage: join(layers, 'storage'),
            app,
            version: versionLayer,
            flockerVersion: flockerVersionLayer,
          });
          mkdirSync(join(root, key), { recursive: true });
          await writeDockerArchive(specs, work, file);
          rmSync(work, { recursive: true, force: true });
          options.log.info(`payload bundle ${file} (${Math.round(statSync(file).size / 1e6)} MB)`);
          return done();
        },
      );
    },
  );
}

export interface Program {
  name: string;
  text: string;
}

/** The stand-ins compiled into one file each, for the guests' Node 18. */
export async function bundlePrograms(): Promise<Program[]> {
  const entries = {
    flanneld: 'flannel/flanneld.ts',
    hyperkube: 'hyperkube/hyperkube.ts',
    'kube-addons': 'hyperkube/addon-manager.ts',
    kube2sky: 'dns/kube2sky.ts',
    skydns: 'dns/skydns.ts',
    exechealthz: 'dns/exechealthz.ts',
    'flocker-control': 'flocker/control-main.ts',
    'flocker-dataset-agent': 'flocker/agent-main.ts',
  };
  return Promise.all(
    Object.entries(entries).map(async ([name, entry]) => {
      const result = await build({
        entryPoints: [join(payloadsRoot, entry)],
        // The output's path comments are relative to this. esbuild's default is the cwd it was
        // loaded in, which made another bundle (and every snapshot layer after it) for each folder
        // the lab was run from.
        absWorkingDir: projectRoot,
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

/** Where each program is called from, as the real images had them (/opt/bin/flanneld, /hyperkube, /kube2sky...). */
const COMMANDS: Record<string, string> = {
  flanneld: 'opt/bin/flanneld',
  hyperkube: 'hyperkube',
  'kube-addons': 'kube-addons',
  kube2sky: 'kube2sky',
  skydns: 'skydns',
  exechealthz: 'exechealthz',
  // Where Flocker's packages put them.
  'flocker-control': 'usr/sbin/flocker-control',
  'flocker-dataset-agent': 'usr/sbin/flocker-dataset-agent',
};

/** etcd's commands as the 2016 images had them, over Debian's etcd (see each file). */
const ETCD_COMMANDS: Record<string, string> = {
  'usr/local/bin/etcd': join(payloadsRoot, 'bundle', 'etcd.sh'),
  'usr/local/bin/etcdctl': join(payloadsRoot, 'bundle', 'etcdctl.sh'),
};

/** The programs and the commands the scripts call them by, plus etcd as the 2016 image ran it. */
function writeProgramsLayer(dir: string, programs: Program[]): void {
  for (const program of programs) {
    script(dir, `opt/lab/${program.name}.mjs`, program.text);
    script(dir, COMMANDS[program.name] ?? program.name, `#!/bin/sh\nexec node --no-warnings /opt/lab/${program.name}.mjs "$@"\n`);
  }
  for (const [path, file] of Object.entries(ETCD_COMMANDS)) script(dir, path, readFileSync(file, 'utf8'));
}

/**
 * What differs per K8S_VERSION, as files of the hyperkube image: the version the binaries report,
 * the master's static pods, and (from v1.3) the addon manager and the addons it creates.
 */
function versionFiles(versions: PayloadVersions, arch: string): Record<string, string> {
  const json = (object: unknown) => `${JSON.stringify(object, null, 2)}\n`;
  const files: Record<string, string> = {
    'etc/kubernetes/version': `${versions.k8s}\n`,
    'etc/kubernetes/manifests-multi/master.json': json(masterManifest(versions, arch)),
    'etc/kubernetes/manifests-multi/kube-proxy.json': json(kubeProxyManifest(versions, arch)),
  };
  if (deploysAddons(versions.k8s)) {
    const [rc, service] = kubeDnsObjects(versions, arch, 'v11');
    files['etc/kubernetes/manifests-multi/addon-manager.json'] = json(addonManagerManifest(versions, arch));
    files['etc/kubernetes/addons/kube-dns-rc.json'] = json(rc);
    files['etc/kubernetes/addons/kube-dns-svc.json'] = json(service);
  }
  return files;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** The flannel image's release, which flanneld --version prints (the stand-in reads it). */
const FLANNEL_VERSION_FILE = 'opt/lab/flannel-version';

function imageSpecs(
  versions: PayloadVersions,
  arch: string,
  flannelVersions: Map<string, string>,
  layers: { base: string; etcd: string; runtime: string; storage: string; app: string; version: string; flockerVersion: string },
): ImageSpec[] {
  const program = [layers.base, layers.runtime, layers.app];
  const byName = {
    etcd: { layers: [layers.base, layers.etcd, layers.app] },
    flannel: { layers: program },
    hyperkube: { layers: [...program, layers.version] },
    pause: { layers: [layers.base], entrypoint: ['/pause'] },
    kube2sky: { layers: program, entrypoint: ['/kube2sky'] },
    skydns: { layers: program, entrypoint: ['/skydns'] },
    exechealthz: { layers: program, entrypoint: ['/exechealthz'] },
    busybox: { layers: [layers.base], cmd: ['sh'] },
    'flocker-control-service': { layers: [...program, layers.flockerVersion], entrypoint: ['/usr/sbin/flocker-control'] },
    // The agent makes and mounts file systems on loop devices: util-linux, mount and e2fsprogs.
    'flocker-dataset-agent': {
      layers: [layers.base, layers.runtime, layers.storage, layers.app, layers.flockerVersion],
      entrypoint: ['/usr/sbin/flocker-dataset-agent'],
    },
  };
  const flannelVersionOf = (tag: string) => scriptImages(versions, arch).find((i) => i.tag === tag)?.version ?? versions.flannel;
  return bundledImages(versions, arch).map((image) => ({
    tags: [image.tag],
    architecture: arch,
    ...byName[image.name],
    ...(image.name === 'flannel' ? { layers: [...program, flannelVersions.get(flannelVersionOf(image.tag)) as string] } : {}),
  }));
}

const hash = (...parts: (string | Buffer)[]): string => {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return digest.digest('hex').slice(0, 12);
};
