import { afterAll, describe, expect, test } from 'vitest';
import { payloadImages, payloadVersions } from '../../../payloads/images.js';
import { formatIp, parseCidr, parseIp } from '../../net/addressing.js';
import { attach, step, useCluster } from '../api.js';
import { ETCD, getJson, masterOf, setting, type Json } from './kube.js';

/**
 * flannel-ping (the multinode guide's network checks): the network config is in etcd; every node
 * holds a lease for its cluster IP; its subnet.env matches the lease; docker0 sits in the lease;
 * the flannel device has the backend's MTU; and a container on every node pings a container on
 * every other node, both ways, across hosts.
 */
const lab = useCluster();
const network = setting(lab, 'FLANNEL_NETWORK', '10.1.0.0/16');
const backend = setting(lab, 'FLANNEL_BACKEND', 'udp');
const device = backend === 'vxlan' ? 'flannel.1' : 'flannel0';
/** The external MTU (1500 on the cluster link) less the encapsulation: 28 for udp, 50 for vxlan. */
const backendMtu = 1500 - (backend === 'vxlan' ? 50 : 28);
const prefix = '/coreos.com/network';
const containerName = `lab-flannel-ping-${lab.descriptor.runId}`.slice(0, 60);

interface Lease {
  subnet: string;
  len: number;
  publicIp: string;
}
const leases = new Map<string, Lease>();
const containerIps = new Map<string, string>();

async function readLeases(): Promise<Lease[]> {
  const master = await masterOf(lab);
  const answer = await getJson(master, `${ETCD}/v2/keys${prefix}/subnets?recursive=true`);
  return ((answer?.node?.nodes ?? []) as Json[]).flatMap((node) => {
    const match = /(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(String(node.key));
    if (!match) return [];
    const attrs = JSON.parse(String(node.value)) as { PublicIP?: string };
    return [{ subnet: match[1] as string, len: Number(match[2]), publicIp: attrs.PublicIP ?? '' }];
  });
}

const inSubnet = (address: string, lease: Lease): boolean => {
  const ip = parseIp(address);
  const net = parseIp(lease.subnet);
  return ip !== undefined && net !== undefined && ip >>> (32 - lease.len) === net >>> (32 - lease.len);
};

afterAll(async () => {
  for (const spec of lab.specs) {
    const node = await lab.node(spec.name).catch(() => undefined);
    await node?.exec(`docker rm -f ${containerName} >/dev/null 2>&1`, { timeout: 60 }).catch(() => undefined);
  }
});

describe('flannel-ping', () => {
  test(`the network config in etcd is ${network} over ${backend}`, async () => {
    const master = await masterOf(lab);
    const answer = await step(`GET ${prefix}/config from etcd on ${master.name}`, () => getJson(master, `${ETCD}/v2/keys${prefix}/config`));
    expect(answer?.node?.value, `no ${prefix}/config in etcd on ${master.name}`).toBeTypeOf('string');
    await attach('config', String(answer?.node?.value));
    const config = JSON.parse(String(answer?.node?.value)) as { Network?: string; Backend?: { Type?: string } };
    expect(config.Network, `the flannel network in etcd is ${config.Network}, the scenario set ${network}`).toBe(network);
    expect(config.Backend?.Type ?? 'udp', 'the backend in etcd').toBe(backend);
  });

  for (const spec of lab.specs) {
    test(`${spec.name} holds a lease, and its subnet.env, docker0 and ${device} agree with it`, async () => {
      const node = await lab.node(spec.name);
      const all = await step(`read the leases under ${prefix}/subnets`, readLeases);
      await attach('leases', JSON.stringify(all, null, 2));
      const lease = all.find((l) => l.publicIp === spec.address);
      expect(lease, `${spec.name} (${spec.address}) holds no lease under ${prefix}/subnets (leases: ${all.map((l) => `${l.subnet}/${l.len} -> ${l.publicIp}`).join(', ') || 'none'})`).toBeDefined();
      if (!lease) return;
      leases.set(spec.name, lease);
      const range = parseCidr(network);
      expect(range && inSubnet(lease.subnet, { subnet: formatIp(range.network), len: range.prefix, publicIp: '' }), `lease ${lease.subnet} is outside ${network}`).toBe(true);

      const env = await step(`read /run/flannel/subnet.env on ${spec.name}`, () => node.succeed('cat /run/flannel/subnet.env'));
      await attach(`${spec.name} subnet.env`, env);
      const values = Object.fromEntries(env.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
      const expected = `${formatIp((parseIp(lease.subnet) ?? 0) + 1)}/${lease.len}`;
      expect(values.FLANNEL_SUBNET, `${spec.name}'s subnet.env says FLANNEL_SUBNET=${values.FLANNEL_SUBNET}, its lease is ${lease.subnet}/${lease.len}`).toBe(expected);
      expect(values.FLANNEL_NETWORK, `${spec.name}'s subnet.env network`).toBe(network);
      expect(values.FLANNEL_MTU, `${spec.name}'s subnet.env MTU is not the ${backend} backend's`).toBe(String(backendMtu));

      const docker0 = await step(`read docker0's address on ${spec.name}`, () => node.succeed("ip -4 -o addr show docker0 | awk '{print $4}'"));
      expect(docker0.trim(), `docker0 on ${spec.name} is ${docker0.trim() || 'without an address'}, not ${expected} in its lease`).toBe(expected);

      const mtu = await step(`read ${device}'s MTU on ${spec.name}`, async () => (await node.exec(`cat /sys/class/net/${device}/mtu`)).stdout.trim());
      expect(mtu, `${device} on ${spec.name} has MTU ${mtu || '(no such device)'}, the ${backend} backend's is ${backendMtu}`).toBe(String(backendMtu));
    });
  }

  test('a container runs on every node', async () => {
    const versions = payloadVersions({ ...lab.descriptor.env, K8S_VERSION: lab.descriptor.env.K8S_VERSION || 'v0.0.0' });
    for (const spec of lab.specs) {
      const node = await lab.node(spec.name);
      const image = payloadImages(versions, spec.arch).find((i) => i.name === 'pause')?.tag ?? '';
      const ip = await step(`start a container on ${spec.name} (${image})`, async () => {
        await node.exec(`docker rm -f ${containerName} >/dev/null 2>&1`, { timeout: 60 });
        await node.succeed(`docker run -d --name ${containerName} ${image} >/dev/null`, { timeout: 120 });
        return (await node.succeed(`docker inspect -f '{{.NetworkSettings.IPAddress}}' ${containerName}`)).trim();
      });
      const lease = leases.get(spec.name);
      if (lease) expect(inSubnet(ip, lease), `the container on ${spec.name} got ${ip}, outside its lease ${lease.subnet}/${lease.len}`).toBe(true);
      containerIps.set(spec.name, ip);
    }
  });

  for (const from of lab.specs)
    for (const to of lab.specs.filter((s) => s.name !== from.name)) {
      test(`container on ${from.name} pings container on ${to.name}`, async () => {
        const target = containerIps.get(to.name);
        expect(target, `no container was started on ${to.name}`).toBeDefined();
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
