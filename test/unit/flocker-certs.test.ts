import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { describeFlockerCerts, makeFlockerCerts, readFlockerCerts, type FlockerCerts } from '../../lab/certs/flocker-ca.js';
import { run } from '../../lab/util/proc.js';

/**
 * The Flocker certificates as flocker-ca made them, checked with openssl itself: chains, names,
 * extensions, file modes, and the `lab certs` command. 2048-bit keys except where the size is the point.
 */
const root = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'lab-flocker-certs-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const openssl = async (...args: string[]) => (await run(['/usr/bin/openssl', ...args])).stdout;
const ext = (crt: string, name: string) => openssl('x509', '-in', crt, '-noout', '-ext', name);
/** The subject as a map (CN, OU). */
async function subject(crt: string): Promise<Record<string, string>> {
  const line = (await openssl('x509', '-in', crt, '-noout', '-subject', '-nameopt', 'RFC2253')).trim().replace(/^subject=/, '');
  return Object.fromEntries(line.split(',').map((part) => part.split('=') as [string, string]));
}
/** For the tests that make 4096-bit keys: seconds on 2 idle cores, half a minute next to two busy VMs. */
const SLOW = 180_000;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const mode = (path: string) => statSync(path).mode & 0o777;
const allCerts = (certs: FlockerCerts) => [certs.control.crt, certs.user.crt, ...certs.nodes.map((node) => node.crt)];
const allKeys = (certs: FlockerCerts) => [certs.ca.key, certs.control.key, certs.user.key, ...certs.nodes.map((node) => node.key)];

let a: FlockerCerts;
let b: FlockerCerts;
beforeAll(async () => {
  // Set A: the control host by address; set B: by name, another user and cluster name, no nodes.
  a = await makeFlockerCerts({ dir: join(scratch, 'a'), controlHost: '10.77.0.11', nodes: ['master', 'worker'], keyBits: 2048 });
  b = await makeFlockerCerts({
    dir: join(scratch, 'b', 'deeper'),
    controlHost: 'flocker-control.lab',
    nodes: [],
    user: 'alice',
    clusterName: 'other cluster',
    keyBits: 2048,
  });
});

describe('makeFlockerCerts', () => {
  test('writes the layout flocker-ca users end up with, and returns absolute paths', () => {
    const dir = join(scratch, 'a');
    expect(a).toEqual({
      dir,
      clusterUuid: expect.stringMatching(UUID4),
      ca: { crt: join(dir, 'cluster.crt'), key: join(dir, 'cluster.key') },
      control: { host: '10.77.0.11', crt: join(dir, 'control-service.crt'), key: join(dir, 'control-service.key') },
      user: { name: 'kubernetes', crt: join(dir, 'kubernetes.crt'), key: join(dir, 'kubernetes.key') },
      nodes: [
        { name: 'master', uuid: expect.stringMatching(UUID4), crt: join(dir, 'nodes/master.crt'), key: join(dir, 'nodes/master.key') },
        { name: 'worker', uuid: expect.stringMatching(UUID4), crt: join(dir, 'nodes/worker.crt'), key: join(dir, 'nodes/worker.key') },
      ],
    });
    expect(a.nodes[0]?.uuid).not.toBe(a.nodes[1]?.uuid);
    expect(b.user).toEqual({ name: 'alice', crt: join(b.dir, 'alice.crt'), key: join(b.dir, 'alice.key') });
    expect(existsSync(join(b.dir, 'nodes'))).toBe(false);
  });

  test('openssl verify accepts every certificate against its cluster.crt, for its purpose', async () => {
    for (const certs of [a, b]) {
      expect(await openssl('verify', '-CAfile', certs.ca.crt, ...allCerts(certs))).toBe(
        allCerts(certs)
          .map((crt) => `${crt}: OK\n`)
          .join(''),
      );
      await openssl('verify', '-CAfile', certs.ca.crt, '-purpose', 'sslserver', certs.control.crt);
      await openssl('verify', '-CAfile', certs.ca.crt, '-purpose', 'sslclient', certs.user.crt, ...certs.nodes.map((node) => node.crt));
    }
  });

  test('a certificate of one set does not verify against the CA of another', async () => {
    const result = await run(['/usr/bin/openssl', 'verify', '-CAfile', b.ca.crt, a.user.crt], { check: false });
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/unable to get local issuer certificate/);
  });

  test('subjects: CN as flocker-ca named it, OU the cluster UUID', async () => {
    expect(await subject(a.ca.crt)).toEqual({ CN: 'lab', OU: a.clusterUuid });
    expect(await subject(b.ca.crt)).toEqual({ CN: 'other cluster', OU: b.clusterUuid });
    expect(await subject(a.control.crt)).toEqual({ CN: 'control-service', OU: a.clusterUuid });
    expect(await subject(a.user.crt)).toEqual({ CN: 'user-kubernetes', OU: a.clusterUuid });
    expect(await subject(b.user.crt)).toEqual({ CN: 'user-alice', OU: b.clusterUuid });
    for (const node of a.nodes) expect(await subject(node.crt)).toEqual({ CN: `node-${node.uuid}`, OU: a.clusterUuid });
    expect(a.clusterUuid).not.toBe(b.clusterUuid);
  });

  test('the CA: critical CA:TRUE with pathlen 0, for signing certificates only', async () => {
    expect(await ext(a.ca.crt, 'basicConstraints')).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    expect(await ext(a.ca.crt, 'keyUsage')).toMatch(/Certificate Sign, CRL Sign/);
    expect(await ext(a.control.crt, 'basicConstraints')).toMatch(/CA:FALSE/);
  });

  test('the control certificate names control-service and its host: IP for an address, DNS for a name', async () => {
    expect(await ext(a.control.crt, 'subjectAltName')).toMatch(/\n\s+DNS:control-service, IP Address:10\.77\.0\.11\n/);
    expect(await ext(b.control.crt, 'subjectAltName')).toMatch(/\n\s+DNS:control-service, DNS:flocker-control\.lab\n/);
  });

  test('extended key usage: server for the control service, client for users, client (and server) for nodes', async () => {
    expect(await ext(a.control.crt, 'extendedKeyUsage')).toMatch(/\n\s+TLS Web Server Authentication\n$/);
    expect(await ext(a.user.crt, 'extendedKeyUsage')).toMatch(/\n\s+TLS Web Client Authentication\n$/);
    expect(await ext(a.nodes[0]!.crt, 'extendedKeyUsage')).toMatch(/\n\s+TLS Web Client Authentication, TLS Web Server Authentication\n$/);
  });

  test('sha256, 20 years, a distinct random serial each, and each key matches its certificate', async () => {
    const serials = new Set<string>();
    for (const [crt, key] of [[a.ca.crt, a.ca.key], ...allCerts(a).map((crt, i) => [crt, allKeys(a)[i + 1]!])] as [string, string][]) {
      const text = await openssl('x509', '-in', crt, '-noout', '-text');
      expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
      const [, from, to] = /Not Before: (.+)\n\s+Not After : (.+)\n/.exec(text) ?? [];
      expect((Date.parse(to!) - Date.parse(from!)) / 86_400_000).toBe(7300);
      serials.add(await openssl('x509', '-in', crt, '-noout', '-serial'));
      // The public modulus of the certificate and of the key file (nothing secret printed).
      const pub = await openssl('rsa', '-in', key, '-noout', '-modulus');
      expect(await openssl('x509', '-in', crt, '-noout', '-modulus')).toBe(pub);
      expect(createPrivateKey(readFileSync(key)).asymmetricKeyDetails?.modulusLength).toBe(2048);
    }
    expect(serials.size).toBe(5);
  });

  test('every key is 0600, the folders 0700, the certificates readable', () => {
    for (const certs of [a, b]) {
      for (const key of allKeys(certs)) expect(mode(key), key).toBe(0o600);
      for (const crt of [certs.ca.crt, ...allCerts(certs)]) expect(mode(crt) & 0o444, crt).toBe(0o444);
      expect(mode(certs.dir)).toBe(0o700);
    }
    expect(mode(join(a.dir, 'nodes'))).toBe(0o700);
  });

  test('the manifest holds names, UUIDs and paths, no key material; readFlockerCerts reads it back', () => {
    const manifest = readFileSync(join(a.dir, 'certs.json'), 'utf8');
    expect(manifest).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(JSON.parse(manifest)).toMatchObject({
      clusterUuid: a.clusterUuid,
      control: { host: '10.77.0.11' },
      user: { name: 'kubernetes' },
      nodes: a.nodes.map((node) => ({ name: node.name, uuid: node.uuid, crt: `nodes/${node.name}.crt`, key: `nodes/${node.name}.key` })),
    });
    expect(readFlockerCerts(a.dir)).toEqual(a);
    expect(readFlockerCerts(b.dir)).toEqual(b);
  });

  test('readFlockerCerts of a folder without a set says so', () => {
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    expect(() => readFlockerCerts(empty)).toThrow(`no Flocker certificates in ${empty}: certs.json is missing`);
  });

  test('a second call on the same folder throws and changes nothing', async () => {
    const before = readFileSync(a.ca.crt, 'utf8');
    await expect(makeFlockerCerts({ dir: a.dir, controlHost: 'x', nodes: ['other'], keyBits: 2048 })).rejects.toThrow(
      /already holds Flocker certificates \(certs\.json\); refusing to overwrite them/,
    );
    expect(readFileSync(a.ca.crt, 'utf8')).toBe(before);
    expect(existsSync(join(a.dir, 'nodes', 'other.key'))).toBe(false);
  });

  test('bad input throws an error naming the field, and writes nothing', async () => {
    const dir = join(scratch, 'bad');
    const good = { dir, controlHost: 'control', nodes: ['node1'], keyBits: 2048 };
    const cases: [Partial<Parameters<typeof makeFlockerCerts>[0]>, string][] = [
      [{ nodes: ['node1', 'node2', 'node1'] }, 'nodes[2] "node1": duplicate node name'],
      [{ nodes: ['node_1'] }, 'nodes[0] "node_1": a node name must be a hostname'],
      [{ nodes: ['-node'] }, 'nodes[0] "-node": a node name must be a hostname'],
      [{ controlHost: 'bad host' }, 'controlHost "bad host": must be a hostname or an IP address'],
      [{ controlHost: '300.1.1.1' }, 'controlHost "300.1.1.1": must be a hostname or an IP address'],
      [{ controlHost: '' }, 'controlHost "": must be a hostname or an IP address'],
      [{ user: '../x' }, 'user "../x": 1 to 64 letters'],
      [{ user: 'cluster' }, 'user "cluster": clashes with the cluster.crt file of the set'],
      [{ clusterName: 'a/b' }, 'clusterName "a/b": 1 to 64 letters'],
      [{ keyBits: 1024 }, 'keyBits 1024: must be an integer from 2048 to 16384'],
    ];
    for (const [options, message] of cases) {
      await expect(makeFlockerCerts({ ...good, ...options })).rejects.toThrow(message);
      expect(existsSync(dir)).toBe(false);
    }
  });

  test('an empty node list is allowed', () => {
    expect(b.nodes).toEqual([]);
  });

  test('an abort stops openssl and removes what the call wrote', async () => {
    const dir = join(scratch, 'aborted');
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(makeFlockerCerts({ dir, controlHost: 'control', nodes: ['n1', 'n2'], signal: controller.signal })).rejects.toThrow('stop');
    expect(existsSync(dir)).toBe(false);
  });

  test(
    'by default the keys are RSA 4096',
    async () => {
      const certs = await makeFlockerCerts({ dir: join(scratch, 'default'), controlHost: 'control', nodes: [] });
      for (const key of allKeys(certs)) expect(createPrivateKey(readFileSync(key)).asymmetricKeyDetails?.modulusLength).toBe(4096);
    },
    SLOW,
  );

  test('describeFlockerCerts names every file and node UUID, and where each goes, never key contents', () => {
    const text = describeFlockerCerts(a);
    for (const path of [a.ca.crt, ...allCerts(a), ...allKeys(a)]) expect(text).toContain(path);
    for (const node of a.nodes) {
      expect(text).toContain(node.uuid);
      expect(text).toContain(`node ${node.name}:`);
    }
    expect(text).toContain('nodes/master.key -> /etc/flocker/node.key');
    expect(text).toContain('control-service.key -> /etc/flocker/control-service.key');
    expect(text).toContain('cluster.crt, kubernetes.crt, kubernetes.key -> $FLOCKER_USER_CA_DIR');
    expect(text).not.toMatch(/PRIVATE KEY/);
  });
});

describe('lab certs', () => {
  // The CLI from its sources (dist/ is built only by `bin/lab setup`), bundled by esbuild as the
  // lab's payloads are; under node_modules so its packages (cac) resolve from there.
  let main: string;
  let outdir: string | undefined;
  afterAll(() => outdir && rmSync(outdir, { recursive: true, force: true }));
  beforeAll(async () => {
    mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true });
    outdir = mkdtempSync(join(root, 'node_modules', '.cache', 'lab-cli-test-'));
    await build({
      entryPoints: [join(root, 'lab', 'cli', 'main.ts')],
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outExtension: { '.js': '.mjs' },
      logLevel: 'error',
    });
    main = join(outdir, 'main.mjs');
  });

  function lab(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [main, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  test('without --control-host: exit 2, one ERROR line, nothing written', async () => {
    const dir = join(scratch, 'cli-bad');
    const result = await lab(['certs', dir, '--node', 'master']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe('ERROR: --control-host is required: the hostname or IP address of the Flocker control service\n');
    expect(result.stdout).toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  test('a bad node name and a missing value are bad input too', async () => {
    const dir = join(scratch, 'cli-bad');
    const badNode = await lab(['certs', dir, '--control-host', '10.77.0.11', '--node', 'Bad_Name']);
    expect(badNode.code).toBe(2);
    expect(badNode.stderr).toBe('ERROR: nodes[0] "Bad_Name": a node name must be a hostname\n');
    const noValue = await lab(['certs', dir, '--node', 'master', '--control-host']);
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toMatch(/^ERROR: option `--control-host <host>` value is missing\n$/);
    const badBits = await lab(['certs', dir, '--control-host', 'ctl', '--node', 'master', '--key-bits', '1024']);
    expect(badBits.code).toBe(2);
    expect(badBits.stderr).toBe('ERROR: keyBits 1024: must be an integer from 2048 to 16384\n');
    expect(existsSync(dir)).toBe(false);
  });

  test(
    'a good call writes the set and prints paths, UUIDs and places, no key material',
    async () => {
      const dir = join(scratch, 'cli-good');
      const args = ['--control-host', 'ctl.lab', '--node', 'master', '--cluster-name', 'mycluster', '--key-bits', '2048'];
      const result = await lab(['certs', dir, ...args]);
      expect(result.code, result.stderr).toBe(0);
      const certs = readFlockerCerts(dir);
      expect(certs.control.host).toBe('ctl.lab');
      expect(certs.nodes.map((node) => node.name)).toEqual(['master']);
      expect(await subject(certs.ca.crt)).toEqual({ CN: 'mycluster', OU: certs.clusterUuid });
      await openssl('verify', '-CAfile', certs.ca.crt, ...allCerts(certs));
      const output = result.stdout + result.stderr;
      expect(result.stdout).toContain(certs.nodes[0]!.uuid);
      expect(result.stdout).toContain('/etc/flocker/node.key');
      expect(output).not.toMatch(/PRIVATE KEY/);
      // Not a line of any key either.
      for (const key of allKeys(certs)) expect(output).not.toContain(readFileSync(key, 'utf8').split('\n')[5]);
      expect(createPrivateKey(readFileSync(certs.nodes[0]!.key)).asymmetricKeyDetails?.modulusLength).toBe(2048);
      const again = await lab(['certs', dir, '--control-host', 'ctl.lab', '--node', 'master']);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/already holds Flocker certificates/);
    },
    SLOW,
  );
});
