/**
 * flocker-dataset-agent: the lab's emulated Flocker dataset agent. Every --interval (2 s) it
 * reports this node's volumes to the control service named in agent.yml, receives the cluster's
 * configuration and converges: the datasets whose primary is this node are attached and mounted
 * at /flocker/<dataset_id>, the others are unmounted and detached, deleted ones destroyed.
 *
 * It authenticates with `node.crt` / `node.key` (CN `node-<uuid>`: its node UUID) next to
 * agent.yml and checks the control service against `cluster.crt`. Backends: `loopback`
 * (loopback.ts) and `openstack` (cinder.ts, against the lab's emulated OpenStack). Deviation from
 * real Flocker: JSON over HTTPS on the agent port instead of AMP (see control.ts); `--interval`
 * is the lab's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Socket } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { glog, parseFlagsOrExit } from '../flags.js';
import { jsonRequest } from '../json-http.js';
import { CinderBackend } from './cinder.js';
import { DEFAULT_MOUNT_ROOT, DEFAULT_ROOT_PATH, LoopbackBackend } from './loopback.js';
import type { OpenStackConfig } from './openstack-client.js';
import { isUuid } from './schema.js';
import type { AgentConfiguration, AgentStateReport, ReportedDataset } from './types.js';

export const DEFAULT_AGENT_PORT = 4524;
const VERSION_FILE = '/opt/lab/flocker-version';

export class AgentConfigError extends Error {}

export type AgentYml = {
  controlHost: string;
  controlPort: number;
} & ({ backend: 'loopback'; rootPath: string; computeInstanceId?: string } | { backend: 'openstack'; openstack: OpenStackConfig });

/** The dataset backends: what the agent asks of each. */
export interface DatasetBackend {
  observe(): Promise<ReportedDataset[]>;
  converge(myUuid: string, configuration: AgentConfiguration, log: (line: string) => void): Promise<ReportedDataset[]>;
}

/** Reads agent.yml as Flocker documented it (version 1, control-service, dataset). */
export function parseAgentYml(text: string, file = 'agent.yml'): AgentYml {
  const fail = (message: string): never => {
    throw new AgentConfigError(`${file}: ${message}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    fail(`not valid YAML: ${(error as Error).message}`);
  }
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(doc)) return fail('not a YAML mapping');
  if (!('version' in doc)) fail('version is missing (it must be 1)');
  if (doc.version !== 1) fail(`version must be 1, not ${JSON.stringify(doc.version)}`);
  const control = doc['control-service'];
  if (control === undefined) fail('control-service is missing');
  if (!isMap(control)) return fail('control-service must be a mapping with hostname (and port)');
  if (typeof control.hostname !== 'string' || control.hostname === '') fail('control-service.hostname is missing or not a string');
  const port = control.port ?? DEFAULT_AGENT_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    fail(`control-service.port must be a port number, not ${JSON.stringify(port)}`);
  const dataset = doc.dataset;
  if (dataset === undefined) fail('dataset is missing');
  if (!isMap(dataset)) return fail('dataset must be a mapping with backend');
  if (typeof dataset.backend !== 'string' || dataset.backend === '') fail('dataset.backend is missing or not a string');
  const common = { controlHost: control.hostname as string, controlPort: port as number };
  if (dataset.backend === 'openstack') return { ...common, backend: 'openstack', openstack: parseOpenStack(dataset, fail) };
  if (dataset.backend !== 'loopback')
    fail(`backend ${String(dataset.backend)} is not supported by the lab's emulated Flocker agent (loopback, openstack)`);
  const rootPath = dataset.root_path ?? DEFAULT_ROOT_PATH;
  if (typeof rootPath !== 'string' || !isAbsolute(rootPath))
    fail(`dataset.root_path must be an absolute path, not ${JSON.stringify(rootPath)}`);
  const extra = Object.keys(dataset).filter((k) => !['backend', 'root_path', 'compute_instance_id'].includes(k));
  if (extra.length) fail(`dataset.${extra[0]} is not an option of the loopback backend (root_path, compute_instance_id)`);
  if (dataset.compute_instance_id !== undefined && typeof dataset.compute_instance_id !== 'string')
    fail('dataset.compute_instance_id must be a string');
  return {
    ...common,
    backend: 'loopback',
    rootPath: rootPath as string,
    ...(typeof dataset.compute_instance_id === 'string' ? { computeInstanceId: dataset.compute_instance_id } : {}),
  };
}

/**
 * The openstack backend's options, as Flocker read them: `region`, `auth_plugin` (password, the
 * only plugin the lab's cloud serves), the plugin's own options (auth_url, username, password,
 * tenant_name or project_name, user/project domain names) and `verify_peer`. Like Flocker, other
 * keys (the fork's `network`) are passed over.
 */
function parseOpenStack(dataset: Record<string, unknown>, fail: (message: string) => never): OpenStackConfig {
  const text = (key: string, required: boolean): string | undefined => {
    const value = dataset[key];
    if (value === undefined || value === null || value === '') {
      if (required) fail(`dataset.${key} is required by the openstack backend`);
      return undefined;
    }
    if (typeof value !== 'string') return fail(`dataset.${key} must be a string, not ${JSON.stringify(value)}`);
    return value;
  };
  const plugin = text('auth_plugin', false) ?? 'password';
  if (plugin !== 'password') fail(`dataset.auth_plugin ${plugin} is not one the lab's cloud serves (password)`);
  const verify = dataset.verify_peer ?? true;
  if (typeof verify !== 'boolean') fail(`dataset.verify_peer must be true or false, not ${JSON.stringify(verify)}`);
  const optional = (key: string) => text(key, false);
  return {
    region: text('region', true) as string,
    authUrl: text('auth_url', true) as string,
    username: text('username', true) as string,
    password: text('password', true) as string,
    ...(optional('tenant_name') ? { tenantName: optional('tenant_name') } : {}),
    ...(optional('project_name') ? { projectName: optional('project_name') } : {}),
    ...(optional('user_domain_name') ? { userDomainName: optional('user_domain_name') } : {}),
    ...(optional('project_domain_name') ? { projectDomainName: optional('project_domain_name') } : {}),
    verifyPeer: verify as boolean,
  };
}

export interface NodeCredentials {
  uuid: string;
  /** The Flocker cluster's UUID: the OU flocker-ca wrote into every certificate. */
  clusterId: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** node.crt, node.key and cluster.crt from agent.yml's directory; the UUID is node.crt's CN less `node-`. */
export function readNodeCredentials(dir: string): NodeCredentials {
  const read = (name: string): Buffer => {
    try {
      return readFileSync(join(dir, name));
    } catch (error) {
      throw new AgentConfigError(`cannot read ${join(dir, name)}: ${(error as Error).message}`);
    }
  };
  const cert = read('node.crt');
  const key = read('node.key');
  const ca = read('cluster.crt');
  let subject: string;
  try {
    subject = new X509Certificate(cert).subject;
  } catch (error) {
    throw new AgentConfigError(`${join(dir, 'node.crt')} is not a certificate: ${(error as Error).message}`);
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? '';
  const uuid = cn.replace(/^node-/, '');
  if (!cn.startsWith('node-') || !isUuid(uuid))
    throw new AgentConfigError(
      `${join(dir, 'node.crt')}: its CN ${JSON.stringify(cn)} is not node-<uuid> (create it with flocker-ca create-node-certificate)`,
    );
  const clusterId = (/(?:^|\n)OU=([^\n]*)/.exec(subject)?.[1] ?? '').toLowerCase();
  return { uuid: uuid.toLowerCase(), clusterId, ca, cert, key };
}

/** The release the agent's image is (its /opt/lab/flocker-version). */
const flockerRelease = (): string => (existsSync(VERSION_FILE) ? readFileSync(VERSION_FILE, 'utf8').trim() : '1.14.0');

/** The era: this boot's identity, which `flocker-node-era` printed (it changes at every reboot). */
export function nodeEra(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/**
 * POST /agent/v1/state: the report up, the configuration down. Without a `host`, the report names
 * the local address of this very connection to the control service, the address Flocker's
 * _get_external_ip found by connecting to it.
 */
const keepAlive = new Agent({
  keepAlive: true,
  maxSockets: 1,
  // Flocker's agents checked the name `control-service`, which flocker-ca puts in the control
  // certificate beside its hostname; either one will do here. (Given per request instead, Node 18
  // never reuses the connection.)
  checkServerIdentity: (host: string, cert: PeerCertificate) => {
    const byHost = checkServerIdentity(host, cert);
    return byHost && checkServerIdentity('control-service', cert) ? byHost : undefined;
  },
});

export async function reportState(
  control: { host: string; port: number },
  credentials: Pick<NodeCredentials, 'ca' | 'cert' | 'key'>,
  report: Omit<AgentStateReport, 'host'> & { host?: string },
  timeoutMs = 30_000,
): Promise<AgentConfiguration> {
  const answer = await jsonRequest({
    https: true,
    host: control.host,
    port: control.port,
    method: 'POST',
    path: '/agent/v1/state',
    ca: credentials.ca,
    cert: credentials.cert,
    key: credentials.key,
    // One TLS connection kept open between reports, as the agent's AMP connection stayed
    // open: a handshake every 2 s would cost both ends dearly under emulation.
    agent: keepAlive,
    json: (socket: Socket) => ({ ...report, host: report.host ?? (socket.localAddress ?? '').replace(/^::ffff:/, '') }),
    timeoutMs,
    timeoutMessage: `no answer from the control service in ${timeoutMs / 1000} s`,
  });
  const body = answer.body as
    | { configuration?: { datasets?: AgentConfiguration['datasets'] }; leases?: AgentConfiguration['leases']; description?: string }
    | undefined;
  if (typeof body !== 'object' || body === null)
    throw new Error(`control service answered ${answer.status} with ${JSON.stringify(answer.text.slice(0, 200))}`);
  if (answer.status !== 200) throw new Error(`control service answered ${answer.status}: ${body.description ?? answer.text}`);
  return { datasets: body.configuration?.datasets ?? [], leases: body.leases ?? [] };
}

export interface AgentOptions {
  /** Path of agent.yml; node.crt, node.key and cluster.crt are read from its directory. */
  agentConfig: string;
  intervalMs?: number;
  /** Where datasets are mounted (/flocker). */
  mountRoot?: string;
  /** The Flocker release it behaves as (default: the image's /opt/lab/flocker-version). */
  release?: string;
  log?: (line: string) => void;
}

export interface RunningAgent {
  nodeUuid: string;
  backend: DatasetBackend;
  /** Stops after the round in progress; volumes stay as they are, as when Flocker's agent stopped. */
  stop(): Promise<void>;
}

/** Reads the configuration (throws AgentConfigError) and starts the loop. */
export async function runAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? ((line: string) => glog('I', 'agent', line));
  let text: string;
  try {
    text = readFileSync(options.agentConfig, 'utf8');
  } catch (error) {
    throw new AgentConfigError(`cannot read ${options.agentConfig}: ${(error as Error).message}`);
  }
  const config = parseAgentYml(text, options.agentConfig);
  const credentials = readNodeCredentials(dirname(options.agentConfig));
  const mountRoot = options.mountRoot ?? DEFAULT_MOUNT_ROOT;
  const interval = options.intervalMs ?? 2000;
  const control = { host: config.controlHost, port: config.controlPort };
  const era = nodeEra();
  let backend: DatasetBackend;
  let volumes: string;
  if (config.backend === 'openstack') {
    const release = options.release ?? flockerRelease();
    const cinder = CinderBackend.create(config.openstack, credentials.clusterId, mountRoot, release);
    // 1.13 made its Cinder client when the agent started, so a failure there ended the agent;
    // 1.14 makes it in the loop, which logs the failure and tries again (FLOC-4465).
    if (release === '1.13.0') await cinder.connect();
    backend = cinder;
    volumes = `Cinder volumes of ${config.openstack.authUrl} (region ${config.openstack.region})`;
  } else {
    backend = new LoopbackBackend(config.rootPath, mountRoot);
    volumes = `loopback volumes in ${config.rootPath}`;
  }
  log(`node ${credentials.uuid} (era ${era}): ${volumes}, control service ${control.host}:${control.port}`);

  let stopped = false;
  let wake: (() => void) | undefined;
  let controlError: string | undefined;
  let convergeError: string | undefined;
  const loop = async (): Promise<void> => {
    let state: ReportedDataset[] = await backend.observe().catch(() => []);
    while (!stopped) {
      let changed = false;
      let configuration: AgentConfiguration | undefined;
      try {
        configuration = await reportState(control, credentials, { node_uuid: credentials.uuid, era, datasets: state });
        if (controlError !== undefined) log(`control service ${control.host}:${control.port} reachable again`);
        controlError = undefined;
      } catch (error) {
        const message = `cannot report to the control service ${control.host}:${control.port}: ${(error as Error).message}`;
        if (message !== controlError) log(message);
        controlError = message;
      }
      try {
        const next = configuration ? await backend.converge(credentials.uuid, configuration, log) : await backend.observe();
        changed = configuration !== undefined && JSON.stringify(next) !== JSON.stringify(state);
        state = next;
        convergeError = undefined;
      } catch (error) {
        const message = `cannot converge the ${volumes}: ${(error as Error).name}: ${(error as Error).message}`;
        if (message !== convergeError) log(message);
        convergeError = message;
      }
      // A change is reported at once; otherwise wait for the next round.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, changed ? 100 : interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const done = loop().catch((error: Error) => log(`agent loop failed: ${error.stack ?? error.message}`));
  return {
    nodeUuid: credentials.uuid,
    backend,
    stop: async () => {
      stopped = true;
      wake?.();
      await done;
    },
  };
}

/**
 * What Flocker's agent printed when its start-up failed (flocker/common/script.py's error
 * handling): the message, and the Python traceback's frames down to the backend's factory. The
 * frames name where Flocker's code stood (without its line numbers, which the lab does not know);
 * the last line is the error the emulated agent met.
 */
export function startupFailure(error: Error): string {
  const site = '/opt/flocker/lib/python2.7/site-packages/flocker';
  return [
    'main function encountered error',
    'Traceback (most recent call last):',
    `  File "${site}/node/script.py", in flocker_dataset_agent_main`,
    '    deployer = deployer_factory(cluster_uuid=cluster_uuid, node_uuid=node_uuid, api=api)',
    `  File "${site}/node/agents/cinder.py", in cinder_from_configuration`,
    '    cinder_client.version',
    `${error.name === 'Error' ? 'Exception' : error.name}: ${error.message}`,
    '',
  ].join('\n');
}

/** flocker-dataset-agent [--agent-config /etc/flocker/agent.yml]. */
export async function main(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('flocker-dataset-agent', argv, {
    'agent-config': '/etc/flocker/agent.yml',
    interval: '2',
    // Flocker's systemd unit ran it with --journald; the lab logs to stderr either way.
    journald: false,
  });
  const seconds = Number(flags.interval);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    process.stderr.write(`flocker-dataset-agent: --interval must be a positive number of seconds, not ${JSON.stringify(flags.interval)}\n`);
    process.exit(2);
  }
  let agent: RunningAgent;
  try {
    agent = await runAgent({ agentConfig: flags['agent-config'], intervalMs: seconds * 1000 });
  } catch (error) {
    if (error instanceof AgentConfigError) process.stderr.write(`flocker-dataset-agent: ${error.message}\n`);
    else process.stderr.write(startupFailure(error as Error));
    process.exit(1);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.on(signal, () => {
      void agent.stop().then(() => process.exit(0));
    });
}
