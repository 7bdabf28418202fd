import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { userCaDir } from '../../certs/flocker-ca.js';
import { shellQuote } from '../../remote/ssh.js';
import { notYet, waitFor } from '../../util/wait.js';
import { attach, step, useCluster, type ClusterNode } from '../api.js';
import { apiRequest, apiserverHealthy, inPod, masterOf, setting, type Json } from './kube.js';

/**
 * flocker-attach: the Flocker control service answers the run's API user certificate (and nobody
 * without one); every node's dataset agent is known to it; a dataset created with a name (as
 * `flockerctl create -m name=... -s ... -n <node>` does) is attached to a pod that names it
 * (`flocker: {datasetName}`); a file written in the pod is on the node's /flocker/<dataset_id>
 * and is there again for the pod made anew; with a backend whose volumes travel (openstack: a
 * Cinder volume, hot-plugged by Nova), a pod on another node names the dataset, which moves there
 * with the file (the disk leaves the first node); deleting the dataset unmounts it.
 *
 * Settings (scenario env, or `lab verify --set`): FLOCKER_ATTACH_NODE (default: the first worker),
 * FLOCKER_ATTACH_NAME (the dataset's name), FLOCKER_ATTACH_UNNAMED=true (create the dataset
 * without its name, as a user who forgot `-m name=...`: the pod cannot find it),
 * FLOCKER_ATTACH_WITHIN (seconds the pod has to run, default 180: the plugin alone may wait 120),
 * FLOCKER_ATTACH_IMAGE (the pod's image, default busybox), FLOCKER_DATASET_BACKEND (loopback, the
 * default, or openstack), FLOCKER_MOVE_NODE (where the dataset moves to; default: the first other
 * node). The control service must report the
 * scenario's FLOCKER_VERSION when it names one.
 */
const lab = useCluster();
const env = lab.descriptor.env;
const busybox = setting(lab, 'FLOCKER_ATTACH_IMAGE', 'busybox');
const userDir = userCaDir(env);
const user = env.FLOCKER_USER || 'kubernetes';
const tls = {
  ca: env.FLOCKER_CONTROL_SERVICE_CA_FILE || `${userDir}/cluster.crt`,
  cert: env.FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE || `${userDir}/${user}.crt`,
  key: env.FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE || `${userDir}/${user}.key`,
};
const host = setting(lab, 'FLOCKER_CONTROL_SERVICE_HOST', setting(lab, 'MASTER_IP', ''));
const port = setting(lab, 'FLOCKER_CONTROL_SERVICE_PORT', '4523');
const FLOCKER_API = `https://${host}:${port}/v1`;
const podNode = lab.specs.find((s) => s.name === env.FLOCKER_ATTACH_NODE) ?? lab.specs.find((s) => s.role === 'worker') ?? lab.specs[0];
const moveNode = lab.specs.find((s) => s.name === env.FLOCKER_MOVE_NODE) ?? lab.specs.find((s) => s !== podNode);
const BACKEND = env.FLOCKER_DATASET_BACKEND || 'loopback';
/** Flocker's loopback volumes are files on the node that made them: they never move. */
const MOVES = BACKEND !== 'loopback';
const DATASET_NAME = env.FLOCKER_ATTACH_NAME || 'lab-flocker-attach';
const UNNAMED = env.FLOCKER_ATTACH_UNNAMED === 'true';
const POD = 'lab-flocker-attach';
const MOUNT = '/data';
const SIZE = 134_217_728; // 128 MiB: Flocker's minimum is 64 MiB
const RUNNING_WITHIN_MS = Number(env.FLOCKER_ATTACH_WITHIN || 180) * 1000;
const UNMOUNTED_WITHIN_MS = 60_000;
const pods = '/api/v1/namespaces/default/pods';

const state: {
  answered?: boolean;
  datasetId?: string;
  nodeUuid?: string;
  ran?: boolean;
  written?: boolean;
  /** The node the dataset is mounted on now (the pod's, until it moves). */
  on?: string;
  /** The mounted disk's virtio serial link on the pod's node (openstack). */
  disk?: string;
  token: string;
} = {
  token: `written by ${POD} ${randomBytes(6).toString('hex')}`,
};

/** The control service's REST API from the master, as the seeds' curl examples call it. */
async function flocker(
  master: ClusterNode,
  method: string,
  path: string,
  body?: Json,
  certificate = true,
): Promise<{ code: number; json: Json; error?: string }> {
  const identity = certificate ? `--cert ${shellQuote(tls.cert)} --key ${shellQuote(tls.key)}` : '';
  const data = body === undefined ? '' : `-H 'content-type: application/json' --data-binary @-`;
  const result = await master.exec(
    `curl -sS --max-time 30 --cacert ${shellQuote(tls.ca)} ${identity} -X ${method} ${data} -w '\\n%{http_code}' ${shellQuote(`${FLOCKER_API}${path}`)}`,
    { timeout: 45, ...(body === undefined ? {} : { stdin: JSON.stringify(body) }) },
  );
  const lines = result.stdout.trimEnd().split('\n');
  const code = Number(lines.pop());
  if (result.code !== 0 || !code) return { code: 0, json: {}, error: result.stderr.trim() || `curl exit ${result.code}` };
  try {
    return { code, json: JSON.parse(lines.join('\n') || '{}') as Json };
  } catch {
    return { code, json: { text: lines.join('\n') } };
  }
}

/**
 * curl's verdict on a request the control service must refuse. Refused means the server ended it
 * in TLS: an alert in the handshake (curl 35), or the connection closed right after it (52, 56).
 * curl failing on this side (a missing or unreadable CA, certificate or key: 58, 77, ...) is no
 * refusal: the check is broken, and says so.
 */
async function refused(master: ClusterNode, identity: string): Promise<{ refused: boolean; detail: string }> {
  const result = await master.exec(
    `curl -sS --max-time 30 ${identity} -o /dev/null -w '%{http_code}' ${shellQuote(`${FLOCKER_API}/version`)}`,
    { timeout: 45 },
  );
  const detail = `curl exit ${result.code}, HTTP ${result.stdout.trim() || '-'}: ${result.stderr.trim()}`;
  if (result.code === 0) return { refused: false, detail: `it answered HTTP ${result.stdout.trim()}` };
  if ([35, 52, 56].includes(result.code)) return { refused: true, detail };
  throw new Error(`the refusal could not be tested: curl failed on the master itself, not at the control service (${detail})`);
}

/** The check's pod: busybox sleeping, the dataset at /data, on the node given (the chosen one first). */
const flockerPod = (address = podNode?.address): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: POD, namespace: 'default', labels: { 'lab-check': 'flocker-attach' } },
  spec: {
    containers: [
      {
        name: 'busybox',
        image: busybox,
        command: ['sleep', '3600'],
        imagePullPolicy: 'IfNotPresent',
        volumeMounts: [{ name: 'data', mountPath: MOUNT }],
      },
    ],
    volumes: [{ name: 'data', flocker: { datasetName: DATASET_NAME } }],
    nodeSelector: { 'kubernetes.io/hostname': address },
  },
});

/** The pod's newest FailedMount (or other warning) event: where the volume plugin's error shows. */
async function lastWarning(master: ClusterNode, uid: string | undefined): Promise<string | undefined> {
  const events = ((await apiRequest(master, 'GET', '/api/v1/namespaces/default/events')).json.items ?? []) as Json[];
  const mine = events
    .filter((e) => e.involvedObject?.name === POD && (!uid || e.involvedObject?.uid === uid) && e.type === 'Warning')
    .sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));
  const last = mine.at(-1);
  return last ? `${last.reason}: ${last.message} (x${last.count})` : undefined;
}

async function createPod(master: ClusterNode, address?: string): Promise<void> {
  const created = await apiRequest(master, 'POST', pods, flockerPod(address));
  expect(created.code, `creating pod ${POD}: ${created.json.message ?? ''}`).toBe(201);
}

/**
 * What the dataset agent on a node said last about the check's dataset, or about its backend as a
 * whole (`cannot ...`: Keystone or Cinder errors show there, as in Flocker's log); an agent that
 * died at start-up, with Flocker's "main function encountered error" and its traceback's last line
 * (the exception).
 */
async function agentComplaint(nodeName: string | undefined): Promise<string | undefined> {
  if (!nodeName) return undefined;
  const node = await lab.node(nodeName);
  const logs = await node.exec('docker logs --tail 200 flocker-dataset-agent 2>&1', { timeout: 30 });
  const lines = logs.stdout.split('\n').map((line) => line.trimEnd());
  const died = lines.lastIndexOf('main function encountered error');
  if (died >= 0) {
    // The traceback's frames are indented; the first line after them is the exception.
    const exception = lines.slice(died + 1).find((line) => line && !line.startsWith(' ') && !line.startsWith('Traceback'));
    return `main function encountered error: ${exception ?? lines[died + 1] ?? ''}`.trim();
  }
  return lines.findLast(
    (line) => line.includes('cannot ') || (state.datasetId !== undefined && line.includes(`dataset ${state.datasetId}`)),
  );
}

/**
 * With a backend whose volumes are hot-plugged disks: whether a disk the dataset is mounted from
 * has left the node. Linux keeps the file system of an unplugged disk mounted (on a device that is
 * gone) until it is unmounted, and what the pod reads or writes there then fails.
 */
async function diskLeft(node: ClusterNode): Promise<string | undefined> {
  if (!MOVES || !state.datasetId) return undefined;
  const path = `/flocker/${state.datasetId}`;
  const sources = await node.exec(`for s in $(findmnt -n -o SOURCE --mountpoint ${path}); do [ -b "$s" ] || echo "$s"; done`, {
    timeout: 20,
  });
  const gone = sources.stdout.split('\n').filter(Boolean);
  if (!gone.length) return undefined;
  const link = state.disk ? (await node.exec(`readlink -e ${shellQuote(state.disk)}`, { timeout: 20 })).stdout.trim() : '';
  return (
    `${path} is mounted from ${gone.join(', ')}, which is gone from ${node.name}: the dataset's volume was unplugged while it was mounted there` +
    (state.disk ? ` (its disk ${state.disk} ${link ? `names ${link} now: it was plugged in again` : 'is gone too'})` : '')
  );
}

/** A test's body whose failure also says whether the dataset's disk left the node under it. */
async function onDisk(nodeName: string | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const left = nodeName ? await diskLeft(await lab.node(nodeName)).catch(() => undefined) : undefined;
    if (left && error instanceof Error) error.message = `${error.message}; ${left}`;
    throw error;
  }
}

async function podRunning(master: ClusterNode, on = podNode): Promise<Json> {
  let pod: Json = {};
  try {
    await waitFor({ what: `pod ${POD}`, timeoutMs: RUNNING_WITHIN_MS, intervalMs: 3000 }, async () => {
      pod = (await apiRequest(master, 'GET', `${pods}/${POD}`)).json;
      return pod.status?.phase === 'Running' ? true : notYet(JSON.stringify(pod.status ?? {}));
    });
  } catch {
    const warning = await lastWarning(master, pod.metadata?.uid);
    const waiting = ((pod.status?.containerStatuses ?? []) as Json[]).map((c) => c.state?.waiting).find(Boolean);
    const agent = await agentComplaint(on?.name).catch(() => undefined);
    throw new Error(
      `pod ${POD} (flocker dataset "${DATASET_NAME}") is ${pod.status?.phase ?? 'missing'} on ${on?.name} after ${RUNNING_WITHIN_MS / 1000} s` +
        (warning
          ? `; the flocker volume plugin says: ${warning}`
          : waiting
            ? `: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
            : '') +
        (agent ? `; the dataset agent on ${on?.name} says: ${agent}` : ''),
    );
  }
  return pod;
}

async function deletePod(master: ClusterNode, node: ClusterNode): Promise<void> {
  await apiRequest(master, 'DELETE', `${pods}/${POD}`);
  await waitFor({ what: `the containers of ${POD} to leave ${node.name}`, timeoutMs: 120_000, intervalMs: 3000 }, async () => {
    const left = await node.exec(`docker ps -aq --filter label=io.kubernetes.pod.name=${POD}`, { timeout: 30 });
    return left.stdout.trim() === '' ? true : notYet(left.stdout.trim());
  });
}

/** Datasets of an earlier run of this check (same name, or made by it unnamed), deleted. */
async function forgetEarlierDatasets(master: ClusterNode): Promise<void> {
  const datasets = ((await flocker(master, 'GET', '/configuration/datasets')).json as unknown as Json[]) ?? [];
  for (const dataset of Array.isArray(datasets) ? datasets : [])
    if (!dataset.deleted && (dataset.metadata?.name === DATASET_NAME || dataset.metadata?.['lab-check'] === 'flocker-attach'))
      await flocker(master, 'DELETE', `/configuration/datasets/${dataset.dataset_id}`);
}

afterAll(async () => {
  const master = await masterOf(lab).catch(() => undefined);
  if (!master) return;
  await apiRequest(master, 'DELETE', `${pods}/${POD}`).catch(() => undefined);
  if (state.datasetId) await flocker(master, 'DELETE', `/configuration/datasets/${state.datasetId}`).catch(() => undefined);
});

describe('flocker-attach', () => {
  test(`the control service at ${FLOCKER_API} answers the API user's certificate`, async () => {
    const master = await masterOf(lab);
    const version = await step(
      `GET ${FLOCKER_API}/version with ${tls.cert} (TLS: client certificate user-${user}, CA ${tls.ca})`,
      async () => {
        const answer = await flocker(master, 'GET', '/version');
        if (answer.error || answer.code !== 200) {
          const subject = await master.exec(`openssl x509 -in ${shellQuote(tls.cert)} -noout -subject -issuer 2>&1 || true`, {
            timeout: 20,
          });
          throw new Error(
            `TLS with the API user's certificate ${tls.cert} failed: the control service at ${host}:${port} ${answer.error ? `refused it: ${answer.error}` : `answered ${answer.code}`}` +
              (subject.stdout.trim() ? ` (${subject.stdout.trim().replace(/\n/g, '; ')})` : ''),
          );
        }
        return answer.json;
      },
    );
    await attach('GET /v1/version', JSON.stringify(version));
    state.answered = true;
    expect(version.flocker, 'the control service reports no Flocker version').toBeTypeOf('string');
    if (env.FLOCKER_VERSION)
      expect(version.flocker, `the control service reports Flocker ${version.flocker}, the scenario installed ${env.FLOCKER_VERSION}`).toBe(
        env.FLOCKER_VERSION,
      );
  });

  test('the control service refuses a client without a certificate', async () => {
    const master = await masterOf(lab);
    const refusal = await step(`GET ${FLOCKER_API}/version without a client certificate is refused in the TLS handshake`, () =>
      refused(master, `--cacert ${shellQuote(tls.ca)}`),
    );
    expect(refusal.refused, `the control service answered a client without a certificate: ${refusal.detail}`).toBe(true);
  });

  test('the control service refuses a node certificate on its API port', async () => {
    const master = await masterOf(lab);
    const refusal = await step(`GET ${FLOCKER_API}/version with the node certificate /etc/flocker/node.crt (CN node-...) is refused`, () =>
      refused(master, '--cacert /etc/flocker/cluster.crt --cert /etc/flocker/node.crt --key /etc/flocker/node.key'),
    );
    expect(refusal.refused, `the control service answered a node certificate on its API port: ${refusal.detail}`).toBe(true);
  });

  test('every node is listed in /v1/state/nodes', async () => {
    expect(state.answered, 'the control service did not answer the API user (the first test says why)').toBe(true);
    const master = await masterOf(lab);
    let listed: Json[] = [];
    await step('GET /v1/state/nodes lists every node by its address', () =>
      waitFor({ what: 'every node in /v1/state/nodes', timeoutMs: 60_000, intervalMs: 3000 }, async () => {
        listed = (await flocker(master, 'GET', '/state/nodes')).json as unknown as Json[];
        if (!Array.isArray(listed)) return notYet('no answer');
        const missing = lab.specs.filter((s) => !listed.some((n) => n.host === s.address));
        return missing.length === 0 ? true : notYet(`missing: ${missing.map((s) => `${s.name} (${s.address})`).join(', ')}`);
      }).catch(async () => {
        const missing = lab.specs.filter((s) => !(Array.isArray(listed) ? listed : []).some((n) => n.host === s.address));
        const said = await Promise.all(
          missing.map(async (s) => {
            const complaint = await agentComplaint(s.name).catch(() => undefined);
            return complaint ? `; the dataset agent on ${s.name} says: ${complaint}` : '';
          }),
        );
        throw new Error(
          `the control service does not list ${missing.map((s) => `${s.name} (${s.address})`).join(', ')}: is its dataset agent running? (listed: ${JSON.stringify(listed)})${said.join('')}`,
        );
      }),
    );
    await attach('/v1/state/nodes', JSON.stringify(listed, null, 2));
    state.nodeUuid = listed.find((n) => n.host === podNode?.address)?.uuid;
  });

  test(`a dataset ${UNNAMED ? 'without a name' : `named ${DATASET_NAME}`} is created on ${podNode?.name}`, async () => {
    const master = await masterOf(lab);
    expect(state.nodeUuid, `${podNode?.name} has no Flocker node UUID`).toBeTruthy();
    await forgetEarlierDatasets(master);
    const metadata = UNNAMED ? { 'lab-check': 'flocker-attach' } : { name: DATASET_NAME };
    const body = { primary: state.nodeUuid, maximum_size: SIZE, metadata };
    const created = await step(
      `POST /v1/configuration/datasets ${JSON.stringify(body)} (flockerctl create${UNNAMED ? '' : ` -m name=${DATASET_NAME}`} -s 128M -n ${state.nodeUuid?.slice(0, 8)})`,
      () => flocker(master, 'POST', '/configuration/datasets', body),
    );
    expect(created.code, `creating the dataset: ${created.error ?? JSON.stringify(created.json)}`).toBe(201);
    state.datasetId = String(created.json.dataset_id);
    await attach('dataset', JSON.stringify(created.json, null, 2));
  });

  test(`a pod with flocker: {datasetName: ${DATASET_NAME}} runs on ${podNode?.name}`, async () => {
    expect(state.datasetId, 'no dataset was created (the test above says why)').toBeTruthy();
    const master = await masterOf(lab);
    await step(`GET ${'/healthz'} on ${master.name}`, () => apiserverHealthy(master));
    await apiRequest(master, 'DELETE', `${pods}/${POD}`);
    await step(`create pod ${POD} (${busybox}, volume flocker ${DATASET_NAME} at ${MOUNT}) on ${podNode?.name}`, () => createPod(master));
    const started = Date.now();
    await step(`wait for pod ${POD} to be Running (the dataset attached to ${podNode?.name})`, () => podRunning(master));
    await attach('seconds from create to Running', String(Math.round((Date.now() - started) / 100) / 10));
    state.ran = true;
  });

  test(`the dataset is a file system on ${MOVES ? 'a Cinder volume' : 'a loop device'} under /flocker/<dataset_id> on ${podNode?.name}, holding what the pod writes`, async () => {
    expect(state.ran, `pod ${POD} never ran (the test above says why)`).toBe(true);
    await onDisk(podNode?.name, async () => {
      const node = await lab.node(podNode?.name ?? '');
      const path = `/flocker/${state.datasetId}`;
      const mount = await step(
        `${path} is a file system on ${MOVES ? 'a hot-plugged virtio disk' : 'a loop device'} on ${node.name}`,
        async () => {
          // openstack: the mounted device is a virtio disk whose serial (udev's by-id link) names a volume.
          const device = MOVES
            ? `dev=$(findmnt -n -o SOURCE --mountpoint ${path}) && for l in /dev/disk/by-id/virtio-*; do [ "$(readlink -f "$l")" = "$dev" ] && echo "$l"; done | grep .`
            : `losetup -l -n -O NAME,BACK-FILE | grep -F ${shellQuote(state.datasetId ?? '')}`;
          const result = await node.exec(`findmnt -n -o SOURCE,FSTYPE,TARGET --mountpoint ${path} && ${device}`, { timeout: 30 });
          expect(
            result.code,
            `${path} is not mounted from ${MOVES ? 'a virtio disk with a volume serial' : 'a loop device'} on ${node.name}: ${result.stdout}${result.stderr}`,
          ).toBe(0);
          return result.stdout.trim();
        },
      );
      if (MOVES) state.disk = mount.split('\n').at(-1);
      state.on = node.name;
      await attach(`mount of ${path}`, mount);
      const write = await step(`write a file in ${MOUNT} inside the pod`, () =>
        inPod(node, POD, 'busybox', `sh -c ${shellQuote(`echo '${state.token}' > ${MOUNT}/lab-check.txt && sync`)}`),
      );
      expect(write.code, `writing ${MOUNT}/lab-check.txt in the pod failed: ${write.output}`).toBe(0);
      const onNode = await step(`read ${path}/lab-check.txt on ${node.name}`, () =>
        node.exec(`cat ${path}/lab-check.txt`, { timeout: 20 }),
      );
      expect(onNode.stdout.trim(), `${path}/lab-check.txt on ${node.name} (${onNode.stderr.trim()})`).toBe(state.token);
      state.written = true;
    });
  });

  test(`the pod deleted and made again on ${podNode?.name} finds the file again`, async () => {
    expect(state.written, `no file was written in the dataset (the tests above say why)`).toBe(true);
    await onDisk(podNode?.name, async () => {
      const master = await masterOf(lab);
      const node = await lab.node(podNode?.name ?? '');
      await step(`delete pod ${POD} and wait for its containers to go`, () => deletePod(master, node));
      await step(`create pod ${POD} again`, () => createPod(master));
      await step(`wait for pod ${POD} to be Running again`, () => podRunning(master));
      const read = await step(`read ${MOUNT}/lab-check.txt inside the new pod`, () =>
        inPod(node, POD, 'busybox', `cat ${MOUNT}/lab-check.txt`),
      );
      expect(read.output, `${MOUNT}/lab-check.txt in the new pod (exit ${read.code})`).toBe(state.token);
    });
  });

  test(`the dataset moves to ${moveNode?.name} with its file: a pod there names it, its disk leaves ${podNode?.name}`, async (context) => {
    if (!MOVES) {
      context.skip(
        `the ${BACKEND} backend cannot move a dataset: its volumes stay on the node that made them, as Flocker's did (openstack's move)`,
      );
      return;
    }
    expect(state.written, `no file was written in the dataset (the tests above say why)`).toBe(true);
    expect(moveNode, 'the scenario has no other node to move the dataset to').toBeTruthy();
    const master = await masterOf(lab);
    const from = await lab.node(podNode?.name ?? '');
    const to = await lab.node(moveNode?.name ?? '');
    await step(`delete pod ${POD} on ${from.name}`, () => deletePod(master, from));
    await step(`create pod ${POD} on ${to.name} (the same dataset)`, () => createPod(master, to.spec.address));
    await step(`wait for pod ${POD} to be Running on ${to.name} (Flocker moved the dataset there)`, () => podRunning(master, moveNode));
    state.on = to.name;
    const read = await step(`read ${MOUNT}/lab-check.txt inside the pod on ${to.name}`, () =>
      inPod(to, POD, 'busybox', `cat ${MOUNT}/lab-check.txt`),
    );
    if (read.output !== state.token) {
      // Whether the disk or the pod is at fault: the same file read on the node, outside the pod.
      const path = `/flocker/${state.datasetId}`;
      const direct = await to.exec(`findmnt -n -o SOURCE,TARGET --mountpoint ${path}; timeout 15 cat ${path}/lab-check.txt`, { timeout: 30 });
      expect(
        read.output,
        `${MOUNT}/lab-check.txt in the pod on ${to.name} (exit ${read.code}); on ${to.name} itself ${path} says (exit ${direct.code}): ${(direct.stdout + direct.stderr).trim() || 'nothing'}`,
      ).toBe(state.token);
    }
    const gone = await step(`the disk ${state.disk} is gone from ${from.name}`, () =>
      from.exec(`test -e ${shellQuote(state.disk ?? '')}`, { timeout: 20 }),
    );
    expect(gone.code, `${state.disk} is still on ${from.name} after the dataset moved`).not.toBe(0);
  });

  test('the dataset deleted, its mount disappears from the node', async () => {
    expect(state.ran, `pod ${POD} never ran, so the dataset was never mounted (the tests above say why)`).toBe(true);
    const master = await masterOf(lab);
    const node = await lab.node(state.on ?? podNode?.name ?? '');
    const path = `/flocker/${state.datasetId}`;
    await step(`delete pod ${POD}`, () => deletePod(master, node));
    const deleted = await step(`DELETE /v1/configuration/datasets/${state.datasetId}`, () =>
      flocker(master, 'DELETE', `/configuration/datasets/${state.datasetId}`),
    );
    expect(deleted.code, `deleting the dataset: ${deleted.error ?? JSON.stringify(deleted.json)}`).toBe(200);
    expect(deleted.json.deleted, 'the deleted dataset says deleted: true').toBe(true);
    await step(`wait for ${path} to be unmounted on ${node.name} and gone from /v1/state/datasets`, () =>
      waitFor({ what: `${path} to be unmounted`, timeoutMs: UNMOUNTED_WITHIN_MS, intervalMs: 3000 }, async () => {
        const mounted = await node.exec(`findmnt -n --mountpoint ${path}`, { timeout: 20 });
        const states = (await flocker(master, 'GET', '/state/datasets')).json as unknown as Json[];
        const reported = Array.isArray(states) && states.some((s) => s.dataset_id === state.datasetId);
        return mounted.code !== 0 && !reported
          ? true
          : notYet(
              `${mounted.code === 0 ? `still mounted: ${mounted.stdout.trim()}` : 'unmounted'}; ${reported ? 'still in /v1/state/datasets' : 'gone from the state'}`,
            );
      }),
    );
    state.datasetId = undefined;
  });
});
