import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { FlagError, parseFlags } from '../../payloads/flags.js';
import { parseDuration } from '../../payloads/hyperkube/client.js';
import { staticPods } from '../../payloads/hyperkube/kubelet.js';
import { masterManifest } from '../../payloads/hyperkube/manifests.js';
import { searchPath } from '../../payloads/hyperkube/pod-runner.js';
import { parseAllDocuments } from 'yaml';
import { kubeDnsObjects } from '../../payloads/hyperkube/addons.js';
import {
  addonImages,
  bundledImages,
  deploysAddons,
  GUEST_BUNDLE,
  loadBundle,
  payloadImages,
  payloadVersions,
  preparation,
  scriptImages,
} from '../../payloads/images.js';
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

  test('every name the 2016-2017 scripts give etcd and flannel is bundled, each once', () => {
    const tags = bundledImages(payloadVersions({ K8S_VERSION: 'v1.3.0' }), 'arm64').map((i) => i.tag);
    for (const tag of [
      'gcr.io/google_containers/etcd-arm64:2.2.5',
      'gcr.io/google_containers/etcd-arm64:3.0.4',
      'gcr.io/google_containers/flannel-arm64:0.5.5',
      'quay.io/coreos/flannel:v0.6.1-arm64',
    ])
      expect(tags.filter((t) => t === tag)).toEqual([tag]);
    // A scenario that asks for 3.0.4 already has that name: it is not bundled twice.
    const v3 = payloadVersions({ K8S_VERSION: 'v1.3.0', ETCD_VERSION: '3.0.4' });
    expect(scriptImages(v3, 'amd64').map((i) => i.tag)).not.toContain('gcr.io/google_containers/etcd-amd64:3.0.4');
    expect(bundledImages(v3, 'amd64').filter((i) => i.tag === 'gcr.io/google_containers/etcd-amd64:3.0.4')).toHaveLength(1);
  });

  test("the node loads the bundle into its Docker, and etcd and flannel into the bootstrap daemon's data root in the scripts' form", () => {
    const script = loadBundle(payloadVersions({ K8S_VERSION: 'v1.2.4' }), 'amd64');
    expect(script).toContain(`docker load -i ${GUEST_BUNDLE}`);
    expect(script).toMatch(
      /docker daemon -H unix:\/\/\/var\/run\/docker-bootstrap\.sock .*\n\s+--graph=\/var\/lib\/docker-bootstrap --exec-root=\/var\/run\/docker-bootstrap/,
    );
    const saved = /docker save (.*) \| docker -H unix:\/\/\/var\/run\/docker-bootstrap\.sock load/.exec(script)?.[1]?.split(' ');
    expect(saved?.sort()).toEqual([
      'gcr.io/google_containers/etcd-amd64:2.2.5',
      'gcr.io/google_containers/etcd-amd64:3.0.4',
      'gcr.io/google_containers/flannel-amd64:0.5.5',
      'quay.io/coreos/flannel:v0.6.1-amd64',
    ]);
    // The bootstrap daemon's --bridge=none took docker0 away: the main daemon's restart brings it back.
    expect(script.trimEnd().split('\n').slice(-3)).toEqual([
      'kill $pid; wait $pid || true',
      'systemctl restart docker',
      'ip link show docker0 >/dev/null',
    ]);
  });

  test("etcd's command passes 2.2.5/3.0.4's localhost defaults for what the caller left out, and only that", () => {
    const args = (...given: string[]) =>
      execFileSync('sh', [join(projectRoot, 'payloads/bundle/etcd.sh'), ...given], {
        env: { ...process.env, LAB_ETCD_BIN: 'echo' },
        encoding: 'utf8',
      })
        .trim()
        .split(' ');
    // The fork's flags: listening on 0.0.0.0, peer and cluster left to the defaults.
    const fork = [
      '--listen-client-urls=http://0.0.0.0:2379,http://0.0.0.0:4001',
      '--advertise-client-urls=http://localhost:2379,http://localhost:4001',
      '--listen-peer-urls=http://0.0.0.0:2380',
      '--data-dir=/var/etcd/data',
    ];
    expect(args(...fork)).toEqual([
      '--enable-v2=true',
      '--initial-advertise-peer-urls=http://localhost:2380,http://localhost:7001',
      '--initial-cluster=default=http://localhost:2380,default=http://localhost:7001',
      ...fork,
    ]);
    // skydns.yaml's single-dash flags, a name given apart: its cluster is named after it.
    const dns = [
      '-data-dir',
      '/var/etcd/data',
      '-advertise-client-urls',
      'http://127.0.0.1:2379',
      '-name',
      'dns',
      '-initial-advertise-peer-urls',
      'http://127.0.0.1:2380',
    ];
    expect(args(...dns)).toEqual(['--enable-v2=true', '--initial-cluster=dns=http://localhost:2380,dns=http://localhost:7001', ...dns]);
  });

  test('K8S_VERSION is required offline, as the guide says', () => {
    expect(() => payloadVersions({})).toThrow(/K8S_VERSION must be set/);
  });

  test('emulated: the nodes load the bundle (Flocker from its images); upstream: they pull the real images, Flocker from its packages', () => {
    const versions = payloadVersions({ K8S_VERSION: 'v1.3.0' });
    expect(preparation('emulated', versions, 'amd64')).toEqual({
      env: { FLOCKER_INSTALL: 'containers' },
      commands: [loadBundle(versions, 'amd64')],
    });
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
  test("v1.3 deploys it by itself, v1.2 leaves it to the guide's manual step", () => {
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
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
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
