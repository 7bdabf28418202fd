import { existsSync, readFileSync } from 'node:fs';

/** The K8S_VERSION the image is tagged with, baked into it at /etc/kubernetes/version by the bundle. */
export function kubeVersion(): string {
  const file = process.env.LAB_KUBE_VERSION_FILE ?? '/etc/kubernetes/version';
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : 'v0.0.0-unknown';
}

/** The node's architecture in Go's words (GOARCH). */
export const goArch = (): string =>
  ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' })[process.arch as string] ?? process.arch;

/**
 * What the released binaries' /version carried (from their tags; 1.2 had five fields, 1.3 added
 * the build's date, Go version, compiler and platform). A version the lab knows no release facts
 * of reports its tag, a clean tree and no commit: the stand-in does not make up a commit.
 */
const RELEASES: Record<string, { gitCommit: string; buildDate?: string; goVersion?: string }> = {
  'v1.2.4': { gitCommit: '3eed1e3be6848b877ff80a93da3785d9034d0a4f' },
  'v1.3.0': { gitCommit: '283137936a498aed572ee22af6774b6fb6e9fd94', buildDate: '2016-07-01T19:19:19Z', goVersion: 'go1.6.2' },
};

export function versionInfo(version: string, arch = goArch()): Record<string, string> {
  const [major = '', minor = ''] = version.replace(/^v/, '').split('.');
  const release = RELEASES[version];
  const info: Record<string, string> = { major, minor, gitVersion: version, gitCommit: release?.gitCommit ?? '', gitTreeState: 'clean' };
  if (Number(major) > 1 || Number(minor) >= 3)
    Object.assign(info, { buildDate: release?.buildDate ?? '', goVersion: release?.goVersion ?? '', compiler: 'gc', platform: `linux/${arch}` });
  return info;
}
