/**
 * The certificates `flocker-ca` made (flocker/ca/_ca.py), made with the openssl command instead:
 * a cluster CA (`cluster.crt`, OU = the cluster's UUID), the control service's certificate (CN
 * `control-service`, named `control-service` and its hostname or IP in subjectAltName), node
 * certificates (CN `node-<uuid>`) and API user certificates (CN `user-<name>`), all signed by it.
 * For the host side and the tests; not part of the guest programs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

export interface KeyPair {
  crt: string;
  key: string;
}

export interface ClusterCa extends KeyPair {
  clusterId: string;
}

const openssl = (args: string[]): void => {
  execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
};

/** `flocker-ca initialize`: cluster.crt and cluster.key in dir. */
export function createClusterCa(dir: string, options: { bits?: number; days?: number } = {}): ClusterCa {
  mkdirSync(dir, { recursive: true });
  const clusterId = randomUUID();
  const pair = { crt: join(dir, 'cluster.crt'), key: join(dir, 'cluster.key') };
  openssl([
    'req',
    '-x509',
    '-newkey',
    `rsa:${options.bits ?? 4096}`,
    '-nodes',
    '-sha256',
    '-keyout',
    pair.key,
    '-out',
    pair.crt,
    '-days',
    String(options.days ?? 7300),
    '-subj',
    `/OU=${clusterId}/CN=cluster-${clusterId}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { ...pair, clusterId };
}

/** A certificate for `cn` signed by the cluster CA, written as <name>.crt and <name>.key in dir. */
export function issueCertificate(
  dir: string,
  ca: ClusterCa,
  name: string,
  cn: string,
  options: { subjectAltNames?: string[]; server?: boolean; bits?: number; days?: number } = {},
): KeyPair {
  mkdirSync(dir, { recursive: true });
  const pair = { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  try {
    openssl([
      'req',
      '-new',
      '-newkey',
      `rsa:${options.bits ?? 4096}`,
      '-nodes',
      '-sha256',
      '-keyout',
      pair.key,
      '-out',
      csr,
      '-subj',
      `/OU=${ca.clusterId}/CN=${cn}`,
    ]);
    const lines = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${options.server ? 'serverAuth,clientAuth' : 'clientAuth'}`,
    ];
    if (options.subjectAltNames?.length) lines.push(`subjectAltName=${options.subjectAltNames.join(',')}`);
    writeFileSync(ext, `${lines.join('\n')}\n`);
    openssl([
      'x509',
      '-req',
      '-sha256',
      '-in',
      csr,
      '-CA',
      ca.crt,
      '-CAkey',
      ca.key,
      '-set_serial',
      `0x${randomBytes(12).toString('hex')}`,
      '-days',
      String(options.days ?? 7300),
      '-extfile',
      ext,
      '-out',
      pair.crt,
    ]);
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  return pair;
}

/** `flocker-ca create-control-certificate HOSTNAME`: written as control-service.crt/.key. */
export function createControlCertificate(dir: string, ca: ClusterCa, hostname: string, options: { bits?: number } = {}): KeyPair {
  const names = ['DNS:control-service', isIP(hostname) ? `IP:${hostname}` : `DNS:${hostname}`];
  return issueCertificate(dir, ca, 'control-service', 'control-service', { subjectAltNames: names, server: true, ...options });
}

/** `flocker-ca create-node-certificate`: a new node UUID, written as node-<uuid>.crt/.key. */
export function createNodeCertificate(
  dir: string,
  ca: ClusterCa,
  options: { uuid?: string; bits?: number } = {},
): KeyPair & { uuid: string } {
  const uuid = options.uuid ?? randomUUID();
  return { ...issueCertificate(dir, ca, `node-${uuid}`, `node-${uuid}`, options), uuid };
}

/** `flocker-ca create-api-certificate NAME`: written as user-<name>.crt/.key. */
export function createUserCertificate(dir: string, ca: ClusterCa, username: string, options: { bits?: number } = {}): KeyPair {
  return issueCertificate(dir, ca, `user-${username}`, `user-${username}`, options);
}
