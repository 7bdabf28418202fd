import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { provisionersDir } from '../../lab/util/paths.js';

/**
 * The docker-multinode scripts' variable handling, run by bash on the host with stand-ins for
 * the commands they probe (docker, ip), so no Docker and no network are touched.
 */
const scripts = join(provisionersDir, 'docker-multinode');
const stubs = mkdtempSync(join(tmpdir(), 'multinode-stubs-'));
afterAll(() => rmSync(stubs, { recursive: true, force: true }));
const stub = (name: string, body: string) => {
  writeFileSync(join(stubs, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(stubs, name), 0o755);
};
stub('docker', 'exit 0');
stub('ip', 'case "$*" in *"route show to default"*) echo "default via 10.0.2.2 dev eth0 proto dhcp";; esac');
stub('curl', 'exit 7');
// check_params wants root; the test does not need to be.
stub('id', 'echo 0');

function bash(script: string, env: Record<string, string> = {}) {
  const result = spawnSync('bash', ['-c', script], {
    cwd: scripts,
    env: { PATH: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const settingsOf = (stdout: string) =>
  Object.fromEntries([...stdout.matchAll(/^\+\+\+ \[\d{4} \d\d:\d\d:\d\d\] (\w+) is set to: (.*)$/gm)].map((m) => [m[1], m[2]]));
const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
/** The four images of the guide with its default versions, in sorted order. */
const guideImages = (k8s: string) => [
  `gcr.io/google_containers/etcd-${arch}:2.2.5`,
  `gcr.io/google_containers/flannel-${arch}:0.5.5`,
  `gcr.io/google_containers/hyperkube-${arch}:${k8s}`,
  `gcr.io/google_containers/pause-${arch}:3.0`,
];

describe('docker-multinode scripts: settings', () => {
  test("the guide's defaults, printed as +++ [MMDD HH:MM:SS] X is set to: Y", () => {
    const result = bash('set -e; source common.sh; multinode::main; multinode::check_params', {
      K8S_VERSION: 'v1.3.0',
      MASTER_IP: '10.77.0.11',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(settingsOf(result.stdout)).toEqual({
      K8S_VERSION: 'v1.3.0',
      ETCD_VERSION: '2.2.5',
      FLANNEL_VERSION: '0.5.5',
      FLANNEL_IPMASQ: 'true',
      FLANNEL_NETWORK: '10.1.0.0/16',
      FLANNEL_BACKEND: 'udp',
      RESTART_POLICY: 'unless-stopped',
      MASTER_IP: '10.77.0.11',
      ARCH: arch,
      NET_INTERFACE: 'eth0',
      // The Flocker fork's additions (ET 4cad42e): the control service on the master by default.
      FLOCKER_CONTROL_SERVICE_HOST: '10.77.0.11',
      FLOCKER_USER_CA_DIR: '/etc/flocker/',
    });
  });

  test("the Flocker fork's kubelet: the five FLOCKER_CONTROL_SERVICE_* variables and the CA directory mounted", () => {
    const script = `set -e; source common.sh; multinode::main
      docker() { printf '%s\\n' "$@" >&2; }
      multinode::make_shared_kubelet_dir() { :; }
      multinode::node_ip() { echo 10.77.0.12; }
      multinode::start_k8s_worker`;
    const defaults = bash(script, { K8S_VERSION: 'v1.3.0', MASTER_IP: '10.77.0.11' });
    expect(defaults.code, defaults.stderr).toBe(0);
    // (run_kubelet sends docker's output to /dev/null: the stand-in prints its arguments on stderr.)
    const args = defaults.stderr.split('\n');
    for (const variable of [
      'FLOCKER_CONTROL_SERVICE_HOST=10.77.0.11',
      'FLOCKER_CONTROL_SERVICE_PORT=4523',
      'FLOCKER_CONTROL_SERVICE_CA_FILE=/etc/flocker/cluster.crt',
      'FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE=/etc/flocker/kubernetes.key',
      'FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE=/etc/flocker/kubernetes.crt',
    ])
      expect(args[args.indexOf(variable) - 1], variable).toBe('-e');
    expect(args[args.indexOf('/etc/flocker/:/etc/flocker/') - 1]).toBe('-v');
    // Another directory keeps the node's own key (/etc/flocker/node.key) out of the kubelet.
    const own = bash(script, {
      K8S_VERSION: 'v1.3.0',
      MASTER_IP: '10.77.0.11',
      FLOCKER_USER_CA_DIR: '/etc/kubernetes/flocker/',
      FLOCKER_CONTROL_SERVICE_PORT: '4600',
    });
    expect(own.stderr).toContain('FLOCKER_CONTROL_SERVICE_CA_FILE=/etc/kubernetes/flocker/cluster.crt');
    expect(own.stderr).toContain('FLOCKER_CONTROL_SERVICE_PORT=4600');
    expect(own.stderr).toContain('/etc/kubernetes/flocker/:/etc/kubernetes/flocker/');
    expect(own.stderr).not.toContain('/etc/flocker/:/etc/flocker/');
  });

  test('exported values win over the defaults, as exporting before ./master.sh does', () => {
    const result = bash('set -e; source common.sh; multinode::main; multinode::check_params', {
      K8S_VERSION: 'v1.2.4',
      FLANNEL_BACKEND: 'vxlan',
      FLANNEL_NETWORK: '10.9.0.0/16',
      NET_INTERFACE: 'eth1',
      RESTART_POLICY: 'always',
    });
    expect(settingsOf(result.stdout)).toMatchObject({
      K8S_VERSION: 'v1.2.4',
      FLANNEL_BACKEND: 'vxlan',
      FLANNEL_NETWORK: '10.9.0.0/16',
      NET_INTERFACE: 'eth1',
      RESTART_POLICY: 'always',
    });
    const images = bash('source common.sh; multinode::main; echo "$ETCD_IMAGE $FLANNEL_IMAGE $HYPERKUBE_IMAGE $PAUSE_IMAGE"', {
      K8S_VERSION: 'v1.2.4',
    });
    expect(images.stdout.trim().split(' ')).toEqual(guideImages('v1.2.4'));
  });

  test('a malformed K8S_VERSION stops the install', () => {
    const result = bash('source common.sh; multinode::main; multinode::check_params', { K8S_VERSION: '1.3' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Invalid value for K8S_VERSION: 1\.3/);
  });

  test('without K8S_VERSION and without the internet, the install says what to export', () => {
    const result = bash('source common.sh; multinode::main');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/K8S_VERSION is not set .* export K8S_VERSION/);
  });

  test("worker.sh refuses to start without MASTER_IP, with the guide's message", () => {
    const result = bash('bash worker.sh', { K8S_VERSION: 'v1.3.0' });
    expect(result.code).toBe(1);
    expect(result.stdout.trim()).toBe('Please export MASTER_IP in your env');
  });
});

describe('offline.sh', () => {
  test('list prints every image of the install once, sorted', () => {
    const result = bash('bash offline.sh list', { K8S_VERSION: 'v1.3.0' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(guideImages('v1.3.0'));
  });

  test('push needs a prefix; other commands get the usage; K8S_VERSION is required', () => {
    const push = bash('bash offline.sh push', { K8S_VERSION: 'v1.3.0' });
    expect([push.code, push.stdout.trim()]).toEqual([255, "Must specify registry_prefix for 'push'"]);
    const other = bash('bash offline.sh fly', { K8S_VERSION: 'v1.3.0' });
    expect([other.code, other.stdout.trim()]).toEqual([1, 'Usage: offline.sh bootstrap|list|pull|push']);
    const noVersion = bash('bash offline.sh list');
    expect(noVersion.code).toBe(1);
    expect(noVersion.stderr).toMatch(/K8S_VERSION must be exported/);
  });
});
