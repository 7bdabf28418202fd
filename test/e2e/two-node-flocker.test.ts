import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { flocker, FLOCKER_VERSION } from './breaks/flocker.js';
import { busyboxGone, dns, flannel, registration } from './breaks/multinode.js';
import { containerOf, failedAt, fromOneReset, LOOPBACK_NOT_PASSED, useKeptRun } from './helpers.js';

/**
 * One kept cluster for every check of the main scenario: scenarios/two-node-flocker (v1.3.0,
 * flannel udp; the multinode layers, the run's certificates, the control service and the agents)
 * passes every check, and no private key reaches its report; node-failure cuts its worker off and
 * brings it back. Then each step of node-registration, flannel-ping, dns and flocker-attach is
 * broken its own way on it (breaks/multinode.ts, breaks/flocker.ts), one breakage per test; a
 * reset (30 to 150 s) is shared by breakages that leave each other's steps alone, so five resets
 * serve the eighteen that CI runs (nightly adds busybox gone from the worker, 3 minutes, and five
 * more).
 */
const kept = useKeptRun(['scenarios/two-node-flocker']);
const keys: string[] = [];

/** Every file of a report folder whose text holds one of the needles (base64 forms too: the HTML report embeds attachments). */
function filesHolding(dir: string, needles: string[]): string[] {
  const forms = needles.flatMap((needle) => [
    needle,
    ...[0, 1, 2].map((shift) =>
      Buffer.from(`${'x'.repeat(shift)}${needle}`)
        .toString('base64')
        .slice(4 * Math.ceil(shift / 3) + 4, -4),
    ),
  ]);
  const found: string[] = [];
  const walk = (path: string) => {
    if (statSync(path).isDirectory()) return readdirSync(path).forEach((entry) => walk(join(path, entry)));
    const text = readFileSync(path).toString('latin1');
    if (forms.some((form) => form.length >= 8 && text.includes(form))) found.push(path);
  };
  walk(dir);
  return found;
}

afterAll(() => {
  // The kept run's report was written when its run ended: no key may be in it.
  expect(
    keys.every((k) => k.length > 40),
    'the keys read from the nodes',
  ).toBe(true);
  expect(filesHolding(kept.dir, ['PRIVATE KEY', ...keys]), 'report files holding private key material').toEqual([]);
});

describe('scenarios/two-node-flocker (v1.3.0), kept', () => {
  test('every check passes, flocker-attach step by step; the keys on the nodes are 0600', () => {
    const { run, summary } = kept;
    expect(summary.verdict).toBe('passed');
    // The loopback backend cannot move a dataset: that step says so, skipped (never a silent pass).
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual(LOOPBACK_NOT_PASSED);
    expect(summary.checks.filter((c) => c.check === 'flocker-attach').map((c) => c.name.replace(/^flocker-attach > /, ''))).toEqual([
      "the control service at https://10.77.0.11:4523/v1 answers the API user's certificate",
      'the control service refuses a client without a certificate',
      'the control service refuses a node certificate on its API port',
      'every node is listed in /v1/state/nodes',
      'a dataset named lab-flocker-attach is created on worker',
      'a pod with flocker: {datasetName: lab-flocker-attach} runs on worker',
      'the dataset is a file system on a loop device under /flocker/<dataset_id> on worker, holding what the pod writes',
      'the pod deleted and made again on worker finds the file again',
      'the dataset moves to master with its file: a pod there names it, its disk leaves worker',
      'the dataset deleted, its mount disappears from the node',
    ]);
    // The certificates were made by the run's own step, after the multinode steps.
    expect(summary.steps.find((s) => s.step === 'flocker-certificates')?.status).toBe('passed');
    for (const [node, file] of [
      ['master', '/etc/flocker/control-service.key'],
      ['worker', '/etc/flocker/node.key'],
      ['worker', '/etc/flocker/kubernetes.key'],
    ] as const) {
      const [mode = '', line = ''] = run.succeed(node, `stat -c %a ${file} && sed -n 2p ${file}`).split('\n');
      expect(mode, `${file} on ${node}`).toBe('600');
      keys.push(line);
    }
  });
});

describe('the multinode install under it (v1.3.0, udp)', () => {
  test('Debian kubectl works on the master: v1.3 made kube-dns itself, and a missing image leaves a pod ErrImagePull', () => {
    const { run, summary } = kept;
    expect(summary.verdict).toBe('passed');
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual(LOOPBACK_NOT_PASSED);
    expect(summary.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'node-registration > worker is registered as 10.77.0.12, Ready and posting its status',
        'flannel-ping > container on worker pings container on master',
        'dns > nslookup kubernetes.default in the pod on worker answers 10.0.0.1 from 10.0.0.10',
      ]),
    );
    // v1.3 deployed kube-dns by itself.
    const dns = JSON.parse(run.succeed('master', 'kubectl get pods --namespace=kube-system -l k8s-app=kube-dns -o json')) as {
      items: { metadata: { name: string }; status: { phase: string } }[];
    };
    expect(dns.items.map((p) => p.status.phase)).toEqual(['Running']);
    expect(dns.items[0]?.metadata.name).toMatch(/^kube-dns-v11-[a-z0-9]{5}$/);
    // An image that is not in the bundle: the pod stays Pending with the kubelet's image error.
    expect(
      run.succeed(
        'master',
        'kubectl create -f - <<EOF\napiVersion: v1\nkind: Pod\nmetadata:\n  name: not-bundled\nspec:\n  containers:\n  - name: app\n    image: registry.example/not-bundled:1.0\nEOF',
      ),
    ).toContain('pod/not-bundled created');
    const waiting =
      "kubectl get pod not-bundled -o jsonpath='{.status.phase} {.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}'";
    expect(run.until('master', `${waiting} | grep -qE 'ImagePull'`, 60)).toBe(true);
    expect(run.succeed('master', waiting)).toMatch(/^Pending (ErrImagePull|ImagePullBackOff): .*registry\.example\/not-bundled:1\.0/);
  });
});

describe('checks told other things than the cluster has (nothing broken, no reset)', () => {
  test('the scenario names another version than the apiserver reports', () => {
    const { run } = kept;
    const message = failedAt(run.verify(['node-registration'], { K8S_VERSION: 'v1.2.4' }), 'node-registration', 'version is v1.2.4');
    expect(message).toContain('the apiserver reports v1.3.0, the scenario installed v1.2.4');
  });

  test('the scenario names another Flocker version than the control service reports', () => {
    const { run } = kept;
    const message = failedAt(
      run.verify(['flocker-attach'], { FLOCKER_VERSION: '1.13.0' }),
      'flocker-attach',
      "answers the API user's certificate",
    );
    expect(message).toContain(`the control service reports Flocker ${FLOCKER_VERSION}, the scenario installed 1.13.0`);
  });

  test('the check makes its dataset without -m name=...: the pod cannot find it by name', () => {
    const { run } = kept;
    const message = failedAt(
      run.verify(['flocker-attach'], { FLOCKER_ATTACH_UNNAMED: 'true', FLOCKER_ATTACH_WITHIN: '60' }),
      'flocker-attach',
      'runs on worker',
    );
    expect(message).toContain('the flocker volume plugin says: FailedMount: Unable to mount volumes for pod "lab-flocker-attach_default(');
    expect(message).toContain('Configuration not found by Name');
  });
});

describe('node-failure: the worker cut off its cluster link', () => {
  test('flannel traffic stops, the node controller marks the worker after its grace period, and both come back with the link', () => {
    const verified = kept.run.verify(['node-failure']);
    expect(verified.code, verified.err).toBe(0);
    expect(verified.checks.map((c) => `${c.name.replace(/^node-failure > /, '')}: ${c.status}`)).toEqual([
      'a container on the master pings a container on worker (busybox:latest): passed',
      "worker's cluster link cut: the container on the master no longer reaches the one on worker: passed",
      'the node controller marks worker Unknown ("Kubelet stopped posting node status.") once its grace period passes: passed',
      "worker's link restored: the ping gets through again, and worker is Ready and posting: passed",
    ]);
  });
});

// Breakages that leave each other's steps alone share a reset (see fromOneReset); one that
// takes the cluster's API down goes last.
fromOneReset(
  kept,
  "from reset 1: the worker's flanneld and its agent's mounts, the network config, the kube-dns service, a foreign API certificate, etcd",
  [
    flannel.flanneldStopped,
    flocker.privateMounts,
    flannel.networkConfig,
    dns.serviceDeleted,
    flocker.foreignUserCert,
    registration.etcdStopped,
  ],
);
fromOneReset(kept, "from reset 2: the worker's lease, a control service that takes anyone, the apiserver", [
  flannel.leaseGone,
  flocker.answersWithoutCert,
  registration.apiserverPaused,
]);
fromOneReset(kept, "from reset 3: the worker's subnet.env, a control service that takes node certificates, the worker unregistered", [
  flannel.subnetEnv,
  flocker.takesNodeCert,
  registration.workerUnregistered,
]);
fromOneReset(kept, "from reset 4: the flannel MTU, the control service's configuration, the worker's Docker", [
  flannel.mtu,
  flocker.configUnsaved,
  registration.workerDockerStopped,
]);
// The stopped agent's 120 s expiry runs while flannel's port and docker0 are broken and checked.
fromOneReset(kept, "from reset 5: the worker's dataset agent, the udp backend's port, docker0 on the worker", [
  flocker.agentStopped,
  flannel.port,
  flannel.docker0,
  flocker.agentExpired,
]);

// Nightly (LAB_E2E_FULL=1): the steps after dns's lookups and flocker-attach's first pod, and node-failure's negative.
describe.runIf(process.env.LAB_E2E_FULL === '1')('nightly', () => {
  fromOneReset(kept, "from a reset: traffic to the pods' port, the dataset's files", [dns.podPortRejected, flocker.filesRemoved]);
  fromOneReset(kept, "from a reset: kube-dns scaled to zero, the dataset's mount kept busy", [dns.scaledToZero, flocker.mountBusy]);
  fromOneReset(kept, 'from a reset: the controller-manager paused (the dns check)', [dns.controllerManagerPaused]);
  fromOneReset(kept, 'from a reset: busybox on the worker', [busyboxGone]);
  describe('from a reset: the controller-manager paused (node-failure)', () => {
    test('with the controller-manager paused, nothing marks the cut-off worker: the check fails at that step', () => {
      const { run } = kept;
      run.reset();
      run.succeed('master', `docker pause ${containerOf('docker', 'hyperkube controller-manager')} >/dev/null`);
      const message = failedAt(
        run.verify(['node-failure'], { NODE_LOST_WITHIN: '60' }),
        'node-failure',
        'the node controller marks worker Unknown',
      );
      expect(message).toMatch(
        /worker \(10\.77\.0\.12\) is not marked 60 s after its cluster link was cut: it says Ready=True \(KubeletReady: kubelet is posting ready status\), its last heartbeat \d+ s old; is the controller-manager's node controller running\?/,
      );
    });
  });
});
