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
export const bundledImages = (versions: PayloadVersions, arch: string): { name: PayloadImageName | AddonImageName | FlockerImageName; tag: string }[] => [
  ...payloadImages(versions, arch),
  ...addonImages(versions, arch),
  ...flockerImages(versions),
];

/** 1.3 deployed kube-dns by itself (the hyperkube image's addons); 1.2 left it to the user (skydns.yaml). */
export const deploysAddons = (k8s: string): boolean => {
  const [major = 0, minor = 0] = k8s.replace(/^v/, '').split('.').map((n) => Number.parseInt(n, 10));
  return major > 1 || (major === 1 && minor >= 3);
};

/** Where the nodes get the images: the lab's bundle (emulated) or the registry (upstream). */
export type PayloadSource = 'emulated' | 'upstream';

/** The guest file the bundle is copied to; offline.sh loads it (OFFLINE_BUNDLE). */
export const GUEST_BUNDLE = '/var/lib/lab/payload/images.tar.gz';

/**
 * What a node must run before the install so that every image is in its Docker. Emulated: load
 * the bundle the lab copied (offline.sh bootstrap does it, given OFFLINE_BUNDLE). Upstream: pull
 * the real images from their registry, as `offline.sh pull` does.
 */
export function preparation(
  source: PayloadSource,
  versions: PayloadVersions,
  arch: string,
): { env: Record<string, string>; commands: string[] } {
  // Flocker: ClusterHQ's images from the bundle, or (upstream) ClusterHQ's packages.
  if (source === 'emulated') return { env: { OFFLINE_BUNDLE: GUEST_BUNDLE, FLOCKER_INSTALL: 'containers' }, commands: [] };
  return { env: { FLOCKER_INSTALL: 'packages' }, commands: payloadImages(versions, arch).map((image) => `docker pull ${image.tag}`) };
}
