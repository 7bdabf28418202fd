import { existsSync, readFileSync } from 'node:fs';

/** The K8S_VERSION the image is tagged with, baked into it at /etc/kubernetes/version by the bundle. */
export function kubeVersion(): string {
  const file = process.env.LAB_KUBE_VERSION_FILE ?? '/etc/kubernetes/version';
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : 'v0.0.0-unknown';
}

/** The node's architecture in Go's words (GOARCH). */
export const goArch = (): string =>
  ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' })[process.arch as string] ?? process.arch;
