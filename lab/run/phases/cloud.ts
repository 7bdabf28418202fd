import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GUEST_ADDRESS, GUEST_PORTS, type CloudPorts, type ServiceName } from '../../cloud/server.js';
import { hasVolumes, IDENTITY_FILE, newIdentity, writeIdentity, writeServers, type CloudIdentity } from '../../cloud/state.js';
import type { CloudAccess } from '../../checks/descriptor.js';
import type { HostService } from '../../machines/driver.js';
import { projectRoot } from '../../util/paths.js';
import type { Machine } from '../../remote/machine.js';
import type { LiveNode, RunContext } from '../context.js';

/** The run's emulated OpenStack: where it keeps its state, how the guests reach it, who may use it. */
export interface RunCloud {
  dir: string;
  ports: CloudPorts;
  identity: CloudIdentity;
  /** What each VM's management network forwards to it. */
  services: HostService[];
}

export const cloudDir = (ctx: Pick<RunContext, 'stateDir'>): string => join(ctx.stateDir, 'cloud');
/** Where every node of a run with a cloud finds its credentials, as an openrc (sourced by the provisioners). */
export const CREDENTIALS_FILE = '/etc/lab/openstack.env';

/**
 * Starts the scenario's cloud, if it has one, before the VMs (they are started with its ports
 * forwarded). A run restored from a snapshot layer that a run with a cloud saved gets the identity
 * its guests were given, kept with the layer; any other run a new one. (The forwards are no part
 * of a layer's key: a VM saved without them is restored with them, so a cloud scenario shares the
 * layers of its cloud-less parent up to its first step that uses the cloud.) The cloud is a process of its own: it dies with the
 * lab, or outlives it with a kept run's VMs, and goes with the run.
 */
export async function startCloud(ctx: RunContext, identityFromLayer?: string): Promise<RunCloud | undefined> {
  if (!ctx.scenario.spec.cloud) return undefined;
  const dir = cloudDir(ctx);
  const identity: CloudIdentity =
    identityFromLayer && existsSync(identityFromLayer)
      ? (JSON.parse(readFileSync(identityFromLayer, 'utf8')) as CloudIdentity)
      : newIdentity();
  writeIdentity(dir, identity);
  const main = join(projectRoot, 'dist', 'lab', 'cloud', 'main.js');
  const argv = ctx.persistent ? [process.execPath, main, dir] : ['setpriv', '--pdeathsig', 'KILL', '--', process.execPath, main, dir];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], detached: ctx.persistent });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited (${signal ?? code})`));
  if (ctx.persistent) child.unref();
  ctx.scope.defer('cloud', async () => {
    if (exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await Promise.race([gone, sleep(3000)]);
    if (!exited) child.kill('SIGKILL');
  });
  const portsFile = join(dir, 'ports.json');
  for (let i = 0; i < 100 && !existsSync(portsFile) && !exited; i++) await sleep(100);
  if (!existsSync(portsFile))
    throw new Error(`the cloud did not start: ${exited ?? 'no ports after 10 s'}${stderr ? `\n${stderr.trim()}` : ''}`);
  child.stderr?.destroy();
  const ports = JSON.parse(readFileSync(portsFile, 'utf8')) as CloudPorts;
  const services = (Object.keys(GUEST_PORTS) as ServiceName[]).map((name) => ({
    address: GUEST_ADDRESS,
    port: GUEST_PORTS[name],
    hostPort: ports[name],
  }));
  ctx.log.info(
    `cloud: openstack for the guests at ${GUEST_ADDRESS} (Keystone :5000, Cinder :8776, Nova :8774), on the host at 127.0.0.1:${ports.identity} (Keystone)`,
  );
  return { dir, ports, identity, services };
}

/** How a client on the host reaches the cloud (checks, tests, a user of a kept run). */
export function cloudAccess(cloud: RunCloud): CloudAccess {
  const { identity } = cloud;
  return {
    authUrl: `http://127.0.0.1:${cloud.ports.identity}/v3`,
    username: identity.userName,
    password: identity.password,
    project: identity.projectName,
    region: identity.region,
    dir: cloud.dir,
  };
}

/** The identity file a snapshot layer keeps (its guests were given these credentials). */
export const identityFile = (cloud: RunCloud): string => join(cloud.dir, IDENTITY_FILE);

/** A node's Nova server id: the same for the same node of the same cloud identity (so across restores of a layer). */
const serverId = (identity: CloudIdentity, node: string): string => {
  const hex = createHash('sha256').update(`${identity.projectId}/${node}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

/** Nova's servers are the run's nodes, each reached through its hypervisor's monitor. */
function registerServers(cloud: RunCloud, nodes: LiveNode[]): void {
  writeServers(
    cloud.dir,
    nodes.map(({ name, address, vm }) => ({
      id: serverId(cloud.identity, name),
      name,
      address,
      mac: vm.spec.cluster?.mac ?? '',
      vcpus: vm.spec.cpus,
      memoryMiB: vm.spec.memoryMiB,
      ...(vm.control ? { control: vm.control } : {}),
    })),
  );
}

/** The credentials as an openrc, for the nodes (a cloud's users got theirs the same way). */
export function credentials(identity: CloudIdentity): string {
  const lines = {
    OS_AUTH_URL: `http://${GUEST_ADDRESS}:${GUEST_PORTS.identity}/v2.0`,
    OS_USERNAME: identity.userName,
    OS_PASSWORD: identity.password,
    OS_TENANT_NAME: identity.projectName,
    OS_PROJECT_NAME: identity.projectName,
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_REGION_NAME: identity.region,
  };
  return `${Object.entries(lines)
    .map(([key, value]) => `export ${key}='${value}'`)
    .join('\n')}\n`;
}

/** Every node holds the cloud's credentials (the same file again on a node restored from a layer of this identity). */
export async function placeCredentials(identity: CloudIdentity, machines: Machine[]): Promise<void> {
  const text = credentials(identity);
  await Promise.all(
    machines.map((machine) => machine.succeed(`mkdir -p /etc/lab && umask 077 && cat > ${CREDENTIALS_FILE} <<'EOF'\n${text}EOF`)),
  );
}

/** Once the VMs run (booted or restored): Nova's servers are the run's nodes, and they hold the credentials. */
export async function joinCloud(cloud: RunCloud, nodes: LiveNode[]): Promise<void> {
  registerServers(cloud, nodes);
  await placeCredentials(
    cloud.identity,
    nodes.map((node) => node.machine),
  );
}

/** A kept run's reset: its VMs went back to a layer, which holds no volume, and so does its cloud now. */
export async function forgetVolumes(dir: string): Promise<void> {
  const pid = Number(readFileSync(join(dir, 'cloud.pid'), 'utf8'));
  process.kill(pid, 'SIGHUP');
  for (let i = 0; i < 50 && hasVolumes(dir); i++) await sleep(100);
  if (hasVolumes(dir)) throw new Error(`the cloud (PID ${pid}) did not forget its volumes within 5 s`);
}
