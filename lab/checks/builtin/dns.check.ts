import { afterAll, describe, expect, test } from 'vitest';
import { notYet, waitFor } from '../../util/wait.js';
import { attach, step, useCluster, type ClusterNode } from '../api.js';
import { apiRequest, apiserverHealthy, getJson, inPod, API, masterOf, setting, type Json } from './kube.js';

/**
 * dns (the DNS addon's own test, "How do I test if it is working?"): a busybox pod that sleeps,
 * on every node; inside it `nslookup kubernetes.default` is answered by the cluster DNS at
 * 10.0.0.10 with the kubernetes service's 10.0.0.1. Then a service of the check's own, in front of
 * two pods of an RC: its short name resolves to its cluster IP from every node, and a request to
 * that name is answered by one of its pods (so the proxy carries it there). Pods get
 * DNS_RUNNING_WITHIN seconds (default 240) to run; DNS_IMAGE (default busybox, the guide's) is their image;
 * v1.3's addon manager gets DNS_SERVICE_WITHIN seconds (default 120) to create the kube-dns service;
 * the first lookup of a name gets DNS_ANSWER_WITHIN seconds (default 120: a kube-dns just restored
 * with its cluster, on a slow day, took over 60 s to answer the first node), later ones 20.
 */
const lab = useCluster();
const DNS_IP = '10.0.0.10';
const MASTER_SERVICE_IP = '10.0.0.1';
const RUNNING_WITHIN_MS = Number(setting(lab, 'DNS_RUNNING_WITHIN', '240')) * 1000;
const ANSWER_WITHIN_MS = Number(setting(lab, 'DNS_ANSWER_WITHIN', '120')) * 1000;
const LATER_ANSWER_WITHIN_MS = 20_000;
const SERVICE_WITHIN_MS = Number(setting(lab, 'DNS_SERVICE_WITHIN', '120')) * 1000;
const SERVICE = 'lab-dns-check';
const busybox = setting(lab, 'DNS_IMAGE', 'busybox');
const podName = (node: string) => `lab-dns-${node.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 60);
const pods = `/api/v1/namespaces/default/pods`;

/** The guide's test pod, pinned to one node by its hostname label. */
const busyboxPod = (node: string, address: string): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: podName(node), namespace: 'default', labels: { 'lab-check': 'dns' } },
  spec: {
    containers: [{ name: 'busybox', image: busybox, command: ['sleep', '3600'], imagePullPolicy: 'IfNotPresent' }],
    restartPolicy: 'Always',
    nodeSelector: { 'kubernetes.io/hostname': address },
  },
});

/** Two pods answering HTTP with their own name, behind the check's service. */
const webController: Json = {
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name: SERVICE, namespace: 'default' },
  spec: {
    replicas: 2,
    selector: { app: SERVICE },
    template: {
      metadata: { labels: { app: SERVICE } },
      spec: {
        containers: [
          {
            name: 'web',
            image: busybox,
            imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'],
            ports: [{ name: 'http', containerPort: 8080 }],
          },
        ],
      },
    },
  },
};
const webService: Json = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: SERVICE, namespace: 'default' },
  spec: { selector: { app: SERVICE }, ports: [{ port: 80, targetPort: 'http' }] },
};

const runningPods = new Map<string, Json>();

/** busybox nslookup's answer: the server it asked and the addresses after the first `Name:`. */
export function parseNslookup(output: string): { server?: string; addresses: string[] } {
  const server = /^Server:\s+(\S+)/m.exec(output)?.[1];
  const answer = output.slice(output.search(/^Name:/m) >= 0 ? output.search(/^Name:/m) : output.length);
  const addresses = [...answer.matchAll(/^Address(?: \d+)?:\s+([0-9.]+)/gm)].map((m) => m[1] as string);
  return { server, addresses };
}

/** What a failed lookup needs next to it: does kube-dns have anything to answer with? */
async function dnsDiagnosis(master: ClusterNode): Promise<string> {
  const endpoints = await getJson(master, `${API}/api/v1/namespaces/kube-system/endpoints/kube-dns`);
  const ready = ((endpoints?.subsets ?? []) as Json[]).flatMap((s) => ((s.addresses ?? []) as Json[]).map((a) => a.ip));
  return ready.length ? `kube-dns endpoints: ${ready.join(', ')}` : 'the kube-dns service has no ready endpoints (no kube-dns pod is running)';
}

/**
 * The first lookup of a name gives kube-dns time to come up and publish it; once it has had that
 * time, the same name from the other nodes needs little.
 */
const looked = new Set<string>();
/** Nodes whose pod got no answer for kubernetes.default: their later lookups would only wait to fail the same way. */
const unanswered = new Set<string>();

async function lookup(node: ClusterNode, name: string, expected: string): Promise<void> {
  let last = '';
  const timeoutMs = looked.has(name) ? LATER_ANSWER_WITHIN_MS : ANSWER_WITHIN_MS;
  looked.add(name);
  try {
    await waitFor({ what: `${name} from ${node.name}`, timeoutMs, intervalMs: 3000 }, async () => {
      const { output } = await inPod(node, podName(node.name), 'busybox', `nslookup ${name}`);
      last = output;
      const parsed = parseNslookup(output);
      return parsed.server?.startsWith(DNS_IP) && parsed.addresses.includes(expected) ? true : notYet(output);
    });
  } catch {
    unanswered.add(node.name);
    const diagnosis = await dnsDiagnosis(await masterOf(lab));
    throw new Error(
      `nslookup ${name} in pod ${podName(node.name)} on ${node.name} did not answer ${expected} from ${DNS_IP} within ${timeoutMs / 1000} s; ${diagnosis}; last output:\n${last}`,
    );
  } finally {
    await attach(`nslookup ${name} on ${node.name}`, last);
  }
}

/** The check's own RC (two web pods) and the service in front of them, made anew. */
async function createWebService(master: ClusterNode): Promise<void> {
  await apiRequest(master, 'DELETE', `/api/v1/namespaces/default/services/${SERVICE}`);
  await apiRequest(master, 'DELETE', `/api/v1/namespaces/default/replicationcontrollers/${SERVICE}`);
  for (const [what, path, object] of [
    ['replication controller', '/api/v1/namespaces/default/replicationcontrollers', webController],
    ['service', '/api/v1/namespaces/default/services', webService],
  ] as const) {
    const created = await step(`create ${what} ${SERVICE}`, () => apiRequest(master, 'POST', path, object));
    expect(created.code, `creating ${what} ${SERVICE}: ${created.json.message ?? ''}`).toBe(201);
  }
}

afterAll(async () => {
  const master = await masterOf(lab).catch(() => undefined);
  if (!master) return;
  for (const path of [
    `/api/v1/namespaces/default/services/${SERVICE}`,
    `/api/v1/namespaces/default/replicationcontrollers/${SERVICE}`,
    ...lab.specs.map((s) => `${pods}/${podName(s.name)}`),
  ])
    await apiRequest(master, 'DELETE', path).catch(() => undefined);
});

describe('dns', () => {
  test(`kube-dns is the service ${DNS_IP} in kube-system`, async () => {
    const master = await masterOf(lab);
    await step(`GET ${API}/healthz on ${master.name} answers ok`, () => apiserverHealthy(master));
    // v1.3's addon manager creates it shortly after the apiserver answers.
    let service = { code: 0, json: {} as Json };
    await step(`GET the kube-dns service (waiting up to ${SERVICE_WITHIN_MS / 1000} s)`, () =>
      waitFor({ what: 'the kube-dns service', timeoutMs: SERVICE_WITHIN_MS, intervalMs: 3000 }, async () => {
        service = await apiRequest(master, 'GET', '/api/v1/namespaces/kube-system/services/kube-dns');
        return service.code === 200 ? true : notYet(`${service.code} ${service.json.message ?? ''}`);
      }).catch(() => undefined),
    );
    const k8s = lab.descriptor.env.K8S_VERSION ?? '';
    expect(
      service.code,
      `there is no kube-dns service in kube-system${/^v1\.[0-2]\./.test(k8s) ? ` (with ${k8s} the DNS addon is created by hand: the guide's skydns.yaml step, docker-multinode/dns-addon.sh)` : ''}`,
    ).toBe(200);
    expect(service.json.spec?.clusterIP, 'the kube-dns service IP').toBe(DNS_IP);
  });

  test('a busybox pod that sleeps is Running on every node', async () => {
    const master = await masterOf(lab);
    const started = Date.now();
    for (const spec of lab.specs) {
      await apiRequest(master, 'DELETE', `${pods}/${podName(spec.name)}`);
      const created = await step(`create pod ${podName(spec.name)} (${busybox}, sleep 3600) on ${spec.name}`, () =>
        apiRequest(master, 'POST', pods, busyboxPod(spec.name, spec.address)),
      );
      expect(created.code, `creating pod ${podName(spec.name)}: ${created.json.message ?? ''}`).toBe(201);
    }
    // The service's pods start meanwhile (containers start slowly under emulation).
    await createWebService(master);
    const took: Record<string, number> = {};
    for (const spec of lab.specs) {
      let pod: Json | undefined;
      await step(`wait for pod ${podName(spec.name)} to be Running on ${spec.name}`, async () => {
        try {
          await waitFor({ what: `pod ${podName(spec.name)}`, timeoutMs: RUNNING_WITHIN_MS, intervalMs: 2000 }, async () => {
            pod = (await apiRequest(master, 'GET', `${pods}/${podName(spec.name)}`)).json;
            return pod.status?.phase === 'Running' ? true : notYet(JSON.stringify(pod.status ?? {}));
          });
        } catch {
          const waiting = ((pod?.status?.containerStatuses ?? []) as Json[]).map((c) => c.state?.waiting).find(Boolean);
          const scheduled = ((pod?.status?.conditions ?? []) as Json[]).find((c) => c.type === 'PodScheduled' && c.status === 'False');
          throw new Error(
            `pod ${podName(spec.name)} is ${pod?.status?.phase ?? 'missing'} on ${pod?.spec?.nodeName || '(no node)'} after ${RUNNING_WITHIN_MS / 1000} s` +
              (waiting ? `: ${waiting.reason}: ${waiting.message}` : scheduled ? `: ${scheduled.message}` : ''),
          );
        }
      });
      took[spec.name] = Math.round((Date.now() - started) / 100) / 10;
      expect(pod?.spec?.nodeName, `pod ${podName(spec.name)} runs on`).toBe(spec.address);
      runningPods.set(spec.name, pod as Json);
    }
    await attach('seconds from create to Running', JSON.stringify(took, null, 2));
  });

  for (const spec of lab.specs) {
    test(`nslookup kubernetes.default in the pod on ${spec.name} answers ${MASTER_SERVICE_IP} from ${DNS_IP}`, async () => {
      expect(runningPods.has(spec.name), `no busybox pod runs on ${spec.name}`).toBe(true);
      const node = await lab.node(spec.name);
      await step(`nslookup kubernetes.default in ${podName(spec.name)}`, () => lookup(node, 'kubernetes.default', MASTER_SERVICE_IP));
    });
  }

  test(`the check's service ${SERVICE} has two pods behind it`, async () => {
    const master = await masterOf(lab);
    let endpoints: Json | undefined;
    await step(`wait for two ready endpoints of ${SERVICE}`, () =>
      waitFor({ what: `endpoints of ${SERVICE}`, timeoutMs: RUNNING_WITHIN_MS, intervalMs: 2000 }, async () => {
        endpoints = (await apiRequest(master, 'GET', `/api/v1/namespaces/default/endpoints/${SERVICE}`)).json;
        const ready = ((endpoints?.subsets ?? []) as Json[]).flatMap((s) => (s.addresses ?? []) as Json[]);
        return ready.length === 2 ? true : notYet(JSON.stringify(endpoints));
      }),
    );
    await attach('endpoints', JSON.stringify(endpoints, null, 2));
  });

  for (const spec of lab.specs) {
    test(`${SERVICE} resolves to its service IP from the pod on ${spec.name}, and one of its pods answers`, async () => {
      expect(runningPods.has(spec.name), `no busybox pod runs on ${spec.name}`).toBe(true);
      expect(unanswered.has(spec.name), `the cluster DNS did not answer in the pod on ${spec.name} (the lookup of kubernetes.default above says why)`).toBe(false);
      const master = await masterOf(lab);
      const node = await lab.node(spec.name);
      const service = (await apiRequest(master, 'GET', `/api/v1/namespaces/default/services/${SERVICE}`)).json;
      const ip = String(service.spec?.clusterIP);
      await step(`nslookup ${SERVICE} in ${podName(spec.name)} (search path default.svc.cluster.local)`, () => lookup(node, SERVICE, ip));
      const web = ((await apiRequest(master, 'GET', `${pods}?labelSelector=app%3D${SERVICE}`)).json.items ?? []) as Json[];
      const names = web.map((p) => String(p.metadata.name));
      // (Debian's busybox wget crashes with -T: the exec's own timeout bounds it.)
      const answer = await step(`GET http://${SERVICE}/ from ${podName(spec.name)}`, () => inPod(node, podName(spec.name), 'busybox', `wget -q -O - http://${SERVICE}/`));
      await attach(`http://${SERVICE}/ from ${spec.name}`, answer.output);
      expect(answer.code, `GET http://${SERVICE}/ (${ip}:80) from the pod on ${spec.name} failed (exit ${answer.code}): ${answer.output}`).toBe(0);
      expect(names, `http://${SERVICE}/ (${ip}:80) from ${spec.name} was answered by "${answer.output}", not by one of its pods`).toContain(
        answer.output.split('\n').pop(),
      );
    });
  }
});
