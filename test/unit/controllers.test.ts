import { describe, expect, test } from 'vitest';
import type { Json } from '../../payloads/hyperkube/client.js';
import { endpointSubsets } from '../../payloads/hyperkube/endpoints.js';
import { orphans, podFromTemplate, replicaPlan } from '../../payloads/hyperkube/replication.js';
import { NodeMonitor } from '../../payloads/hyperkube/controllers.js';
import { chooseNode } from '../../payloads/hyperkube/scheduler.js';
import { matches, parseSelector, SelectorError } from '../../payloads/hyperkube/selectors.js';
import { serviceEnv } from '../../payloads/hyperkube/pod-runner.js';

const node = (name: string, ready = true, labels: Record<string, string> = {}): Json => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown' }] },
});
const pod = (name: string, extra: Json = {}): Json => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}`, labels: { app: 'web' }, creationTimestamp: '2026-11-22T10:00:00Z', ...extra.metadata },
  spec: { containers: [{ name: 'web', image: 'busybox', ports: [{ name: 'http', containerPort: 8080 }] }], ...extra.spec },
  status: { phase: 'Running', ...extra.status },
});

describe('node controller: when a node is stale', () => {
  const node = (heartbeat?: string, status = 'True') => ({
    metadata: { name: '10.77.0.12', creationTimestamp: '2026-01-01T00:00:00Z' },
    status: heartbeat ? { conditions: [{ type: 'Ready', status, lastHeartbeatTime: heartbeat }] } : {},
  });
  const t0 = Date.parse('2026-01-01T00:10:00Z');

  test('a node is stale once no new heartbeat was seen for the grace period, on the controller\'s own clock', () => {
    const monitor = new NodeMonitor(40_000, 60_000);
    expect(monitor.stale(node('2026-01-01T00:09:59Z'), t0)).toBeUndefined();
    // New heartbeats keep it fresh whatever their own times say (a kubelet whose clock is off).
    expect(monitor.stale(node('2020-01-01T00:00:00Z'), t0 + 30_000)).toBeUndefined();
    expect(monitor.stale(node('2020-01-01T00:00:10Z'), t0 + 60_000)).toBeUndefined();
    expect(monitor.stale(node('2020-01-01T00:00:10Z'), t0 + 99_000)).toBeUndefined();
    expect(monitor.stale(node('2020-01-01T00:00:10Z'), t0 + 101_000)).toEqual({
      reason: 'NodeStatusUnknown',
      message: 'Kubelet stopped posting node status.',
      silentMs: 41_000,
    });
    // Marked already: nothing more to do until the kubelet posts again.
    expect(monitor.stale(node('2020-01-01T00:00:10Z', 'Unknown'), t0 + 120_000)).toBeUndefined();
  });

  test("the controller's own clock jumping forward makes every node stale once, as in 1.2/1.3", () => {
    const monitor = new NodeMonitor(40_000, 60_000);
    expect(monitor.stale(node('2026-01-01T00:09:59Z'), t0)).toBeUndefined();
    expect(monitor.stale(node('2026-01-01T00:09:59Z'), t0 + 3_600_000)?.reason).toBe('NodeStatusUnknown');
    // The next heartbeat it sees counts from its own now.
    expect(monitor.stale(node('2026-01-01T01:10:05Z'), t0 + 3_605_000)).toBeUndefined();
  });

  test('a node that never posted its status has the startup grace period from its creation', () => {
    const monitor = new NodeMonitor(40_000, 60_000);
    const created = Date.parse('2026-01-01T00:00:00Z');
    expect(monitor.stale(node(), created + 59_000)).toBeUndefined();
    expect(monitor.stale(node(), created + 61_000)).toMatchObject({ reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.' });
  });
});

describe('scheduler: where a pending pod goes', () => {
  test('only Ready nodes that match its nodeSelector are candidates', () => {
    const nodes = [node('10.77.0.11'), node('10.77.0.12', false), node('10.77.0.13', true, { disk: 'ssd' })];
    expect(chooseNode(pod('a', { spec: { nodeSelector: { disk: 'ssd' } } }), nodes, [])).toEqual({ node: '10.77.0.13' });
    expect(chooseNode(pod('b', { spec: { nodeSelector: { 'kubernetes.io/hostname': '10.77.0.11' } } }), nodes, [])).toEqual({ node: '10.77.0.11' });
    const nowhere = chooseNode(pod('c', { spec: { nodeSelector: { disk: 'nvme' } } }), nodes, []);
    expect(nowhere.node).toBeUndefined();
    expect(nowhere).toMatchObject({ reason: 'pod (c) failed to fit in any node: NodeNotReady (1), MatchNodeSelector (2)' });
    expect(chooseNode(pod('d'), [], [])).toMatchObject({ reason: 'no nodes available to schedule pods' });
  });

  test('replicas of one controller spread over the nodes, then the emptier node wins', () => {
    const owner = { ownerReferences: [{ uid: 'rc-1', kind: 'ReplicationController', controller: true }] };
    const nodes = [node('a'), node('b')];
    const placed = [
      pod('web-1', { metadata: owner, spec: { nodeName: 'a' } }),
      pod('other-1', { metadata: { labels: { app: 'db' } }, spec: { nodeName: 'b' } }),
      pod('other-2', { metadata: { labels: { app: 'db' } }, spec: { nodeName: 'b' } }),
    ];
    // b has more pods, but none of this RC: spreading the RC comes first.
    expect(chooseNode(pod('web-2', { metadata: owner }), nodes, placed)).toEqual({ node: 'b' });
    expect(chooseNode(pod('lonely', { metadata: { labels: { app: 'x' } } }), nodes, placed)).toEqual({ node: 'a' });
  });
});

describe('replication manager: reconciling an RC with its pods', () => {
  const rc: Json = {
    metadata: { name: 'web', namespace: 'default', uid: 'rc-uid' },
    spec: { replicas: 3, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'busybox' }] } } },
  };

  test('too few: create the difference; finished pods and other namespaces do not count', () => {
    const pods = [pod('web-1'), pod('web-2', { status: { phase: 'Succeeded' } }), pod('web-3', { metadata: { namespace: 'other' } })];
    expect(replicaPlan(rc, pods)).toEqual({ create: 2, remove: [] });
  });

  test('too many: unscheduled first, then pending, then the newest go', () => {
    const pods = [
      pod('old-running', { spec: { nodeName: 'a' } }),
      pod('new-running', { metadata: { creationTimestamp: '2026-11-22T11:00:00Z' }, spec: { nodeName: 'a' } }),
      pod('pending', { spec: { nodeName: 'b' }, status: { phase: 'Pending' } }),
      pod('unscheduled', { status: { phase: 'Pending' } }),
      pod('mid-running', { metadata: { creationTimestamp: '2026-11-22T10:30:00Z' }, spec: { nodeName: 'b' } }),
    ];
    const plan = replicaPlan({ ...rc, spec: { ...rc.spec, replicas: 1 } }, pods);
    expect(plan.create).toBe(0);
    expect(plan.remove.map((p) => p.metadata.name)).toEqual(['unscheduled', 'pending', 'new-running', 'mid-running']);
    expect(replicaPlan({ ...rc, spec: { ...rc.spec, replicas: 0 } }, pods).remove).toHaveLength(5);
  });

  test('a new pod is the template with a generated name, owned by the RC', () => {
    const created = podFromTemplate(rc);
    expect(created.metadata).toMatchObject({ generateName: 'web-', namespace: 'default', labels: { app: 'web' } });
    expect(created.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ReplicationController', name: 'web', uid: 'rc-uid', controller: true }]);
    expect(JSON.parse(created.metadata.annotations['kubernetes.io/created-by']).reference).toMatchObject({ kind: 'ReplicationController', name: 'web' });
    expect(created.spec).toEqual(rc.spec.template.spec);
    expect(created.spec).not.toBe(rc.spec.template.spec);
  });

  test('pods whose RC was deleted are collected; others stay', () => {
    const owned = podFromTemplate(rc);
    owned.metadata.name = 'web-x';
    expect(orphans([owned, pod('standalone')], [rc])).toEqual([]);
    expect(orphans([owned, pod('standalone')], []).map((p) => p.metadata.name)).toEqual(['web-x']);
  });
});

describe("endpoints controller: a service's endpoints from its selector", () => {
  const service: Json = {
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
  const ready = { type: 'Ready', status: 'True' };

  test('ready pods are addresses, unready ones notReadyAddresses, named target ports resolved', () => {
    const pods = [
      pod('b', { spec: { nodeName: 'n2' }, status: { podIP: '10.1.2.3', conditions: [ready] } }),
      pod('a', { spec: { nodeName: 'n1' }, status: { podIP: '10.1.1.3', conditions: [ready] } }),
      pod('c', { status: { podIP: '10.1.1.4', conditions: [{ type: 'Ready', status: 'False' }] } }),
      pod('no-ip', { status: { conditions: [ready] } }),
      pod('other', { metadata: { labels: { app: 'db' } }, status: { podIP: '10.1.1.9', conditions: [ready] } }),
    ];
    const [subset, ...rest] = endpointSubsets(service, pods);
    expect(rest).toEqual([]);
    expect(subset?.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(subset?.addresses.map((a: Json) => [a.ip, a.nodeName, a.targetRef.name])).toEqual([
      ['10.1.1.3', 'n1', 'a'],
      ['10.1.2.3', 'n2', 'b'],
    ]);
    expect(subset?.notReadyAddresses.map((a: Json) => a.ip)).toEqual(['10.1.1.4']);
  });

  test('a numeric target port, and a port name no container has (that pod is left out)', () => {
    const numeric = { ...service, spec: { ...service.spec, ports: [{ port: 53, protocol: 'UDP' }] } };
    expect(endpointSubsets(numeric, [pod('a', { status: { podIP: '10.1.1.3', conditions: [ready] } })])[0]?.ports).toEqual([{ port: 53, protocol: 'UDP' }]);
    const unnamed = { ...service, spec: { ...service.spec, ports: [{ port: 80, targetPort: 'metrics' }] } };
    expect(endpointSubsets(unnamed, [pod('a', { status: { podIP: '10.1.1.3', conditions: [ready] } })])).toEqual([]);
  });
});

describe('selectors and service variables', () => {
  test('label and field selectors as the v1 API takes them', () => {
    const p = pod('web-1', { metadata: { labels: { app: 'web', tier: 'front' } }, spec: { nodeName: '10.77.0.12' } });
    expect(matches(p, 'app=web,tier!=db', 'spec.nodeName=10.77.0.12')).toBe(true);
    expect(matches(p, 'app in (web,api),!legacy,tier', '')).toBe(true);
    expect(matches(p, 'app notin (web)', '')).toBe(false);
    expect(matches(p, '', 'spec.nodeName=')).toBe(false);
    expect(matches(pod('pending'), '', 'spec.nodeName=')).toBe(true);
    expect(matches(p, '', 'metadata.name!=web-1')).toBe(false);
    expect(() => matches(p, '', 'spec.hostIP=1')).toThrow(SelectorError);
    expect(() => parseSelector('a b c')).toThrow('unable to parse requirement');
  });

  test("the kubelet's service variables: the pod's namespace and the master's kubernetes service", () => {
    const services = [
      { metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.0.0.1', ports: [{ name: 'https', port: 443 }] } },
      { metadata: { name: 'kube-dns', namespace: 'kube-system' }, spec: { clusterIP: '10.0.0.10', ports: [{ name: 'dns', port: 53 }] } },
      { metadata: { name: 'headless', namespace: 'kube-system' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } },
    ];
    expect(serviceEnv(services, 'kube-system')).toEqual([
      'KUBERNETES_SERVICE_HOST=10.0.0.1',
      'KUBERNETES_SERVICE_PORT=443',
      'KUBERNETES_SERVICE_PORT_HTTPS=443',
      'KUBE_DNS_SERVICE_HOST=10.0.0.10',
      'KUBE_DNS_SERVICE_PORT=53',
      'KUBE_DNS_SERVICE_PORT_DNS=53',
    ]);
  });
});
