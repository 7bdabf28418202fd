import { expect } from 'vitest';
import { notYet, waitFor } from '../../util/wait.js';
import type { Cluster, ClusterNode } from '../api.js';

/**
 * Reaching the multinode cluster from a check: the apiserver's insecure port and etcd listen on
 * the master, so requests are made there with curl over SSH (never from the host to a guest
 * network), the way a user on the master would make them.
 */

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A busy master under emulation (kube-dns and pods starting at once) can take several seconds per request. */
const REQUEST_SECONDS = 30;

export function masterOf(lab: Cluster): Promise<ClusterNode> {
  const master = lab.specs.find((s) => s.role === 'master');
  if (!master) throw new Error('the scenario has no node with role master');
  return lab.node(master.name);
}

/** GET on the master's apiserver (port 8080) or etcd (4001); undefined when the request fails. */
export async function getJson(master: ClusterNode, url: string): Promise<Json | undefined> {
  const result = await master.exec(`curl -fsS --max-time ${REQUEST_SECONDS} ${url}`, { timeout: REQUEST_SECONDS + 15 });
  if (result.code !== 0) return undefined;
  try {
    return JSON.parse(result.stdout) as Json;
  } catch {
    return undefined;
  }
}

/**
 * Any call to the master's apiserver (POST, PUT, DELETE...), the body on curl's stdin: the answer
 * with its HTTP code, so a check can tell a 404 or a 409 from a failed request.
 */
export async function apiRequest(master: ClusterNode, method: string, path: string, body?: Json): Promise<{ code: number; json: Json }> {
  const data = body === undefined ? '' : `-H 'content-type: application/json' --data-binary @-`;
  const result = await master.exec(`curl -sS --max-time ${REQUEST_SECONDS} -X ${method} ${data} -w '\n%{http_code}' ${API}${path}`, {
    timeout: REQUEST_SECONDS + 15,
    ...(body === undefined ? {} : { stdin: JSON.stringify(body) }),
  });
  const lines = result.stdout.trimEnd().split('\n');
  const code = Number(lines.pop());
  if (result.code !== 0 || !code)
    throw new Error(`${method} ${API}${path} on ${master.name} failed: ${result.stderr.trim() || `curl exit ${result.code}`}`);
  try {
    return { code, json: JSON.parse(lines.join('\n') || '{}') as Json };
  } catch {
    return { code, json: { text: lines.join('\n') } };
  }
}

export const API = 'http://127.0.0.1:8080';

/** The static pods take a while after master.sh returns: wait for /healthz. */
export const HEALTHY_WITHIN_MS = 240_000;
export function apiserverHealthy(master: ClusterNode): Promise<true> {
  return waitFor({ what: `the apiserver on ${master.name} to answer /healthz`, timeoutMs: HEALTHY_WITHIN_MS }, async () => {
    const result = await master.exec(`curl -fsS --max-time 5 ${API}/healthz`, { timeout: 15 });
    return result.stdout.trim() === 'ok' ? true : notYet(result.stdout.trim() || `curl exit ${result.code}: ${result.stderr.trim()}`);
  });
}
export const ETCD = 'http://127.0.0.1:4001';

/**
 * Runs a command in a container of a pod on its node, through the node's Docker (what `kubectl
 * exec` did; the emulated kubelet does not serve exec): found by the kubelet's io.kubernetes.* labels.
 */
export async function inPod(
  node: ClusterNode,
  pod: string,
  container: string,
  command: string,
  // docker exec starts runc and a shim, each a Go program: under TCG on a busy master that has taken over 30 s.
  timeoutS = 60,
): Promise<{ code: number; output: string }> {
  const filters = [`io.kubernetes.pod.name=${pod}`, 'io.kubernetes.pod.namespace=default', `io.kubernetes.container.name=${container}`]
    .map((l) => `--filter label=${l}`)
    .join(' ');
  const result = await node.exec(
    `id=$(docker ps -q ${filters} | head -1); [ -n "$id" ] || { echo 'no running ${container} container of pod ${pod}'; exit 125; }; docker exec "$id" ${command}`,
    { timeout: timeoutS },
  );
  const output = (result.stdout + result.stderr).trim();
  // Said, not left empty: a lookup that never returns must read differently from one that printed nothing.
  return {
    code: result.code,
    output: result.timedOut ? `${output}${output ? '\n' : ''}(\`${command}\` in ${pod} did not end within ${timeoutS} s)` : output,
  };
}

/** A setting as the install used it: the scenario's value, else the guide's default. */
export const setting = (lab: Cluster, name: string, fallback: string): string => lab.descriptor.env[name] || fallback;

/** A container that sleeps, made anew under `name` on a node's Docker (on its flannel subnet); its address. */
export async function startSleeper(node: ClusterNode, name: string, image: string): Promise<string> {
  await node.exec(`docker rm -f ${name} >/dev/null 2>&1`, { timeout: 60 });
  const started = await node.exec(`docker run -d --name ${name} ${image} sleep 3600`, { timeout: 120 });
  expect(started.code, `docker run ${image} on ${node.name} failed: ${(started.stderr || started.stdout).trim()}`).toBe(0);
  return (await node.succeed(`docker inspect -f '{{.NetworkSettings.IPAddress}}' ${name}`)).trim();
}

/**
 * Where a node's subnet.env is: flanneld's --subnet-file (default /run/flannel/subnet.env) as its
 * container sees it, through /proc/PID/root. The scripts mount different host folders there (the
 * guide's a0b09e4a a `mktemp -d`, the fork FLANNEL_SUBNET_DIR), so the host's /run/flannel says
 * nothing about them. The container is the one whose command is flanneld, on any Docker daemon of
 * the node (the bootstrap one in every version of the guide); with none running, the host's file.
 */
const FLANNELD_CONTAINERS = [
  // One inspect per daemon: the master runs a dozen containers, and one call each took a minute under load.
  // A container that goes between ps and inspect (a pod the dns check deleted) fails the inspect: ask again.
  'for sock in /var/run/docker*.sock; do',
  '  for try in 1 2 3; do',
  '    ids=$(docker -H "unix://$sock" ps -q 2>/dev/null)',
  '    [ -n "$ids" ] || break',
  '    if found=$(docker -H "unix://$sock" inspect -f \'{{.State.Pid}} {{.Path}} {{join .Args " "}}\' $ids); then printf \'%s\\n\' "$found"; break; fi',
  '    [ $try -lt 3 ] || exit 1',
  '  done',
  'done',
].join('\n');
const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';

export async function subnetFileOf(node: Pick<ClusterNode, 'succeed'>): Promise<string> {
  const lines = (await node.succeed(FLANNELD_CONTAINERS)).trim().split('\n');
  const flanneld = lines.map((line) => line.split(' ')).find(([, path]) => path?.endsWith('/flanneld'));
  if (!flanneld) return DEFAULT_SUBNET_FILE;
  const [pid, , ...args] = flanneld;
  const at = args.findIndex((arg) => /^--?subnet-file(=|$)/.test(arg));
  const given = at < 0 ? undefined : args[at]?.includes('=') ? args[at]?.split('=')[1] : args[at + 1];
  return `/proc/${pid}/root${given || DEFAULT_SUBNET_FILE}`;
}
