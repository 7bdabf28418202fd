import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { bundlePrograms } from '../../payloads/bundle/bundle.js';

/**
 * The flannel stand-in's vxlan data path without VMs: two network namespaces of the test's own,
 * joined by a veth (10.77.9.1 and .2), Debian's etcd in the first, flanneld (compiled as the
 * bundle compiles it) in both. Each side's lease address sits on a bridge, as docker0 would;
 * TCP between the two subnets must cross flannel.1. (The udp backend's fou module is not in
 * every host kernel; the VMs test it end to end.)
 */
const id = `${process.pid}`;
const nsA = `labfl-a-${id}`;
const nsB = `labfl-b-${id}`;
const dir = mkdtempSync(join(tmpdir(), 'flannel-netns-'));
const children: ChildProcess[] = [];
const sh = (...args: string[]) => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8' });
const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);
/** Output of the processes started, by name, for the failure messages. */
const logs = new Map<string, string>();
const start = (ns: string, args: string[], name: string) => {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  logs.set(name, '');
  child.stderr?.on('data', (d: Buffer) => logs.set(name, (logs.get(name) ?? '') + d.toString()));
  children.push(child);
};
const waitFor = async (what: string, ok: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline)
      throw new Error(
        `${what} did not happen within ${ms} ms\n${[...logs].map(([name, text]) => `--- ${name}\n${text.slice(-2000)}`).join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
};
const tryRead = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

beforeAll(async () => {
  for (const p of await bundlePrograms()) writeFileSync(join(dir, `${p.name}.mjs`), p.text);
  sh('ip', 'netns', 'add', nsA);
  sh('ip', 'netns', 'add', nsB);
  sh('ip', 'link', 'add', `fa${id}`.slice(0, 15), 'type', 'veth', 'peer', 'name', `fb${id}`.slice(0, 15));
  for (const [ns, dev, address] of [
    [nsA, `fa${id}`.slice(0, 15), '10.77.9.1/24'],
    [nsB, `fb${id}`.slice(0, 15), '10.77.9.2/24'],
  ] as const) {
    sh('ip', 'link', 'set', dev, 'netns', ns);
    sh('ip', '-n', ns, 'addr', 'add', address, 'dev', dev);
    sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  start(
    nsA,
    [
      'etcd',
      '--enable-v2',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      'http://10.77.9.1:4001',
      '--advertise-client-urls',
      'http://10.77.9.1:4001',
      '--listen-peer-urls',
      'http://127.0.0.1:2380',
    ],
    'etcd.log',
  );
  await waitFor('etcd answering', () => {
    try {
      inNs(nsA, 'curl', '-fs', 'http://10.77.9.1:4001/health');
      return true;
    } catch {
      return false;
    }
  });
}, 60_000);

afterAll(() => {
  for (const child of children) child.kill('SIGTERM');
  for (const ns of [nsA, nsB]) execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

test('flanneld (vxlan) leases a subnet per host and carries TCP between them over flannel.1 (MTU 1450)', async () => {
  inNs(
    nsA,
    'curl',
    '-fsS',
    '-XPUT',
    'http://10.77.9.1:4001/v2/keys/coreos.com/network/config',
    '-d',
    'value={ "Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}',
  );
  for (const [ns, side, dev] of [
    [nsA, 'a', `fa${id}`.slice(0, 15)],
    [nsB, 'b', `fb${id}`.slice(0, 15)],
  ] as const)
    start(
      ns,
      [
        'node',
        join(dir, 'flanneld.mjs'),
        '--etcd-endpoints=http://10.77.9.1:4001',
        `--iface=${dev}`,
        '--ip-masq',
        `--subnet-file=${join(dir, `${side}.env`)}`,
      ],
      `flanneld-${side}.log`,
    );
  const subnets: Record<string, string> = {};
  for (const [ns, side] of [
    [nsA, 'a'],
    [nsB, 'b'],
  ] as const) {
    await waitFor(`subnet.env of ${side}`, () => tryRead(join(dir, `${side}.env`)).includes('FLANNEL_MTU'));
    const env = tryRead(join(dir, `${side}.env`));
    expect(env).toMatch(/^FLANNEL_NETWORK=10\.1\.0\.0\/16\nFLANNEL_SUBNET=10\.1\.\d+\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n$/);
    subnets[side] = /FLANNEL_SUBNET=(\S+)/.exec(env)?.[1] as string;
    // docker0's stand-in: a bridge holding the lease's first address.
    sh('ip', '-n', ns, 'link', 'add', 'd0', 'type', 'bridge');
    sh('ip', '-n', ns, 'addr', 'add', subnets[side] as string, 'dev', 'd0');
    sh('ip', '-n', ns, 'link', 'set', 'd0', 'up');
  }
  expect(subnets.a).not.toBe(subnets.b);
  const a = (subnets.a as string).split('/')[0] as string;
  const b = (subnets.b as string).split('/')[0] as string;
  expect(inNs(nsA, 'cat', '/sys/class/net/flannel.1/mtu').trim()).toBe('1450');
  expect(inNs(nsB, 'cat', '/sys/class/net/flannel.1/address').trim()).toBe('0e:fa:0a:4d:09:02');
  // A lease names the host and its VTEP, as flannel's vxlan backend writes it.
  const leases = JSON.parse(inNs(nsA, 'curl', '-fsS', 'http://10.77.9.1:4001/v2/keys/coreos.com/network/subnets')) as {
    node: { nodes: { value: string }[] };
  };
  expect(leases.node.nodes.map((n) => JSON.parse(n.value) as unknown)).toEqual(
    expect.arrayContaining([{ PublicIP: '10.77.9.2', BackendType: 'vxlan', BackendData: { VtepMAC: '0e:fa:0a:4d:09:02' } }]),
  );
  // Each side serves on its subnet address; the other fetches from its own subnet address.
  for (const [ns, address] of [
    [nsA, a],
    [nsB, b],
  ] as const)
    start(
      ns,
      ['node', '-e', `require('http').createServer((q, r) => r.end('hello from ${address}')).listen(8000, '${address}')`],
      `http-${address}.log`,
    );
  for (const [ns, from, to] of [
    [nsA, a, b],
    [nsB, b, a],
  ] as const)
    await waitFor(`${from} -> ${to} over flannel.1`, () => {
      try {
        return inNs(ns, 'curl', '-fsS', '--max-time', '2', '--interface', from, `http://${to}:8000/`) === `hello from ${to}`;
      } catch {
        return false;
      }
    });
}, 60_000);

test("a subnet.env changed after flanneld wrote it stays changed, as 0.5.5's (written once, after the lease)", async () => {
  const file = join(dir, 'a.env');
  const edited = tryRead(file).replace(/^FLANNEL_SUBNET=.*$/m, 'FLANNEL_SUBNET=10.1.250.1/24');
  writeFileSync(file, edited);
  // A new lease makes both flannelds go through their watch once more.
  const lease = 'http://10.77.9.1:4001/v2/keys/coreos.com/network/subnets/10.1.254.0-24';
  inNs(
    nsA,
    'curl',
    '-fsS',
    '-XPUT',
    lease,
    '-d',
    'value={"PublicIP":"10.77.9.9","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:fa:0a:4d:09:09"}}',
    '-d',
    'ttl=60',
  );
  await waitFor('flanneld on a to route the new lease', () =>
    (logs.get('flanneld-a.log') ?? '').includes('Subnet added: 10.1.254.0/24 via 10.77.9.9'),
  );
  await new Promise((r) => setTimeout(r, 1000));
  inNs(nsA, 'curl', '-fsS', '-XDELETE', lease);
  expect(tryRead(file)).toBe(edited);
}, 30_000);
