import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundlePrograms } from '../../payloads/bundle/bundle.js';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { Json } from '../../payloads/hyperkube/client.js';
import { cleanupIptables, ensureJumpRules, IptablesProxier, runCommand, type Runner } from '../../payloads/hyperkube/proxy.js';
import {
  chainHash,
  cleanupRules,
  endpointChain,
  jumpRules,
  proxyRules,
  savedChains,
  serviceChain,
  servicePorts,
} from '../../payloads/hyperkube/proxy-rules.js';

const service = (namespace: string, name: string, clusterIP: string, ports: Json[]): Json => ({
  metadata: { namespace, name },
  spec: { clusterIP, ports },
});
const endpointsOf = (namespace: string, name: string, ips: string[], ports: Json[]): Json => ({
  metadata: { namespace, name },
  subsets: [{ addresses: ips.map((ip) => ({ ip })), ports }],
});

/** The cluster the tests program: DNS (UDP and TCP, named ports), a web service, and a selector-less one nobody backs. */
const DNS = service('kube-system', 'kube-dns', '10.0.0.10', [
  { name: 'dns', port: 53, protocol: 'UDP' },
  { name: 'dns-tcp', port: 53, protocol: 'TCP' },
]);
const WEB = service('default', 'web', '10.0.0.20', [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }]);
const UNBACKED = service('default', 'external', '10.0.0.30', [{ port: 80, protocol: 'TCP' }]);
const DNS_ENDPOINTS = endpointsOf(
  'kube-system',
  'kube-dns',
  ['10.1.5.2'],
  [
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    { name: 'dns', port: 53, protocol: 'UDP' },
  ],
);
const WEB_ENDPOINTS = endpointsOf('default', 'web', ['10.1.5.2', '10.1.5.3'], [{ name: 'http', port: 8080, protocol: 'TCP' }]);
const SERVICES = [DNS, WEB, UNBACKED];
/** The web service's one port, as chain names take it, and its chains: the service's, then one per endpoint. */
const WEB_HTTP = { name: 'default/web:http', protocol: 'tcp' } as const;
const WEB_CHAINS = [serviceChain(WEB_HTTP), ...['10.1.5.2:8080', '10.1.5.3:8080'].map((endpoint) => endpointChain(WEB_HTTP, endpoint))];
const ENDPOINTS = [DNS_ENDPOINTS, WEB_ENDPOINTS];

const lines = (text: string, prefix: string) => text.split('\n').filter((line) => line.startsWith(prefix));
/** The rules of one table of a restore input or iptables-save output. */
const tableRules = (text: string, table: string) => {
  const start = text.indexOf(`*${table}\n`);
  return start < 0 ? [] : lines(text.slice(start, text.indexOf('COMMIT', start)), '-A ');
};

describe('proxy rules', () => {
  test("chain names are kube-proxy's: KUBE-SVC-/KUBE-SEP- + 16 base32 characters of sha256, stable", () => {
    // Names every 1.2/1.3 cluster shows for these service ports.
    expect(serviceChain({ name: 'default/kubernetes:https', protocol: 'tcp' })).toBe('KUBE-SVC-NPX46M4PTMTKRN6Y');
    expect(serviceChain({ name: 'kube-system/kube-dns:dns', protocol: 'udp' })).toBe('KUBE-SVC-TCOU7JCQXEZGVUNU');
    expect(serviceChain({ name: 'kube-system/kube-dns:dns-tcp', protocol: 'tcp' })).toBe('KUBE-SVC-ERIFXISQEP7F7OF4');
    const dns = { name: 'kube-system/kube-dns:dns', protocol: 'udp' } as const;
    const sep = endpointChain(dns, '10.1.5.2:53');
    expect(sep).toMatch(/^KUBE-SEP-[A-Z2-7]{16}$/);
    expect(sep).toBe(`KUBE-SEP-${chainHash('kube-system/kube-dns:dnsudp10.1.5.2:53')}`);
    expect(endpointChain(dns, '10.1.5.3:53')).not.toBe(sep);
    expect(proxyRules(SERVICES, ENDPOINTS)).toBe(proxyRules([...SERVICES].reverse(), [...ENDPOINTS].reverse()));
  });

  test('endpoints are matched to service ports by port name; headless and unnamed ports handled', () => {
    const headless = service('default', 'headless', 'None', [{ port: 80 }]);
    const unallocated = service('default', 'pending', '', [{ port: 80 }]);
    const ports = servicePorts(
      [...SERVICES, headless, unallocated],
      [...ENDPOINTS, endpointsOf('default', 'headless', ['10.1.5.9'], [{ port: 80 }])],
    );
    expect(ports.map((p) => [p.name, `${p.clusterIp}:${p.port}/${p.protocol}`, p.endpoints.join(' ')])).toEqual([
      ['default/external:', '10.0.0.30:80/tcp', ''],
      ['default/web:http', '10.0.0.20:80/tcp', '10.1.5.2:8080 10.1.5.3:8080'],
      ['kube-system/kube-dns:dns', '10.0.0.10:53/udp', '10.1.5.2:53'],
      ['kube-system/kube-dns:dns-tcp', '10.0.0.10:53/tcp', '10.1.5.2:53'],
    ]);
    // An unnamed single port matches the endpoints' unnamed port.
    const single = servicePorts(
      [service('default', 'one', '10.0.0.40', [{ port: 80 }])],
      [endpointsOf('default', 'one', ['10.1.5.4'], [{ port: 8000 }])],
    );
    expect(single[0]?.endpoints).toEqual(['10.1.5.4:8000']);
  });

  test('the cluster IP jumps to the service chain, which balances over its endpoints and DNATs', () => {
    const text = proxyRules(SERVICES, ENDPOINTS);
    const [web, sep2, sep3] = WEB_CHAINS as [string, string, string];
    expect(text).toContain(
      `-A KUBE-SERVICES -d 10.0.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j ${web}\n`,
    );
    expect(lines(text, `-A ${web} `)).toEqual([
      `-A ${web} -m comment --comment "default/web:http" -m statistic --mode random --probability 0.50000 -j ${sep2}`,
      `-A ${web} -m comment --comment "default/web:http" -j ${sep3}`,
    ]);
    expect(lines(text, `-A ${sep2} `)).toEqual([
      `-A ${sep2} -s 10.1.5.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ`,
      `-A ${sep2} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.1.5.2:8080`,
    ]);
    expect(text).toContain(
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE\n',
    );
    expect(text).toContain('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n');
    // Every chain used is declared, so iptables-restore --noflush flushes and rewrites it.
    for (const chain of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', web, sep2, sep3])
      expect(text).toContain(`\n:${chain} - [0:0]\n`);
    // The node-ports hook stays the last rule of KUBE-SERVICES.
    expect(
      tableRules(text, 'nat')
        .filter((l) => l.startsWith('-A KUBE-SERVICES '))
        .at(-1),
    ).toContain('-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  });

  test('probabilities for 1, 2 and 3 endpoints: 1/(n-i), the last rule unconditional', () => {
    const probabilities = (count: number) => {
      const ips = Array.from({ length: count }, (_, i) => `10.1.5.${i + 2}`);
      const text = proxyRules([WEB], [endpointsOf('default', 'web', ips, [{ name: 'http', port: 8080 }])]);
      return lines(text, `-A ${serviceChain(WEB_HTTP)} `).map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'always');
    };
    expect(probabilities(1)).toEqual(['always']);
    expect(probabilities(2)).toEqual(['0.50000', 'always']);
    expect(probabilities(3)).toEqual(['0.33333', '0.50000', 'always']);
  });

  test('a service without endpoints is REJECTed in the filter table; its portal leads to an empty chain', () => {
    const text = proxyRules(SERVICES, ENDPOINTS);
    expect(tableRules(text, 'filter')).toEqual([
      '-A KUBE-SERVICES -d 10.0.0.30/32 -p tcp -m comment --comment "default/external: has no endpoints" -m tcp --dport 80 -j REJECT',
    ]);
    const external = serviceChain({ name: 'default/external:', protocol: 'tcp' });
    expect(text).toContain(`:${external} - [0:0]`);
    expect(lines(text, `-A ${external} `)).toEqual([]);
    // Headless services get nothing at all.
    expect(proxyRules([service('default', 'headless', 'None', [{ port: 80 }])], [])).not.toContain('headless');
  });

  test('--masquerade-all and --cluster-cidr mark traffic to cluster IPs for SNAT; node ports are captured too', () => {
    const portal = '-d 10.0.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ';
    expect(proxyRules(SERVICES, ENDPOINTS)).not.toContain(portal);
    expect(proxyRules(SERVICES, ENDPOINTS, { masqueradeAll: true })).toContain(`-A KUBE-SERVICES ${portal}\n`);
    expect(proxyRules(SERVICES, ENDPOINTS, { clusterCidr: '10.1.0.0/16' })).toContain(`-A KUBE-SERVICES ! -s 10.1.0.0/16 ${portal}\n`);
    const nodePort = service('default', 'np', '10.0.0.50', [{ port: 80, nodePort: 30080 }]);
    const chain = serviceChain({ name: 'default/np:', protocol: 'tcp' });
    expect(lines(proxyRules([nodePort], []), '-A KUBE-NODEPORTS ')).toEqual([
      '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/np:" -m tcp --dport 30080 -j KUBE-MARK-MASQ',
      `-A KUBE-NODEPORTS -p tcp -m comment --comment "default/np:" -m tcp --dport 30080 -j ${chain}`,
    ]);
  });

  test('KUBE-SVC-/KUBE-SEP- chains no longer wanted are flushed and deleted; other chains are left alone', () => {
    const web = serviceChain(WEB_HTTP);
    const existingChains = [
      'PREROUTING',
      'DOCKER',
      'KUBE-SERVICES',
      'KUBE-MARK-DROP',
      web,
      'KUBE-SVC-GONEGONEGONEGONE',
      'KUBE-SEP-GONEGONEGONEGONE',
    ];
    const text = proxyRules(SERVICES, ENDPOINTS, { existingChains });
    expect(lines(text, '-X ')).toEqual(['-X KUBE-SVC-GONEGONEGONEGONE', '-X KUBE-SEP-GONEGONEGONEGONE']);
    expect(text).toContain(':KUBE-SVC-GONEGONEGONEGONE - [0:0]\n');
    expect(text).not.toMatch(/DOCKER|KUBE-MARK-DROP/);
  });

  test('jump rules, saved chains and the cleanup input', () => {
    expect(jumpRules().map((r) => `${r.table} ${r.chain} ${r.args.join(' ')}`)).toEqual([
      'filter OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'nat OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'nat PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'nat POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING',
    ]);
    const save =
      '# Generated\n*filter\n:INPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [3:180]\n:DOCKER - [0:0]\n:KUBE-SEP-X - [0:0]\nCOMMIT\n';
    expect(savedChains(save, 'nat')).toEqual(['PREROUTING', 'DOCKER', 'KUBE-SEP-X']);
    expect(savedChains(save, 'filter')).toEqual(['INPUT', 'KUBE-SERVICES']);
    expect(
      cleanupRules({
        filter: savedChains(save, 'filter'),
        nat: ['POSTROUTING', 'DOCKER', 'KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-SEP-X'],
      }),
    ).toBe(
      '*filter\n:KUBE-SERVICES - [0:0]\n-X KUBE-SERVICES\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-SEP-X - [0:0]\n-X KUBE-SERVICES\n-X KUBE-MARK-MASQ\n-X KUBE-SEP-X\nCOMMIT\n',
    );
    expect(cleanupRules({ filter: ['INPUT'], nat: ['DOCKER'] })).toBe('');
  });
});

describe('the iptables Proxier', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** A node that records the commands run; -C finds nothing, iptables-save shows `chains`. */
  const fakeNode = (chains: string[] = []) => {
    const commands: string[] = [];
    const run: Runner = async (command, args, input) => {
      commands.push([command, ...args].join(' ') + (input ? `\n${input}` : ''));
      if (args.includes('-C')) throw new Error('iptables: Bad rule (does a matching rule exist in that chain?).');
      return command === 'iptables-save' ? `*nat\n${chains.map((c) => `:${c} - [0:0]`).join('\n')}\nCOMMIT\n` : '';
    };
    return { commands, run };
  };

  test('applies the rules when they change or the sync period is up, and logs services added and removed', async () => {
    const log = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const node = fakeNode(['KUBE-SVC-GONEGONEGONEGONE']);
    const proxier = new IptablesProxier(node.run, { syncPeriodMs: 60_000 });
    expect(await proxier.sync(SERVICES, ENDPOINTS)).toBe(true);
    expect(node.commands.filter((c) => c.includes(' -I '))).toEqual([
      'iptables -w -t filter -I OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING',
    ]);
    const restores = () => node.commands.filter((c) => c.startsWith('iptables-restore -w --noflush\n'));
    expect(restores()).toEqual([
      `iptables-restore -w --noflush\n${proxyRules(SERVICES, ENDPOINTS, { existingChains: ['KUBE-SVC-GONEGONEGONEGONE'] })}`,
    ]);
    expect(await proxier.sync(SERVICES, ENDPOINTS)).toBe(false);
    expect(await proxier.sync([DNS, UNBACKED], ENDPOINTS)).toBe(true);
    expect(restores()).toHaveLength(2);
    const logged = log.mock.calls.map(([text]) => String(text));
    expect(logged.some((l) => l.includes('Adding new service "default/web:http" at 10.0.0.20:80/TCP'))).toBe(true);
    expect(logged.some((l) => l.includes('Setting endpoints for "default/web:http" to [10.1.5.2:8080 10.1.5.3:8080]'))).toBe(true);
    expect(logged.some((l) => l.includes('Removing service "default/web:http"'))).toBe(true);

    const resyncing = new IptablesProxier(node.run, { syncPeriodMs: 0 });
    expect(await resyncing.sync(SERVICES, ENDPOINTS)).toBe(true);
    expect(await resyncing.sync(SERVICES, ENDPOINTS)).toBe(true);
  });
});

/**
 * The rules in a kernel, with the host's iptables-restore (Debian 12's, nft backend, as in the
 * guests): three network namespaces of the test's own. `node` runs the proxier and forwards;
 * `pods` holds the endpoints 10.1.5.2 and .3 behind a veth (10.1.5.1 on the node side); `client`
 * (10.1.6.2) sends to the cluster IPs through the node, as a pod on docker0 would.
 */
describe.skipIf(process.getuid?.() !== 0)('in network namespaces of its own', () => {
  const id = Math.random().toString(36).slice(2, 8);
  const ns = { node: `lab-test-${id}-node`, pods: `lab-test-${id}-pods`, client: `lab-test-${id}-client` };
  const dir = mkdtempSync(join(tmpdir(), 'proxy-rules-'));
  const children: ChildProcess[] = [];
  const logs = new Map<string, string>();
  const sh = (...args: string[]) => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const inNs = (name: string, ...args: string[]) => sh('ip', 'netns', 'exec', name, ...args);
  const nodeRunner: Runner = (command, args, input) => runCommand('ip', ['netns', 'exec', ns.node, command, ...args], input);
  const start = (name: string, where: string, args: string[]) => {
    const child = spawn('ip', ['netns', 'exec', where, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    logs.set(name, '');
    const append = (d: Buffer) => logs.set(name, (logs.get(name) ?? '') + d.toString());
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    children.push(child);
    return child;
  };
  const waitFor = async (what: string, ok: () => boolean, ms = 20_000) => {
    for (const deadline = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 200)))
      if (Date.now() > deadline)
        throw new Error(`${what} did not happen within ${ms} ms\n${[...logs].map(([n, t]) => `--- ${n}\n${t.slice(-3000)}`).join('\n')}`);
  };
  const attempt = (fn: () => string): string | undefined => {
    try {
      return fn();
    } catch {
      return undefined;
    }
  };
  const curl = (from: string, url: string) => attempt(() => inNs(from, 'curl', '-fsS', '--max-time', '2', url));
  const nat = () => inNs(ns.node, 'iptables-save', '-t', 'nat');
  const kubeRules = (save: string) =>
    lines(save, '-A KUBE-')
      .map((l) => l.replace(/--probability (\S+)/, (_, p: string) => `--probability ${Number(p).toFixed(5)}`))
      .sort();

  beforeAll(() => {
    for (const name of Object.values(ns)) sh('ip', 'netns', 'add', name);
    const links = [
      { node: '10.1.5.1/24', peer: ns.pods, addresses: ['10.1.5.2/24', '10.1.5.3/24'], via: '10.1.5.1' },
      { node: '10.1.6.1/24', peer: ns.client, addresses: ['10.1.6.2/24'], via: '10.1.6.1' },
    ];
    links.forEach((link, i) => {
      const [nodeSide, peerSide] = [`lt${id}n${i}`, `lt${id}p${i}`];
      sh('ip', 'link', 'add', nodeSide, 'netns', ns.node, 'type', 'veth', 'peer', 'name', peerSide, 'netns', link.peer);
      sh('ip', '-n', ns.node, 'addr', 'add', link.node, 'dev', nodeSide);
      sh('ip', '-n', ns.node, 'link', 'set', nodeSide, 'up');
      for (const address of link.addresses) sh('ip', '-n', link.peer, 'addr', 'add', address, 'dev', peerSide);
      sh('ip', '-n', link.peer, 'link', 'set', peerSide, 'up');
      sh('ip', '-n', link.peer, 'link', 'set', 'lo', 'up');
      sh('ip', '-n', link.peer, 'route', 'add', 'default', 'via', link.via);
    });
    sh('ip', '-n', ns.node, 'link', 'set', 'lo', 'up');
    // Cluster IPs are routed nowhere in particular, as on a node: only the DNAT gives them a destination.
    sh('ip', '-n', ns.node, 'route', 'add', 'default', 'via', '10.1.5.2');
    inNs(ns.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    // Each endpoint answers with its address: HTTP on 8080, UDP on 53.
    const server = `const [http, dgram] = [require('http'), require('dgram')];
      for (const ip of ['10.1.5.2', '10.1.5.3']) http.createServer((q, r) => r.end('web ' + ip)).listen(8080, ip);
      const dns = dgram.createSocket('udp4');
      dns.on('message', (m, from) => dns.send('dns 10.1.5.2', from.port, from.address));
      dns.bind(53, '10.1.5.2');`;
    start('endpoints', ns.pods, ['node', '-e', server]);
  });

  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    for (const name of Object.values(ns)) attempt(() => sh('ip', 'netns', 'del', name));
    rmSync(dir, { recursive: true, force: true });
  });

  test('the Proxier programs the nat table; clients reach the endpoints through cluster IPs; stale chains go', async () => {
    await waitFor('the endpoints answering', () => curl(ns.node, 'http://10.1.5.3:8080/') === 'web 10.1.5.3');
    const proxier = new IptablesProxier(nodeRunner, { syncPeriodMs: 30_000 });
    expect(await proxier.sync(SERVICES, ENDPOINTS)).toBe(true);
    const first = nat();
    // What iptables-save shows is what was generated (it prints 11 decimals and REJECT's default).
    expect(kubeRules(first)).toEqual(kubeRules(tableRules(proxyRules(SERVICES, ENDPOINTS), 'nat').join('\n')));
    expect(first).toContain('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
    expect(first).toContain('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING');
    expect(inNs(ns.node, 'iptables-save', '-t', 'filter')).toContain(
      '-A KUBE-SERVICES -d 10.0.0.30/32 -p tcp -m comment --comment "default/external: has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
    );
    // Jump rules are ensured, not added again.
    await ensureJumpRules(nodeRunner);
    expect(lines(nat(), '-A PREROUTING ')).toHaveLength(1);

    // From the client namespace (PREROUTING, forwarded) both endpoints get picked; from the node itself (OUTPUT) too.
    const answers = new Set<string | undefined>();
    for (let i = 0; i < 20 && answers.size < 2; i++) answers.add(curl(ns.client, 'http://10.0.0.20/'));
    expect([...answers].sort()).toEqual(['web 10.1.5.2', 'web 10.1.5.3']);
    expect(curl(ns.node, 'http://10.0.0.20/')).toMatch(/^web 10\.1\.5\.[23]$/);
    const udpQuery = `const s = require('dgram').createSocket('udp4');
      s.on('message', (m) => { process.stdout.write(m); process.exit(0); });
      s.send('query', 53, '10.0.0.10'); setTimeout(() => process.exit(1), 2000);`;
    expect(inNs(ns.client, 'node', '-e', udpQuery)).toBe('dns 10.1.5.2');
    // No endpoints: refused at once by the filter table's REJECT rather than left to time out.
    const refused = Date.now();
    expect(curl(ns.node, 'http://10.0.0.30/')).toBeUndefined();
    expect(Date.now() - refused).toBeLessThan(1500);

    for (const chain of WEB_CHAINS) expect(first).toContain(`:${chain} - [0:0]`);
    expect(await proxier.sync([DNS, UNBACKED], ENDPOINTS)).toBe(true);
    const second = nat();
    for (const chain of WEB_CHAINS) expect(second).not.toContain(chain);
    expect(second).not.toContain('10.0.0.20');
    expect(kubeRules(second)).toEqual(kubeRules(tableRules(proxyRules([DNS, UNBACKED], ENDPOINTS), 'nat').join('\n')));
    expect(inNs(ns.client, 'node', '-e', udpQuery)).toBe('dns 10.1.5.2');

    expect(await cleanupIptables(nodeRunner)).toEqual([]);
    expect(nat()).not.toContain('KUBE-');
    expect(inNs(ns.node, 'iptables-save', '-t', 'filter')).not.toContain('KUBE-');
  });

  test('/hyperkube proxy follows the master, leaves its rules when stopped, and --cleanup-iptables removes them', async () => {
    // The proxy as the hyperkube image runs it: `/hyperkube proxy`, compiled as the bundle compiles it.
    const hyperkube = join(dir, 'hyperkube.mjs');
    writeFileSync(hyperkube, (await bundlePrograms()).find((p) => p.name === 'hyperkube')?.text ?? '');
    const main = [hyperkube, 'proxy'];
    const publish = (services: Json[], endpoints: Json[]) => {
      writeFileSync(join(dir, 'services.json'), JSON.stringify({ kind: 'ServiceList', items: services }));
      writeFileSync(join(dir, 'endpoints.json'), JSON.stringify({ kind: 'EndpointsList', items: endpoints }));
    };
    publish(SERVICES, ENDPOINTS);
    // The master, as far as the proxy asks it: the two lists, from files the test rewrites.
    const master = `require('http').createServer((q, r) => {
        const file = { '/api/v1/services': 'services.json', '/api/v1/endpoints': 'endpoints.json' }[q.url];
        if (!file) { r.statusCode = 404; return r.end('{}'); }
        r.end(require('fs').readFileSync(${JSON.stringify(dir)} + '/' + file));
      }).listen(8080, '127.0.0.1');`;
    start('master', ns.node, ['node', '-e', master]);
    await waitFor('the master answering', () => curl(ns.node, 'http://127.0.0.1:8080/api/v1/services') !== undefined);

    const exitOf = (child: ChildProcess) => new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const noMaster = start('proxy without --master', ns.node, ['node', ...main]);
    expect(await exitOf(noMaster)).toBe(255);
    expect(logs.get('proxy without --master')).toContain('Neither --kubeconfig nor --master was specified');

    const proxy = start('proxy', ns.node, ['node', ...main, '--master=http://127.0.0.1:8080', '--v=2']);
    await waitFor('the web service programmed', () => nat().includes(`-A KUBE-SERVICES -d 10.0.0.20/32`));
    expect(logs.get('proxy')).toContain('Using iptables Proxier.');
    expect(logs.get('proxy')).toContain('Adding new service "default/web:http" at 10.0.0.20:80/TCP');
    publish([DNS, UNBACKED], ENDPOINTS);
    await waitFor('the web service removed', () => !nat().includes(WEB_CHAINS[0] as string));
    expect(logs.get('proxy')).toContain('Removing service "default/web:http"');

    proxy.kill('SIGTERM');
    await exitOf(proxy);
    expect(nat()).toContain('kube-system/kube-dns:dns cluster IP');

    const cleanup = start('proxy --cleanup-iptables', ns.node, ['node', ...main, '--cleanup-iptables']);
    expect(await exitOf(cleanup)).toBe(0);
    expect(nat()).not.toContain('KUBE-');
  });
});
