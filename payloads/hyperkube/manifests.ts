import type { PayloadVersions } from '../images.js';

/**
 * The master's static pod, as the hyperkube image carried it in /etc/kubernetes/manifests-multi
 * (master-multi.json of the v1.2/v1.3 era): controller-manager, apiserver and scheduler on the
 * host's network, all from the hyperkube image of the same version.
 */
export function masterManifest(versions: PayloadVersions, arch: string): Record<string, unknown> {
  const image = `${versions.registry}/hyperkube-${arch}:${versions.k8s}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'k8s-master', namespace: 'kube-system' },
    spec: {
      hostNetwork: true,
      containers: [
        {
          name: 'controller-manager',
          image,
          command: [
            '/hyperkube',
            'controller-manager',
            '--master=127.0.0.1:8080',
            '--service-account-private-key-file=/srv/kubernetes/server.key',
            '--root-ca-file=/srv/kubernetes/ca.crt',
            '--min-resync-period=3m',
            '--v=2',
          ],
          volumeMounts: [{ name: 'data', mountPath: '/srv/kubernetes' }],
        },
        {
          name: 'apiserver',
          image,
          command: [
            '/hyperkube',
            'apiserver',
            '--service-cluster-ip-range=10.0.0.1/24',
            '--insecure-bind-address=0.0.0.0',
            '--etcd-servers=http://127.0.0.1:4001',
            '--admission-control=NamespaceLifecycle,LimitRanger,SecurityContextDeny,ServiceAccount,ResourceQuota',
            '--client-ca-file=/srv/kubernetes/ca.crt',
            '--min-request-timeout=300',
            '--allow-privileged=true',
            '--v=2',
          ],
          volumeMounts: [{ name: 'data', mountPath: '/srv/kubernetes' }],
        },
        { name: 'scheduler', image, command: ['/hyperkube', 'scheduler', '--master=127.0.0.1:8080', '--v=2'] },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

/** A static pod of one container on the host's network, in kube-system. */
const hostPod = (name: string, container: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'kube-system' },
  spec: { hostNetwork: true, containers: [container] },
});

/** The proxy of every node that runs the master manifests (the worker runs its own, by worker.sh). */
export function kubeProxyManifest(versions: PayloadVersions, arch: string): Record<string, unknown> {
  return hostPod('k8s-proxy', {
    name: 'kube-proxy',
    image: `${versions.registry}/hyperkube-${arch}:${versions.k8s}`,
    command: ['/hyperkube', 'proxy', '--master=http://127.0.0.1:8080', '--v=2'],
    securityContext: { privileged: true },
  });
}

/**
 * v1.3's addon manager: creates what /etc/kubernetes/addons holds (kube-dns) once the apiserver
 * answers, and again if it is deleted. Runs from the hyperkube image, which carries the addons.
 */
export function addonManagerManifest(versions: PayloadVersions, arch: string): Record<string, unknown> {
  return hostPod('kube-addon-manager', {
    name: 'kube-addon-manager',
    image: `${versions.registry}/hyperkube-${arch}:${versions.k8s}`,
    command: ['/kube-addons', '--master=http://127.0.0.1:8080', '--addons=/etc/kubernetes/addons'],
  });
}
