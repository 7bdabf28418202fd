import { afterAll, describe, expect, test } from 'vitest';
import { BACKEND_PORT, backendMtu, DEFAULT_ETCD_PREFIX, parseSubnetKey, type BackendType } from '../../../payloads/flannel/lease.js';
import { payloadImages, payloadVersions } from '../../../payloads/images.js';
import { formatIp, isHostIn, parseCidr, parseIp, type Cidr } from '../../net/addressing.js';
import { attach, step, useCluster } from '../api.js';
import { ETCD, getJson, masterOf, setting, type Json } from './kube.js';

/**
 * flannel-ping (the multinode guide's network checks): the network config is in etcd; every node
 * holds a lease for its cluster IP; its subnet.env matches the lease; docker0 sits in the lease;
 * the flannel device has the backend's MTU and UDP port; and a container on every node pings a container on
 * every other node, both ways, across hosts.
 */
const lab = useCluster();
const network = setting(lab, 'FLANNEL_NETWORK', '10.1.0.0/16');
const backend = setting(lab, 'FLANNEL_BACKEND', 'udp') as BackendType;
const device = backend === 'vxlan' ? 'flannel.1' : 'flannel0';
const prefix = DEFAULT_ETCD_PREFIX;
const containerName = `lab-flannel-ping-${lab.descriptor.runId}`.slice(0, 60);

interface Lease {
  subnet: Cidr;
  publicIp: string;
  /** vxlan: the VTEP MAC peers send to. */
  vtepMac?: string;
}
const show = (cidr: Cidr) => `${formatIp(cidr.network)}/${cidr.prefix}`;
/** Inside the subnet, its network address included (the lease's own address on the vxlan device). */
const within = (address: string, cidr: Cidr) => {
  const ip = parseIp(address);
  return ip !== undefined && (ip === cidr.network || isHostIn(ip, cidr));
};
const leases = new Map<string, Lease>();
const containerIps = new Map<string, string>();

async function readLeases(): Promise<Lease[]> {
  const master = await masterOf(lab);
  const answer = await getJson(master, `${ETCD}/v2/keys${prefix}/subnets?recursive=true`);
  return ((answer?.node?.nodes ?? []) as Json[]).flatMap((node) => {
    const key = parseSubnetKey(String(node.key));
    if (!key) return [];
    const attrs = JSON.parse(String(node.value)) as { PublicIP?: string; BackendData?: { VtepMAC?: string } };
    return [{ subnet: { network: key.subnet, prefix: key.len }, publicIp: attrs.PublicIP ?? '', vtepMac: attrs.BackendData?.VtepMAC }];
  });
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
      const held = all.map((l) => `${show(l.subnet)} -> ${l.publicIp}`).join(', ') || 'none';
      expect(lease, `${spec.name} (${spec.address}) holds no lease under ${prefix}/subnets (leases: ${held})`).toBeDefined();
      if (!lease) return;
      leases.set(spec.name, lease);
      const range = parseCidr(network);
      expect(range && within(formatIp(lease.subnet.network), range), `lease ${show(lease.subnet)} is outside ${network}`).toBe(true);

      const env = await step(`read /run/flannel/subnet.env on ${spec.name}`, () => node.succeed('cat /run/flannel/subnet.env'));
      await attach(`${spec.name} subnet.env`, env);
      const values = Object.fromEntries(
        env
          .trim()
          .split('\n')
          .map((line) => line.split('=', 2) as [string, string]),
      );
      const expected = `${formatIp(lease.subnet.network + 1)}/${lease.subnet.prefix}`;
      expect(
        values.FLANNEL_SUBNET,
        `${spec.name}'s subnet.env says FLANNEL_SUBNET=${values.FLANNEL_SUBNET}, its lease is ${show(lease.subnet)}`,
      ).toBe(expected);
      expect(values.FLANNEL_NETWORK, `${spec.name}'s subnet.env network`).toBe(network);
      // The backend's MTU: the external interface's (the cluster link, NET_INTERFACE) less the encapsulation.
      const external = setting(lab, 'NET_INTERFACE', 'eth0');
      const externalMtu = Number((await node.succeed(`cat /sys/class/net/${external}/mtu`)).trim());
      const wanted = String(backendMtu(backend, externalMtu));
      expect(
        values.FLANNEL_MTU,
        `${spec.name}'s subnet.env MTU is ${values.FLANNEL_MTU}, the ${backend} backend's on ${external} (MTU ${externalMtu}) is ${wanted}`,
      ).toBe(wanted);

      const docker0 = await step(`read docker0's address on ${spec.name}`, () =>
        node.succeed("ip -4 -o addr show docker0 | awk '{print $4}'"),
      );
      expect(docker0.trim(), `docker0 on ${spec.name} is ${docker0.trim() || 'without an address'}, not ${expected} in its lease`).toBe(
        expected,
      );

      const mtu = await step(`read ${device}'s MTU on ${spec.name}`, async () =>
        (await node.exec(`cat /sys/class/net/${device}/mtu`)).stdout.trim(),
      );
      expect(mtu, `${device} on ${spec.name} has MTU ${mtu || '(no such device)'}, the ${backend} backend's is ${wanted}`).toBe(wanted);

      if (backend === 'vxlan') {
        // Peers address the VTEP by the MAC in the lease: it must be the device's own.
        const mac = (await node.succeed(`cat /sys/class/net/${device}/address`)).trim();
        expect(lease.vtepMac, `${spec.name}'s lease names VTEP ${lease.vtepMac}, but ${device} has MAC ${mac}`).toBe(mac);
      }

      // The backend's UDP port: vxlan's kernel port, or the udp tunnel's encapsulation port.
      const port = BACKEND_PORT[backend];
      const link = await step(
        `read ${device}'s tunnel settings on ${spec.name}`,
        async () => (await node.exec(`ip -d link show ${device}`)).stdout,
      );
      expect(link, `${device} on ${spec.name} does not carry its packets on UDP ${port}:\n${link.trim()}`).toMatch(
        backend === 'vxlan' ? new RegExp(`dstport ${port}\\b`) : new RegExp(`encap fou .*encap-dport ${port}\\b`),
      );
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
      if (lease)
        expect(within(ip, lease.subnet), `the container on ${spec.name} got ${ip}, outside its lease ${show(lease.subnet)}`).toBe(true);
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
