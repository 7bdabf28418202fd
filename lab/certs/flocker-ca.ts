import { randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fchmodSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { mapLimit } from '../util/limit.js';
import { run } from '../util/proc.js';

/**
 * The Flocker cluster certificates as `flocker-ca` (Flocker 1.13/1.14, `flocker/ca`) made them,
 * with Debian's `openssl` CLI: a cluster CA (CN=<cluster name>, OU=<cluster UUID>, CA:TRUE,
 * pathlen 0), the control service's certificate, one per node (CN=node-<node UUID>) and one API
 * user's (CN=user-<name>). RSA 4096, sha256, 20 years, random serials, every one signed by the CA.
 * Key material only ever lives in files of mode 0600: never on a command line, never in output.
 */

export interface FlockerNodeCert {
  name: string;
  uuid: string;
  crt: string;
  key: string;
}

export interface FlockerCerts {
  dir: string;
  clusterUuid: string;
  ca: { crt: string; key: string };
  control: { host: string; crt: string; key: string };
  user: { name: string; crt: string; key: string };
  nodes: FlockerNodeCert[];
}

/** Where Flocker's docs put a node's certificates, and the kubelets' default FLOCKER_USER_CA_DIR. */
export const FLOCKER_DIR = '/etc/flocker';

/** FLOCKER_USER_CA_DIR as the multinode scripts default it, without its trailing slash. */
export const userCaDir = (env: Record<string, string | undefined>): string => (env.FLOCKER_USER_CA_DIR || `${FLOCKER_DIR}/`).replace(/\/+$/, '') || '/';

const OPENSSL = '/usr/bin/openssl';
const MANIFEST = 'certs.json';
const FORMAT = 'lab-flocker-certs/1';
/** flocker-ca's EXPIRY_20_YEARS. */
const DAYS = 365 * 20;
/** The machine has 2 cores; RSA key generation is CPU-bound. */
const PARALLEL_KEYS = 2;

/** What certs.json holds: names, UUIDs and paths relative to its folder (so the folder can move), never key material. */
interface Manifest {
  format: typeof FORMAT;
  clusterName: string;
  clusterUuid: string;
  keyBits: number;
  ca: { crt: string; key: string };
  control: { host: string; crt: string; key: string };
  user: { name: string; crt: string; key: string };
  nodes: { name: string; uuid: string; crt: string; key: string }[];
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** An RFC 1123 host name; an all-digit last label is refused so that "10.0.0" or "300.1.1.1" never pass as names. */
function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  return labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1] as string);
}

interface Checked {
  dir: string;
  clusterName: string;
  controlHost: string;
  nodes: string[];
  user: string;
  keyBits: number;
}

/** Every input problem is bad input (InputError, exit 2 in the CLI), found before anything is written. */
function checkOptions(options: Parameters<typeof makeFlockerCerts>[0]): Checked {
  const { controlHost, nodes } = options;
  const clusterName = options.clusterName ?? 'lab';
  const user = options.user ?? 'kubernetes';
  const keyBits = options.keyBits ?? 4096;
  if (typeof options.dir !== 'string' || options.dir === '') throw new InputError('dir: a folder for the certificates is required');
  // The CN of the CA; -subj would read "/", "=", "+" and "," as structure, so only plain names.
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(clusterName))
    throw new InputError(`clusterName "${clusterName}": 1 to 64 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit`);
  if (typeof controlHost !== 'string' || !(isIP(controlHost) || isHostname(controlHost)))
    throw new InputError(`controlHost "${String(controlHost)}": must be a hostname or an IP address`);
  // The user's name becomes <user>.crt next to cluster.crt and control-service.crt: a plain file name that clashes with neither.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(user))
    throw new InputError(`user "${user}": 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  if (['cluster', 'control-service'].includes(user)) throw new InputError(`user "${user}": clashes with the ${user}.crt file of the set`);
  if (!Number.isInteger(keyBits) || keyBits < 2048 || keyBits > 16384)
    throw new InputError(`keyBits ${keyBits}: must be an integer from 2048 to 16384`);
  if (!Array.isArray(nodes)) throw new InputError('nodes: a list of node names is required (it may be empty)');
  const seen = new Set<string>();
  nodes.forEach((name, index) => {
    if (typeof name !== 'string' || !isHostname(name))
      throw new InputError(`nodes[${index}] "${String(name)}": a node name must be a hostname`);
    // Host names are case-insensitive: "Node1" and "node1" are the same node.
    if (seen.has(name.toLowerCase())) throw new InputError(`nodes[${index}] "${name}": duplicate node name`);
    seen.add(name.toLowerCase());
  });
  return { dir: resolve(options.dir), clusterName, controlHost, nodes: [...nodes], user, keyBits };
}

/** A 128-bit positive serial, as hex for -set_serial (the top bit clear keeps the DER integer positive). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

/**
 * One openssl config for every request: -subj gives the names, the sections give each
 * certificate's extensions (more than -addext can say in one place, and readable in a failure).
 */
function opensslConfig(controlHost: string): string {
  // flocker-ca: IP:<host> when the host is an address, DNS:<host> otherwise, next to DNS:control-service.
  const hostAltName = isIP(controlHost) ? `IP:${controlHost}` : `DNS:${controlHost}`;
  const leaf = ['basicConstraints = critical,CA:FALSE', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always'];
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    '[ca]',
    'basicConstraints = critical,CA:TRUE,pathlen:0',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[control]',
    ...leaf,
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = DNS:control-service,${hostAltName}`,
    '[node]',
    ...leaf,
    'keyUsage = critical,digitalSignature,keyEncipherment',
    // The agents are clients of the control service; serverAuth as well is harmless.
    'extendedKeyUsage = clientAuth,serverAuth',
    '[user]',
    ...leaf,
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = clientAuth',
    '',
  ].join('\n');
}

/** Where each file of a set goes, relative to its folder. */
function layout(user: string, nodes: readonly string[]) {
  return {
    ca: { crt: 'cluster.crt', key: 'cluster.key' },
    control: { crt: 'control-service.crt', key: 'control-service.key' },
    user: { crt: `${user}.crt`, key: `${user}.key` },
    nodes: nodes.map((name) => ({ name, crt: `nodes/${name}.crt`, key: `nodes/${name}.key` })),
  };
}

/**
 * Makes a new set of cluster certificates in `dir` (created 0700; refused when it already holds
 * one). Keys are made two at a time; a failure or an abort removes what this call wrote.
 */
export async function makeFlockerCerts(options: {
  dir: string;
  clusterName?: string;
  controlHost: string;
  nodes: string[];
  user?: string;
  keyBits?: number;
  signal?: AbortSignal;
}): Promise<FlockerCerts> {
  const checked = checkOptions(options);
  const { dir, clusterName, controlHost, user, keyBits } = checked;
  const { signal } = options;
  signal?.throwIfAborted();
  const files = layout(user, checked.nodes);
  const all = [MANIFEST, files.ca.crt, files.ca.key, files.control.crt, files.control.key, files.user.crt, files.user.key];
  for (const node of files.nodes) all.push(node.crt, node.key);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new InputError(`dir ${dir}: exists and is not a folder`);
  const present = all.find((file) => existsSync(join(dir, file)));
  if (present) throw new InputError(`dir ${dir}: already holds Flocker certificates (${present}); refusing to overwrite them`);

  const createdDir = !existsSync(dir);
  const createdNodesDir = !existsSync(join(dir, 'nodes'));
  const written: string[] = [];
  // Stops every openssl still running when one fails or the caller aborts, so none writes after the clean-up.
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const work = mkdtempSync(join(tmpdir(), 'lab-flocker-ca-'));
  try {
    // 0700 whatever the umask, set while the folder is still empty.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    if (files.nodes.length) {
      mkdirSync(join(dir, 'nodes'), { recursive: true, mode: 0o700 });
      chmodSync(join(dir, 'nodes'), 0o700);
    }
    const config = join(work, 'openssl.cnf');
    writeFileSync(config, opensslConfig(controlHost));
    // Our config for every openssl call, so the host's /etc/ssl/openssl.cnf cannot add or change extensions.
    const env = { ...process.env, OPENSSL_CONF: config };
    const openssl = (args: string[]) => run([OPENSSL, ...args], { env, signal: stop.signal });
    const at = (file: string) => join(dir, file);

    const keys = [files.ca.key, files.control.key, files.user.key, ...files.nodes.map((node) => node.key)];
    let failure: { error: unknown } | undefined;
    // Never rejects: the first failure stops the others, and all have ended before it is thrown.
    await mapLimit(keys, PARALLEL_KEYS, async (key) => {
      if (stop.signal.aborted) return;
      try {
        // The file exists, empty, with mode 0600 before openssl writes a byte to it ("wx": never an existing file).
        createPrivate(at(key));
        written.push(at(key));
        // -traditional: "BEGIN RSA PRIVATE KEY" (PKCS#1), as flocker-ca's pyOpenSSL wrote them.
        await openssl(['genrsa', '-traditional', '-out', at(key), String(keyBits)]);
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    });
    if (failure) throw failure.error;

    const clusterUuid = randomUUID();
    const sign = async (crt: string, key: string, subject: string, extensions: string, ca: boolean) => {
      written.push(at(crt));
      const issuer = ca ? [] : ['-CA', at(files.ca.crt), '-CAkey', at(files.ca.key)];
      await openssl(['req', '-new', '-x509', '-config', config, '-extensions', extensions, '-key', at(key), ...issuer,
        '-sha256', '-days', String(DAYS), '-set_serial', randomSerial(), '-subj', subject, '-out', at(crt)]); // prettier-ignore
    };
    await sign(files.ca.crt, files.ca.key, `/CN=${clusterName}/OU=${clusterUuid}`, 'ca', true);
    await sign(files.control.crt, files.control.key, `/CN=control-service/OU=${clusterUuid}`, 'control', false);
    await sign(files.user.crt, files.user.key, `/CN=user-${user}/OU=${clusterUuid}`, 'user', false);
    const nodes = [];
    for (const node of files.nodes) {
      // The UUID in the CN becomes the Flocker node's UUID.
      const uuid = randomUUID();
      await sign(node.crt, node.key, `/CN=node-${uuid}/OU=${clusterUuid}`, 'node', false);
      nodes.push({ name: node.name, uuid, crt: node.crt, key: node.key });
    }

    const manifest: Manifest = {
      format: FORMAT,
      clusterName,
      clusterUuid,
      keyBits,
      ca: files.ca,
      control: { host: controlHost, ...files.control },
      user: { name: user, ...files.user },
      nodes,
    };
    written.push(at(MANIFEST));
    // Written last: a folder with certs.json holds a whole set.
    writeFileSync(at(MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
    return absolute(dir, manifest);
  } catch (error) {
    for (const file of written) rmSync(file, { force: true });
    if (createdDir) rmSync(dir, { recursive: true, force: true });
    else if (createdNodesDir) rmSync(join(dir, 'nodes'), { recursive: true, force: true });
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    rmSync(work, { recursive: true, force: true });
  }
}

/** Creates an empty file of mode 0600 (whatever the umask); fails if it exists. */
function createPrivate(path: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

function absolute(dir: string, manifest: Manifest): FlockerCerts {
  const at = (file: string) => join(dir, file);
  return {
    dir,
    clusterUuid: manifest.clusterUuid,
    ca: { crt: at(manifest.ca.crt), key: at(manifest.ca.key) },
    control: { host: manifest.control.host, crt: at(manifest.control.crt), key: at(manifest.control.key) },
    user: { name: manifest.user.name, crt: at(manifest.user.crt), key: at(manifest.user.key) },
    nodes: manifest.nodes.map((node) => ({ name: node.name, uuid: node.uuid, crt: at(node.crt), key: at(node.key) })),
  };
}

/** A set written earlier by makeFlockerCerts, from its certs.json; throws when there is none or a file is missing. */
export function readFlockerCerts(dir: string): FlockerCerts {
  const root = resolve(dir);
  const file = join(root, MANIFEST);
  if (!existsSync(file))
    throw new Error(`no Flocker certificates in ${root}: ${MANIFEST} is missing (make a set with \`lab certs ${dir} ...\`)`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (error) {
    throw new Error(`${file}: not valid JSON`, { cause: error });
  }
  const nodes = Array.isArray(manifest?.nodes) ? manifest.nodes : [];
  const entries = manifest?.format === FORMAT ? [manifest.ca, manifest.control, manifest.user, ...nodes] : [];
  const wellFormed =
    entries.length >= 3 &&
    typeof manifest.clusterUuid === 'string' &&
    entries.every((entry) => typeof entry?.crt === 'string' && typeof entry.key === 'string') &&
    Array.isArray(manifest.nodes) &&
    manifest.nodes.every((node) => typeof node.name === 'string' && typeof node.uuid === 'string');
  if (!wellFormed) throw new Error(`${file}: not a lab Flocker certificate manifest (${FORMAT})`);
  const certs = absolute(root, manifest);
  const paths = [certs.ca, certs.control, certs.user, ...certs.nodes].flatMap((entry) => [entry.crt, entry.key]);
  for (const path of paths) {
    // Only files inside the folder: a manifest never sends a reader elsewhere.
    if (!path.startsWith(`${root}/`)) throw new Error(`${file}: names a file outside ${root}`);
    if (!existsSync(path)) throw new Error(`${file}: names ${path}, which is missing`);
  }
  return certs;
}

/** What `lab certs` prints: the files, the node UUIDs and where each file goes. Paths only, never key contents. */
export function describeFlockerCerts(certs: FlockerCerts): string {
  const rel = (path: string) => relative(certs.dir, path);
  const hostName = `${isIP(certs.control.host) ? 'IP' : 'DNS'}:${certs.control.host}`;
  const files: [string, string][] = [
    [certs.ca.crt, 'the cluster CA'],
    [certs.ca.key, 'its key: it signs certificates, keep it off the nodes'],
    [certs.control.crt, `control service: CN=control-service, DNS:control-service, ${hostName}`],
    [certs.control.key, ''],
    [certs.user.crt, `API user ${certs.user.name}: CN=user-${certs.user.name}`],
    [certs.user.key, ''],
    ...certs.nodes.flatMap((node): [string, string][] => [
      [node.crt, `node ${node.name}: UUID ${node.uuid}`],
      [node.key, ''],
    ]),
  ];
  const width = Math.max(...files.map(([path]) => path.length)) + 2;
  const places: [string, string][] = [
    ['every node', `${rel(certs.ca.crt)} -> /etc/flocker/cluster.crt`],
    ...certs.nodes.map((node): [string, string] => [
      `node ${node.name}`,
      `${rel(node.crt)} -> /etc/flocker/node.crt, ${rel(node.key)} -> /etc/flocker/node.key`,
    ]),
    [
      `control host ${certs.control.host}`,
      `${rel(certs.control.crt)} -> /etc/flocker/control-service.crt, ${rel(certs.control.key)} -> /etc/flocker/control-service.key`,
    ],
    [
      'kubelet, on every node',
      `${rel(certs.ca.crt)}, ${rel(certs.user.crt)}, ${rel(certs.user.key)} -> $FLOCKER_USER_CA_DIR (default /etc/flocker)`,
    ],
  ];
  const placeWidth = Math.max(...places.map(([where]) => where.length)) + 2;
  const lines = [
    `Flocker cluster ${certs.clusterUuid}, in ${certs.dir} (every .key file is mode 0600):`,
    ...files.map(([path, what]) => `  ${what ? path.padEnd(width) + what : path}`),
    'Where they go (/etc/flocker mode 0700, keys 0600):',
    ...places.map(([where, what]) => `  ${`${where}:`.padEnd(placeWidth + 1)}${what}`),
  ];
  if (certs.user.name !== 'kubernetes')
    lines.push(
      `  (the kubelet looks for kubernetes.crt/.key there: set FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE and FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE to the ${certs.user.name} files)`,
    );
  return `${lines.join('\n')}\n`;
}
