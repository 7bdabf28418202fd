import { afterAll, describe, expect, test } from 'vitest';
import { attach, step, useCluster } from '../api.js';
import { ETCD, getJson, masterOf, setting, startSleeper, subnetFileOf, type Json } from './kube.js';

/**
 * flannel-ping (the multinode guide's network checks), against what flannel 0.5.5 did, stated
 * here and not taken from the stand-in: the network config is in etcd under /coreos.com/network;
 * every node holds a lease (subnets/<a.b.c.d>-<len>, PublicIP its cluster address) in the
 * network; its subnet.env names the lease's first address, the network and the backend's MTU;
 * docker0 holds that first address; the backend's device is up with that MTU and a UDP socket
 * listens on its port (udp: flannel0, external MTU - 28, port 8285; vxlan: flannel.<VNI>, VNI 1
 * unless the config says, external MTU - 50, port 8472, and the lease names its MAC); and a
 * container on every node pings a container on every other node, both ways.
 */
const lab = useCluster();
const PREFIX = '/coreos.com/network';
const network = setting(lab, 'FLANNEL_NETWORK', '10.1.0.0/16');
const backend = setting(lab, 'FLANNEL_BACKEND', 'udp');
/** What the check pings from: busybox (the guide's test image), which has ping. */
const image = setting(lab, 'FLANNEL_PING_IMAGE', 'busybox:latest');
const containerName = `lab-flannel-ping-${lab.descriptor.runId}`.slice(0, 60);
/** flannel 0.5.5: the udp backend's IP+UDP header, vxlan's outer Ethernet+IP+UDP+vxlan headers. */
const ENCAP_OVERHEAD: Record<string, number> = { udp: 28, vxlan: 50 };
const DEFAULT_PORT: Record<string, number> = { udp: 8285, vxlan: 8472 };

interface Lease {
  network: number;
  prefix: number;
  publicIp: string;
  vtepMac?: string;
}
const config: { vni?: number; port?: number } = {};
const leases = new Map<string, Lease>();
const containerIps = new Map<string, string>();

const toNumber = (ip: string): number | undefined => {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
};
const toIp = (n: number): string => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
const show = (lease: Lease) => `${toIp(lease.network)}/${lease.prefix}`;
/** Inside the lease's subnet (its network address included: vxlan's device holds it). */
const within = (ip: string, lease: Lease) => {
  const n = toNumber(ip);
  return n !== undefined && n >= lease.network && n < lease.network + 2 ** (32 - lease.prefix);
};
const firstAddress = (lease: Lease) => `${toIp(lease.network + 1)}/${lease.prefix}`;
const device = () => (backend === 'vxlan' ? `flannel.${config.vni ?? 1}` : 'flannel0');

/** The leases under <prefix>/subnets: key <a.b.c.d>-<len>, value {PublicIP, BackendData: {VtepMAC}}. */
async function readLeases(): Promise<Lease[]> {
  const master = await masterOf(lab);
  const answer = await getJson(master, `${ETCD}/v2/keys${PREFIX}/subnets?recursive=true`);
  return ((answer?.node?.nodes ?? []) as Json[]).flatMap((node) => {
    const match = /\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(String(node.key));
    const address = match ? toNumber(match[1] as string) : undefined;
    if (address === undefined) return [];
    const attrs = JSON.parse(String(node.value)) as { PublicIP?: string; BackendData?: { VtepMAC?: string } };
    return [{ network: address, prefix: Number(match?.[2]), publicIp: attrs.PublicIP ?? '', vtepMac: attrs.BackendData?.VtepMAC }];
  });
}

/** The lease a node's earlier test found, or a failure that points at it. */
function leaseOf(name: string): Lease {
  const lease = leases.get(name);
  expect(lease, `${name} holds no lease (the lease test above says why)`).toBeDefined();
  return lease as Lease;
}

/** The MTU the backend gives its device on a node: the external interface's less the encapsulation. */
async function wantedMtu(name: string): Promise<{ mtu: number; external: string; externalMtu: number }> {
  const node = await lab.node(name);
  const external = setting(lab, 'NET_INTERFACE', 'eth0');
  const externalMtu = Number((await node.succeed(`cat /sys/class/net/${external}/mtu`)).trim());
  return { mtu: externalMtu - (ENCAP_OVERHEAD[backend] ?? 0), external, externalMtu };
}

afterAll(async () => {
  for (const spec of lab.specs) {
    const node = await lab.node(spec.name).catch(() => undefined);
    await node?.exec(`docker rm -f ${containerName} >/dev/null 2>&1`, { timeout: 60 }).catch(() => undefined);
  }
});

describe('flannel-ping', () => {
  test(`the network config in etcd is ${network} over ${backend}`, async () => {
    const master = await masterOf(lab);
    const answer = await step(`GET ${PREFIX}/config from etcd on ${master.name}`, () => getJson(master, `${ETCD}/v2/keys${PREFIX}/config`));
    expect(answer?.node?.value, `no ${PREFIX}/config in etcd on ${master.name}`).toBeTypeOf('string');
    await attach('config', String(answer?.node?.value));
    const parsed = JSON.parse(String(answer?.node?.value)) as {
      Network?: string;
      Backend?: { Type?: string; VNI?: number; Port?: number };
    };
    config.vni = parsed.Backend?.VNI;
    config.port = parsed.Backend?.Port;
    expect(parsed.Network, `the flannel network in etcd is ${parsed.Network}, the scenario set ${network}`).toBe(network);
    expect(
      parsed.Backend?.Type ?? 'udp',
      `the flannel backend in etcd is ${parsed.Backend?.Type ?? 'udp'}, the scenario set ${backend}`,
    ).toBe(backend);
  });

  for (const spec of lab.specs) {
    test(`${spec.name} holds a lease in ${network}`, async () => {
      const all = await step(`read the leases under ${PREFIX}/subnets`, readLeases);
      await attach('leases', JSON.stringify(all, null, 2));
      const lease = all.find((l) => l.publicIp === spec.address);
      const held = all.map((l) => `${show(l)} -> ${l.publicIp}`).join(', ') || 'none';
      expect(lease, `${spec.name} (${spec.address}) holds no lease under ${PREFIX}/subnets (leases: ${held})`).toBeDefined();
      const [base = '', bits = ''] = network.split('/');
      const range = { network: toNumber(base) ?? 0, prefix: Number(bits), publicIp: '' };
      expect(within(toIp(lease?.network ?? 0), range), `${spec.name}'s lease ${lease && show(lease)} is outside ${network}`).toBe(true);
      leases.set(spec.name, lease as Lease);
    });

    test(`${spec.name}'s subnet.env agrees with its lease`, async () => {
      const lease = leaseOf(spec.name);
      const node = await lab.node(spec.name);
      const where = await step(`find the subnet.env flanneld writes on ${spec.name}`, () => subnetFileOf(node));
      const env = await step(`read ${where} on ${spec.name}`, () => node.succeed(`cat ${where}`));
      await attach(`${spec.name} subnet.env (${where})`, env);
      const values = Object.fromEntries(
        env
          .trim()
          .split('\n')
          .map((line) => line.split('=', 2) as [string, string]),
      );
      expect(
        values.FLANNEL_SUBNET,
        `${spec.name}'s subnet.env says FLANNEL_SUBNET=${values.FLANNEL_SUBNET}, its lease is ${show(lease)}`,
      ).toBe(firstAddress(lease));
      expect(values.FLANNEL_NETWORK, `${spec.name}'s subnet.env says FLANNEL_NETWORK=${values.FLANNEL_NETWORK}`).toBe(network);
      const { mtu, external, externalMtu } = await wantedMtu(spec.name);
      expect(
        values.FLANNEL_MTU,
        `${spec.name}'s subnet.env says FLANNEL_MTU=${values.FLANNEL_MTU}; the ${backend} backend's on ${external} (MTU ${externalMtu}) is ${mtu}`,
      ).toBe(String(mtu));
    });

    test(`docker0 on ${spec.name} holds the first address of its lease`, async () => {
      const lease = leaseOf(spec.name);
      const node = await lab.node(spec.name);
      const docker0 = await step(`read docker0's address on ${spec.name}`, async () =>
        (await node.exec("ip -4 -o addr show docker0 | awk '{print $4}'")).stdout.trim(),
      );
      expect(docker0, `docker0 on ${spec.name} is ${docker0 || 'without an address'}, not ${firstAddress(lease)} of its lease`).toBe(
        firstAddress(lease),
      );
    });

    test(`the ${backend} backend's device on ${spec.name} is up with its MTU, and its UDP port listens`, async () => {
      const lease = leaseOf(spec.name);
      const node = await lab.node(spec.name);
      const name = device();
      const link = await step(`read ${name} on ${spec.name}`, async () =>
        (await node.exec(`cat /sys/class/net/${name}/mtu /sys/class/net/${name}/address /sys/class/net/${name}/operstate`)).stdout
          .trim()
          .split('\n'),
      );
      const [mtu = '', mac = '', state = ''] = link;
      expect(link.length, `${spec.name} has no device ${name}`).toBe(3);
      const wanted = await wantedMtu(spec.name);
      expect(
        mtu,
        `${name} on ${spec.name} has MTU ${mtu}; the ${backend} backend's on ${wanted.external} (MTU ${wanted.externalMtu}) is ${wanted.mtu}`,
      ).toBe(String(wanted.mtu));
      // A TUN device's operstate reads "unknown" while it carries traffic; only "down" is down.
      expect(state, `${name} on ${spec.name} is ${state}`).not.toBe('down');
      const port = config.port || DEFAULT_PORT[backend];
      const socket = await step(`find a UDP socket on port ${port} on ${spec.name}`, async () =>
        (await node.exec(`ss -Hunl 'sport = :${port}'`)).stdout.trim(),
      );
      expect(socket, `nothing listens on UDP ${port} on ${spec.name}: the ${backend} backend's packets have nowhere to go`).not.toBe('');
      if (backend === 'vxlan')
        expect(
          lease.vtepMac,
          `${spec.name}'s lease names VTEP ${lease.vtepMac}, but ${name} has MAC ${mac}: peers send to a MAC nobody has`,
        ).toBe(mac);
    });
  }

  test(`a container runs on every node (${image})`, async () => {
    for (const spec of lab.specs) {
      const node = await lab.node(spec.name);
      const ip = await step(`start a container on ${spec.name} (${image})`, () => startSleeper(node, containerName, image));
      const lease = leases.get(spec.name);
      if (lease) expect(within(ip, lease), `the container on ${spec.name} got ${ip}, outside its lease ${show(lease)}`).toBe(true);
      containerIps.set(spec.name, ip);
    }
  });

  for (const from of lab.specs)
    for (const to of lab.specs.filter((s) => s.name !== from.name)) {
      test(`container on ${from.name} pings container on ${to.name}`, async () => {
        const target = containerIps.get(to.name);
        expect(target, `no container was started on ${to.name} (the test above says why)`).toBeDefined();
        const node = await lab.node(from.name);
        const result = await step(`ping ${target} (${to.name}) from the container on ${from.name}`, () =>
          node.exec(`docker exec ${containerName} ping -c 3 -W 2 ${target}`, { timeout: 30 }),
        );
        await attach('ping', result.stdout + result.stderr);
        expect(
          result.code,
          `${from.name} -> ${to.name}: the container on ${from.name} cannot reach the container on ${to.name} (${target}) over flannel (${backend}):\n${(result.stdout + result.stderr).trim()}`,
        ).toBe(0);
      });
    }
});
