import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { formatIp } from '../../lab/net/addressing.js';
import { fatal, glog, parseFlagsOrExit } from '../flags.js';
import { EtcdV2Client } from '../etcd.js';
import {
  allocateSubnet,
  backendMtu,
  DEFAULT_ETCD_PREFIX,
  leaseAttrs,
  parseNetworkConfig,
  parseSubnetKey,
  subnetEnv,
  subnetKey,
  vtepMacFor,
  type NetworkConfig,
} from './lease.js';

/**
 * The flannel stand-in (flanneld 0.5.5's flags and formats). It leases a subnet in etcd, writes
 * subnet.env, and carries packets between hosts with the kernel doing the data path:
 *   udp   - an IP-in-UDP tunnel on port 8285 (ipip with fou encapsulation): on the wire the same
 *           as flannel's udp backend, a bare IP packet in a UDP datagram; device flannel0, MTU - 28.
 *   vxlan - a vxlan device flannel.<VNI> on UDP 8472 with static neighbour and FDB entries per
 *           peer lease, as flannel's vxlan backend programs them; MTU - 50.
 */

const exec = promisify(execFile);
const LEASE_TTL = 24 * 3600;
const RENEW_MARGIN = 3600;
const WHERE = 'flanneld';
const VERSION_FILE = '/opt/lab/flannel-version';

const { flags } = parseFlagsOrExit('/opt/bin/flanneld', process.argv.slice(2), {
  'etcd-endpoints': 'http://127.0.0.1:4001,http://127.0.0.1:2379',
  'etcd-prefix': DEFAULT_ETCD_PREFIX,
  'etcd-keyfile': '',
  'etcd-certfile': '',
  'etcd-cafile': '',
  iface: '',
  'public-ip': '',
  'subnet-file': '/run/flannel/subnet.env',
  'subnet-dir': '/run/flannel/networks',
  'ip-masq': false,
  listen: '',
  remote: '',
  networks: '',
  v: '0',
  logtostderr: true,
  alsologtostderr: false,
  log_dir: '',
  version: false,
});
if (flags.version) {
  // The release the image is tagged with (0.5.5, 0.6.1: the same flags, files and backends).
  process.stdout.write(existsSync(VERSION_FILE) ? readFileSync(VERSION_FILE, 'utf8') : '0.5.5\n');
  process.exit(0);
}

const ip = async (...args: string[]): Promise<string> => (await exec('ip', args)).stdout;
const tryIp = (...args: string[]): Promise<string | undefined> => ip(...args).catch(() => undefined);
const iptables = async (table: string, chain: string, rule: string[]): Promise<void> => {
  // -C first: rules survive restarts of flanneld and of Docker, and must not pile up.
  const present = await exec('iptables', ['-t', table, '-C', chain, ...rule]).then(
    () => true,
    () => false,
  );
  if (!present) await exec('iptables', ['-t', table, '-A', chain, ...rule]);
};

/** The interface and address to use: --iface by name or address, else the default route's. */
async function externalInterface(): Promise<{ name: string; address: string; mtu: number }> {
  const addresses = (await ip('-o', '-4', 'addr', 'show'))
    .split('\n')
    .map((line) => /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1] as string, address: m[2] as string }));
  let wanted = flags.iface;
  if (!wanted) {
    wanted = /dev (\S+)/.exec(await ip('-4', 'route', 'show', 'to', 'default'))?.[1] ?? '';
    if (!wanted) fatal(WHERE, 'Failed to find interface to use: no default route');
  }
  const found = addresses.find((a) => a.name === wanted || a.address === wanted);
  if (!found) fatal(WHERE, `Failed to find interface to use: ${wanted} has no IPv4 address or does not exist`);
  const mtu = Number(readFileSync(`/sys/class/net/${found.name}/mtu`, 'utf8').trim());
  return { ...found, address: flags['public-ip'] || found.address, mtu };
}

const etcd = new EtcdV2Client(flags['etcd-endpoints'].split(',').filter(Boolean));
const prefix = flags['etcd-prefix'].replace(/\/+$/, '');

async function readConfig(): Promise<NetworkConfig> {
  for (;;) {
    try {
      const node = await etcd.get(`${prefix}/config`);
      if (node) return parseNetworkConfig(node.value);
      glog('E', WHERE, `Failed to retrieve network config: 100: Key not found (${prefix})`);
    } catch (error) {
      glog('E', WHERE, `Failed to retrieve network config: ${(error as Error).message}`);
    }
    await sleep(1000);
  }
}

interface Peer {
  subnet: number;
  len: number;
  publicIp: string;
  vtepMac?: string;
}

async function leases(): Promise<{ key: string; peer: Peer; ttl?: number }[]> {
  return (await etcd.list(`${prefix}/subnets`)).flatMap((node) => {
    const parsed = parseSubnetKey(node.key);
    if (!parsed) return [];
    try {
      const attrs = JSON.parse(node.value) as { PublicIP?: string; BackendData?: { VtepMAC?: string } };
      if (!attrs.PublicIP) return [];
      return [{ key: node.key, ttl: node.ttl, peer: { ...parsed, publicIp: attrs.PublicIP, vtepMac: attrs.BackendData?.VtepMAC } }];
    } catch {
      return [];
    }
  });
}

/** Our lease: the one already held for this public IP (flannel reuses it after a restart), else a new free subnet. */
async function acquireLease(config: NetworkConfig, publicIp: string, attrs: string): Promise<number> {
  for (;;) {
    const current = await leases();
    const mine = current.find((l) => l.peer.publicIp === publicIp);
    if (mine) {
      await etcd.set(mine.key, attrs, { ttl: LEASE_TTL });
      glog('I', WHERE, `Found lease (${formatIp(mine.peer.subnet)}/${mine.peer.len}) for current IP (${publicIp}), reusing`);
      return mine.peer.subnet;
    }
    const subnet = allocateSubnet(
      config,
      current.map((l) => l.key),
    );
    const key = `${prefix}/subnets/${subnetKey(subnet, config.subnetLen)}`;
    if (await etcd.create(key, attrs, { ttl: LEASE_TTL })) {
      glog('I', WHERE, `Allocated lease (${formatIp(subnet)}/${config.subnetLen}) to current node (${publicIp})`);
      return subnet;
    }
  }
}

async function main(): Promise<void> {
  const external = await externalInterface();
  glog('I', WHERE, `Using ${external.address} as external interface (${external.name}, MTU ${external.mtu})`);
  const config = await readConfig();
  const { type, port, vni } = config.backend;
  const mtu = backendMtu(type, external.mtu);
  const network = `${formatIp(config.network.network)}/${config.network.prefix}`;
  const device = type === 'udp' ? 'flannel0' : `flannel.${vni}`;

  let vtepMac: string | undefined;
  if (type === 'udp') {
    if (!(await tryIp('fou', 'show'))?.includes(`port ${port} `)) await ip('fou', 'add', 'port', String(port), 'ipproto', '4');
    await tryIp('link', 'del', device);
    await ip(
      'link',
      'add',
      device,
      'type',
      'ipip',
      'local',
      external.address,
      'ttl',
      '64',
      'encap',
      'fou',
      'encap-sport',
      String(port),
      'encap-dport',
      String(port),
    );
    udpDevice = device;
  } else {
    await tryIp('link', 'del', device);
    // The VTEP's MAC is set, not left to the kernel: systemd-udev's MACAddressPolicy=persistent
    // replaces a random MAC of a new device shortly after it appears, and the lease would then
    // name a MAC nobody has (flannel later fixed the same race the same way).
    vtepMac = vtepMacFor(external.address);
    await ip(
      'link',
      'add',
      device,
      'address',
      vtepMac,
      'type',
      'vxlan',
      'id',
      String(vni),
      'local',
      external.address,
      'dev',
      external.name,
      'dstport',
      String(port),
      'nolearning',
    );
  }
  await ip('link', 'set', device, 'mtu', String(mtu));
  const attrs = leaseAttrs(external.address, type, vtepMac);
  const subnet = await acquireLease(config, external.address, attrs);
  // udp: the tunnel holds the lease's address with the whole network's prefix, as flannel0 did;
  // vxlan: the lease's network address alone, peers' subnets are routed through their VTEPs.
  await ip('addr', 'replace', `${formatIp(subnet)}/${type === 'udp' ? config.network.prefix : 32}`, 'dev', device);
  await ip('link', 'set', device, 'up');

  if (flags['ip-masq']) {
    await iptables('nat', 'POSTROUTING', ['-s', network, '-d', network, '-j', 'RETURN']);
    await iptables('nat', 'POSTROUTING', ['-s', network, '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE']);
    await iptables('nat', 'POSTROUTING', ['!', '-s', network, '-d', network, '-j', 'MASQUERADE']);
  }
  // Written once, after the lease, as 0.5.5's main.go did: a subnet.env changed or removed later
  // stays so (it is what the node's Docker was started from).
  const file = flags['subnet-file'];
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, subnetEnv({ network: config.network, subnet, subnetLen: config.subnetLen, mtu, ipMasq: flags['ip-masq'] }));
  renameSync(`${file}.tmp`, file);
  glog(
    'I',
    WHERE,
    `Wrote ${flags['subnet-file']}: subnet ${formatIp(subnet + 1)}/${config.subnetLen}, MTU ${mtu}, ${type} backend on UDP ${port}`,
  );

  const ownKey = `${prefix}/subnets/${subnetKey(subnet, config.subnetLen)}`;
  const routed = new Map<string, Peer>();
  // flannel watched <prefix>/subnets: a pass when a lease changes, and every 10 s at the latest.
  let index = await etcd.index(`${prefix}/subnets`).catch(() => 0);
  let forwardCheckedAt = 0;
  for (;;) {
    try {
      // Docker's FORWARD policy is DROP since 1.13; the network's own traffic must pass (later flannels add the same rules).
      // Checked every 30 s, not every pass: each iptables run is a dear process start under emulation.
      if (Date.now() - forwardCheckedAt >= 30_000) {
        forwardCheckedAt = Date.now();
        await iptables('filter', 'FORWARD', ['-s', network, '-j', 'ACCEPT']);
        await iptables('filter', 'FORWARD', ['-d', network, '-j', 'ACCEPT']);
      }
      const current = await leases();
      const own = current.find((l) => l.key === ownKey);
      if (!own || own.peer.publicIp !== external.address) {
        glog('W', WHERE, `Lease ${ownKey} expired or was taken; acquiring it again`);
        await etcd.set(ownKey, attrs, { ttl: LEASE_TTL });
      } else if (own.ttl !== undefined && own.ttl < RENEW_MARGIN) {
        await etcd.set(ownKey, attrs, { ttl: LEASE_TTL });
        glog('I', WHERE, `Lease renewed, new expiration in ${LEASE_TTL} s`);
      }
      const peers = current.filter((l) => l.key !== ownKey && l.peer.publicIp !== external.address);
      for (const { key, peer } of peers) {
        if (JSON.stringify(routed.get(key)) === JSON.stringify(peer)) continue;
        await program(device, type, peer, config.subnetLen);
        routed.set(key, peer);
        glog('I', WHERE, `Subnet added: ${formatIp(peer.subnet)}/${peer.len} via ${peer.publicIp}`);
      }
      for (const [key, peer] of routed) {
        if (peers.some((p) => p.key === key)) continue;
        await tryIp('route', 'del', `${formatIp(peer.subnet)}/${peer.len}`, 'dev', device);
        routed.delete(key);
        glog('I', WHERE, `Subnet removed: ${formatIp(peer.subnet)}/${peer.len}`);
      }
    } catch (error) {
      glog('E', WHERE, `Watch of ${prefix}/subnets failed: ${(error as Error).message}`);
    }
    index = await etcd.waitForChange(`${prefix}/subnets`, index, 10_000).catch(async () => {
      await sleep(2000);
      return index;
    });
  }
}

/** Makes a peer's subnet reachable: via its public IP through the tunnel, or via its VTEP. */
async function program(device: string, type: 'udp' | 'vxlan', peer: Peer, len: number): Promise<void> {
  const subnet = `${formatIp(peer.subnet)}/${len}`;
  if (type === 'udp') {
    await ip('route', 'replace', subnet, 'via', peer.publicIp, 'dev', device, 'onlink');
    return;
  }
  if (!peer.vtepMac) throw new Error(`lease ${subnet} has no VtepMAC`);
  const gateway = formatIp(peer.subnet);
  await ip('neigh', 'replace', gateway, 'lladdr', peer.vtepMac, 'dev', device, 'nud', 'permanent');
  await exec('bridge', ['fdb', 'replace', peer.vtepMac, 'dev', device, 'dst', peer.publicIp]);
  await ip('route', 'replace', subnet, 'via', gateway, 'dev', device, 'onlink');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// flannel's udp data path is its TUN device, which vanishes with the process: the tunnel goes with
// us. (vxlan's kernel device and routes outlive flanneld, as they did.)
let udpDevice: string | undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    const done = () => process.exit(0);
    if (udpDevice) void tryIp('link', 'del', udpDevice).then(done, done);
    else done();
  });
main().catch((error: Error) => fatal(WHERE, error.message));
