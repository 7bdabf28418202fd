import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FlagError, parseFlags } from '../../payloads/flags.js';
import { parseDuration } from '../../payloads/hyperkube/client.js';
import { staticPods } from '../../payloads/hyperkube/kubelet.js';
import { masterManifest } from '../../payloads/hyperkube/manifests.js';
import { searchPath } from '../../payloads/hyperkube/pod-runner.js';
import { parseAllDocuments } from 'yaml';
import { kubeDnsObjects } from '../../payloads/hyperkube/addons.js';
import { addonImages, deploysAddons, GUEST_BUNDLE, payloadImages, payloadVersions, preparation } from '../../payloads/images.js';
import { projectRoot } from '../../lab/util/paths.js';

describe('payload images', () => {
  test('are named as the guide names them, per K8S_VERSION and ARCH, with its defaults', () => {
    const versions = payloadVersions({ K8S_VERSION: 'v1.2.4' });
    expect(payloadImages(versions, 'arm64').map((i) => i.tag)).toEqual([
      'gcr.io/google_containers/etcd-arm64:2.2.5',
      'gcr.io/google_containers/flannel-arm64:0.5.5',
      'gcr.io/google_containers/hyperkube-arm64:v1.2.4',
      'gcr.io/google_containers/pause-arm64:3.0',
    ]);
    const custom = payloadVersions({ K8S_VERSION: 'v1.3.0', ETCD_VERSION: '3.0.4', REG_PREFIX: 'registry.example/k8s' });
    expect(payloadImages(custom, 'amd64')[0]?.tag).toBe('registry.example/k8s/etcd-amd64:3.0.4');
  });

  test('K8S_VERSION is required offline, as the guide says', () => {
    expect(() => payloadVersions({})).toThrow(/K8S_VERSION must be set/);
  });

  test('emulated: the nodes load the bundle (Flocker from its images); upstream: they pull the real images, Flocker from its packages', () => {
    const versions = payloadVersions({ K8S_VERSION: 'v1.3.0' });
    expect(preparation('emulated', versions, 'amd64')).toEqual({ env: { OFFLINE_BUNDLE: GUEST_BUNDLE, FLOCKER_INSTALL: 'containers' }, commands: [] });
    expect(preparation('upstream', versions, 'amd64')).toEqual({
      env: { FLOCKER_INSTALL: 'packages' },
      commands: [
        'docker pull gcr.io/google_containers/etcd-amd64:2.2.5',
        'docker pull gcr.io/google_containers/flannel-amd64:0.5.5',
        'docker pull gcr.io/google_containers/hyperkube-amd64:v1.3.0',
        'docker pull gcr.io/google_containers/pause-amd64:3.0',
      ],
    });
  });
});

describe('the DNS addon', () => {
  test('v1.3 deploys it by itself, v1.2 leaves it to the guide\'s manual step', () => {
    expect(['v1.2.0', 'v1.2.4', 'v1.3.0', 'v1.3.0-beta.1', 'v1.4.0'].map(deploysAddons)).toEqual([false, false, true, true, true]);
  });

  test("the provisioners' skydns.yaml, with ARCH substituted as the guide does, is the addon the bundle carries", () => {
    const text = readFileSync(join(projectRoot, 'provisioners/docker-multinode/skydns.yaml'), 'utf8').replace(/ARCH/g, 'arm64');
    const documents = parseAllDocuments(text).map((d) => d.toJS() as unknown);
    const versions = payloadVersions({ K8S_VERSION: 'v1.2.4' });
    expect(documents).toEqual(kubeDnsObjects(versions, 'arm64', 'v8'));
    // Every image the addon names is in the bundle: nothing would have to be pulled.
    const bundled = [...payloadImages(versions, 'arm64'), ...addonImages(versions, 'arm64')].map((i) => i.tag);
    const rc = documents[0] as { spec: { template: { spec: { containers: { image: string }[] } } } };
    for (const { image } of rc.spec.template.spec.containers) expect(bundled).toContain(image);
  });
});

describe('flags, as the 2016 Go binaries took them', () => {
  const spec = { 'etcd-endpoints': 'http://127.0.0.1:4001', 'ip-masq': false, iface: '', log_dir: '' };

  test('--name=value, --name value, bare booleans and defaults', () => {
    const { flags, args } = parseFlags(['--etcd-endpoints=http://10.77.0.11:4001', '--ip-masq', '--iface', 'eth1', 'rest'], spec);
    expect(flags).toEqual({ 'etcd-endpoints': 'http://10.77.0.11:4001', 'ip-masq': true, iface: 'eth1', log_dir: '' });
    expect(args).toEqual(['rest']);
    expect(parseFlags(['--ip-masq=false', '-log-dir=/tmp'], spec).flags).toMatchObject({ 'ip-masq': false, log_dir: '/tmp' });
  });

  test('an unknown flag, a bad boolean or a missing value is an error', () => {
    expect(() => parseFlags(['--bogus=1'], spec)).toThrow(new FlagError('unknown flag: --bogus'));
    expect(() => parseFlags(['--ip-masq=maybe'], spec)).toThrow(/invalid argument "maybe" for --ip-masq/);
    expect(() => parseFlags(['--iface'], spec)).toThrow(/flag needs an argument: --iface/);
  });

  test('Go durations', () => {
    expect(parseDuration('40s')).toBe(40_000);
    expect(parseDuration('5m0s')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(() => parseDuration('40')).toThrow(/invalid duration/);
  });
});

describe('kubelet: static pods', () => {
  test("the master's manifest runs apiserver, controller-manager and scheduler from the same hyperkube on the host network", () => {
    const pod = masterManifest(payloadVersions({ K8S_VERSION: 'v1.2.4' }), 'amd64') as {
      spec: { hostNetwork: boolean; containers: { name: string; image: string; command: string[] }[] };
    };
    expect(pod.spec.hostNetwork).toBe(true);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['controller-manager', 'apiserver', 'scheduler']);
    expect(new Set(pod.spec.containers.map((c) => c.image))).toEqual(new Set(['gcr.io/google_containers/hyperkube-amd64:v1.2.4']));
    expect(pod.spec.containers[1]?.command).toContain('--etcd-servers=http://127.0.0.1:4001');
    expect(pod.spec.containers[1]?.command).toContain('--service-cluster-ip-range=10.0.0.1/24');
  });

  test('are named <pod>-<node>, with a UID that changes with the manifest and the node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'manifests-'));
    writeFileSync(join(dir, 'master.json'), JSON.stringify(masterManifest(payloadVersions({ K8S_VERSION: 'v1.3.0' }), 'amd64')));
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    const [pod, ...rest] = staticPods(dir, '10.77.0.11');
    expect(rest).toEqual([]);
    expect(pod?.metadata).toMatchObject({ name: 'k8s-master-10.77.0.11', namespace: 'kube-system' });
    expect(pod?.metadata.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(staticPods(dir, '10.77.0.12')[0]?.metadata.uid).not.toBe(pod?.metadata.uid);
    expect(staticPods(join(dir, 'missing'), 'x')).toEqual([]);
  });

  test("a pod's DNS search path", () => {
    expect(searchPath('default', 'cluster.local')).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  });
});
