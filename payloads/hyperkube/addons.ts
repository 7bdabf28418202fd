import { addonImages, payloadImages, type PayloadVersions } from '../images.js';

/**
 * The cluster DNS addon as the 1.2/1.3 manifests defined it: the kube-dns RC (etcd, kube2sky,
 * skydns, exechealthz in one pod) and the kube-dns service on 10.0.0.10 in kube-system. v1.3's
 * hyperkube image carries them in /etc/kubernetes/addons (created by the addon manager); for
 * v1.2 the user creates them from skydns.yaml (provisioners/docker-multinode/skydns.yaml, kept
 * equal to these by a unit test).
 */

export const DNS_SERVICE_IP = '10.0.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';

export function kubeDnsObjects(versions: PayloadVersions, arch: string, rcVersion: 'v8' | 'v11'): Record<string, unknown>[] {
  const image = (name: string) => [...payloadImages(versions, arch), ...addonImages(versions, arch)].find((i) => i.name === name)?.tag;
  const labels = { 'k8s-app': 'kube-dns', version: rcVersion, 'kubernetes.io/cluster-service': 'true' };
  const rc = {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name: `kube-dns-${rcVersion}`, namespace: 'kube-system', labels },
    spec: {
      replicas: 1,
      selector: { 'k8s-app': 'kube-dns', version: rcVersion },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'etcd',
              image: image('etcd'),
              command: [
                '/usr/local/bin/etcd',
                '-data-dir',
                '/var/etcd/data',
                '-listen-client-urls',
                'http://127.0.0.1:2379,http://127.0.0.1:4001',
                '-advertise-client-urls',
                'http://127.0.0.1:2379,http://127.0.0.1:4001',
                '-initial-cluster-token',
                'skydns-etcd',
              ],
              volumeMounts: [{ name: 'etcd-storage', mountPath: '/var/etcd/data' }],
            },
            { name: 'kube2sky', image: image('kube2sky'), args: [`--domain=${CLUSTER_DOMAIN}`] },
            {
              name: 'skydns',
              image: image('skydns'),
              args: ['-machines=http://127.0.0.1:4001', '-addr=0.0.0.0:53', '-ns-rotate=false', `-domain=${CLUSTER_DOMAIN}.`],
              ports: [
                { containerPort: 53, name: 'dns', protocol: 'UDP' },
                { containerPort: 53, name: 'dns-tcp', protocol: 'TCP' },
              ],
            },
            {
              name: 'healthz',
              image: image('exechealthz'),
              args: [`-cmd=nslookup kubernetes.default.svc.${CLUSTER_DOMAIN} 127.0.0.1 >/dev/null`, '-port=8080'],
              ports: [{ containerPort: 8080, protocol: 'TCP' }],
            },
          ],
          volumes: [{ name: 'etcd-storage', emptyDir: {} }],
          dnsPolicy: 'Default',
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'kube-dns',
      namespace: 'kube-system',
      labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/cluster-service': 'true', 'kubernetes.io/name': 'KubeDNS' },
    },
    spec: {
      selector: { 'k8s-app': 'kube-dns' },
      clusterIP: DNS_SERVICE_IP,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ],
    },
  };
  return [rc, service];
}
