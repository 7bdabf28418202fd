/**
 * The images the multinode install runs, named as the guide names them, for one set of versions
 * and one architecture. The emulated payload is tagged with exactly these names; `upstream`
 * would pull them from the registry.
 */

export interface PayloadVersions {
  k8s: string;
  etcd: string;
  flannel: string;
  pause: string;
  /** FLOCKER_VERSION: the Flocker release the control service and agents report (1.13.0, 1.14.0). */
  flocker: string;
  /** REG_PREFIX: where the guide's images come from. */
  registry: string;
}

export type PayloadImageName = 'etcd' | 'flannel' | 'hyperkube' | 'pause';

/** The versions a scenario's environment asks for, with the guide's defaults (common.sh, offline.sh). */
export function payloadVersions(env: Record<string, string | undefined>): PayloadVersions {
  const k8s = env.K8S_VERSION;
  if (!k8s) throw new Error('K8S_VERSION must be set: the offline install has no stable.txt to ask');
  return {
    k8s,
    etcd: env.ETCD_VERSION || '2.2.5',
    flannel: env.FLANNEL_VERSION || '0.5.5',
    pause: env.PAUSE_VERSION || '3.0',
    flocker: env.FLOCKER_VERSION || '1.14.0',
    registry: env.REG_PREFIX || 'gcr.io/google_containers',
  };
}

export function payloadImages(versions: PayloadVersions, arch: string): { name: PayloadImageName; tag: string }[] {
  const tag = (name: string, version: string) => `${versions.registry}/${name}-${arch}:${version}`;
  return [
    { name: 'etcd', tag: tag('etcd', versions.etcd) },
    { name: 'flannel', tag: tag('flannel', versions.flannel) },
    { name: 'hyperkube', tag: tag('hyperkube', versions.k8s) },
    { name: 'pause', tag: tag('pause', versions.pause) },
  ];
}

/**
 * The other names the 2016-2017 scripts give etcd and flannel, so that a user's own checkout
 * finds them offline whatever its defaults: the guide's a0b09e4a runs
 * `gcr.io/google_containers/etcd-ARCH:2.2.5` and `flannel-ARCH:0.5.5`, later kube-deploy and the
 * eddytruyen fork `etcd-ARCH:3.0.4` and `quay.io/coreos/flannel:v0.6.1-ARCH` (both hard-code these
 * registries). The same stand-ins: etcd is Debian's either way; flannel 0.6.1 kept 0.5.5's flags,
 * subnet.env and backends, and its image reports 0.6.1. Names payloadImages has already are left out.
 */
export function scriptImages(versions: PayloadVersions, arch: string): { name: 'etcd' | 'flannel'; tag: string; version: string }[] {
  const taken = new Set(payloadImages(versions, arch).map((i) => i.tag));
  return [
    { name: 'etcd' as const, tag: `gcr.io/google_containers/etcd-${arch}:2.2.5`, version: '2.2.5' },
    { name: 'etcd' as const, tag: `gcr.io/google_containers/etcd-${arch}:3.0.4`, version: '3.0.4' },
    { name: 'flannel' as const, tag: `gcr.io/google_containers/flannel-${arch}:0.5.5`, version: '0.5.5' },
    { name: 'flannel' as const, tag: `quay.io/coreos/flannel:v0.6.1-${arch}`, version: '0.6.1' },
  ].filter((image) => !taken.has(image.tag));
}

/**
 * The images the cluster's addons and the DNS check run: kube-dns-v8/v11's containers (etcd is
 * the payload's own), and busybox for the guide's DNS test pod. The real kubelet would pull these
 * when a pod asks; offline they come in the bundle with the rest.
 */
export function addonImages(versions: PayloadVersions, arch: string): { name: AddonImageName; tag: string }[] {
  const tag = (name: string, version: string) => `${versions.registry}/${name}-${arch}:${version}`;
  return [
    { name: 'kube2sky', tag: tag('kube2sky', '1.15') },
    { name: 'skydns', tag: tag('skydns', '1.0') },
    { name: 'exechealthz', tag: tag('exechealthz', '1.0') },
    { name: 'busybox', tag: 'busybox:latest' },
  ];
}

export type AddonImageName = 'kube2sky' | 'skydns' | 'exechealthz' | 'busybox';

/**
 * Flocker as ClusterHQ's own images ran it ("Running Flocker in Containers"): the control service
 * and the dataset agent, tagged with the Flocker release. `upstream` installs the packages instead.
 */
export function flockerImages(versions: PayloadVersions): { name: FlockerImageName; tag: string }[] {
  return [
    { name: 'flocker-control-service', tag: `clusterhq/flocker-control-service:${versions.flocker}` },
    { name: 'flocker-dataset-agent', tag: `clusterhq/flocker-dataset-agent:${versions.flocker}` },
  ];
}

export type FlockerImageName = 'flocker-control-service' | 'flocker-dataset-agent';

/** Every image of the emulated bundle for one architecture. */
export const bundledImages = (
  versions: PayloadVersions,
  arch: string,
): { name: PayloadImageName | AddonImageName | FlockerImageName; tag: string }[] => [
  ...payloadImages(versions, arch),
  ...scriptImages(versions, arch).map(({ name, tag }) => ({ name, tag })),
  ...addonImages(versions, arch),
  ...flockerImages(versions),
];

/** The images the bootstrap daemon runs (etcd and flannel), under every name the bundle has for them. */
export const bootstrapImages = (versions: PayloadVersions, arch: string): string[] =>
  bundledImages(versions, arch)
    .filter((image) => image.name === 'etcd' || image.name === 'flannel')
    .map((image) => image.tag);

/** 1.3 deployed kube-dns by itself (the hyperkube image's addons); 1.2 left it to the user (skydns.yaml). */
export const deploysAddons = (k8s: string): boolean => {
  const [major = 0, minor = 0] = k8s
    .replace(/^v/, '')
    .split('.')
    .map((n) => Number.parseInt(n, 10));
  return major > 1 || (major === 1 && minor >= 3);
};

/** Where the nodes get the images: the lab's bundle (emulated) or the registry (upstream). */
export type PayloadSource = 'emulated' | 'upstream';

/** The guest file the bundle is copied to; offline.sh loads it (OFFLINE_BUNDLE). */
export const GUEST_BUNDLE = '/var/lib/lab/payload/images.tar.gz';

/**
 * What a node must run before the install so that every image is in its Docker. Emulated: load
 * the bundle the lab copied, as a user installing offline would have before running any script
 * (see loadBundle). Upstream: pull the real images from their registry, as `offline.sh pull` does.
 */
export function preparation(
  source: PayloadSource,
  versions: PayloadVersions,
  arch: string,
): { env: Record<string, string>; commands: string[] } {
  // Flocker: ClusterHQ's images from the bundle, or (upstream) ClusterHQ's packages.
  if (source === 'emulated') return { env: { FLOCKER_INSTALL: 'containers' }, commands: [loadBundle(versions, arch)] };
  return { env: { FLOCKER_INSTALL: 'packages' }, commands: payloadImages(versions, arch).map((image) => `docker pull ${image.tag}`) };
}

const BOOTSTRAP_SOCK = 'unix:///var/run/docker-bootstrap.sock';

/**
 * Loads the copied bundle into the main Docker, and etcd and flannel (every name) into the
 * bootstrap daemon's data root, so that scripts with no offline step of their own find them:
 * every version of the guide starts that daemon with `--graph=/var/lib/docker-bootstrap` and
 * runs etcd and flannel in it. It is started here in the scripts' own form and stopped again.
 */
export function loadBundle(versions: PayloadVersions, arch: string): string {
  const bootstrap = `docker -H ${BOOTSTRAP_SOCK}`;
  return [
    'set -e',
    `docker load -i ${GUEST_BUNDLE} >/dev/null`,
    `docker daemon -H ${BOOTSTRAP_SOCK} -p /var/run/docker-bootstrap.pid --iptables=false --ip-masq=false --bridge=none \\`,
    '  --graph=/var/lib/docker-bootstrap --exec-root=/var/run/docker-bootstrap 2>/var/log/lab-payload-bootstrap.log >/dev/null &',
    'pid=$!',
    `i=0; until ${bootstrap} ps >/dev/null 2>&1; do`,
    '  i=$((i + 1)); if [ $i -ge 60 ]; then echo "the bootstrap daemon did not start:" >&2; tail -20 /var/log/lab-payload-bootstrap.log >&2; exit 1; fi; sleep 1',
    'done',
    `docker save ${bootstrapImages(versions, arch).join(' ')} | ${bootstrap} load >/dev/null`,
    'kill $pid; wait $pid || true',
    // Its --bridge=none deleted docker0, as Docker's did: the main daemon makes it again on a
    // restart, so the node is as it was before (the scripts' own bootstrap deletes it later).
    'systemctl restart docker',
    'ip link show docker0 >/dev/null',
  ].join('\n');
}
