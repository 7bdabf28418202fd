import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { lab, leftovers, onlyRun, runLab } from './helpers.js';

/**
 * The docker-multinode install with Flocker on two VMs with the emulated payload: the headline
 * scenario passes for both Kubernetes versions and both flannel backends (the second with
 * LAB_E2E_FULL=1), and each check fails, naming what broke, when the kept cluster is broken by
 * hand. No private key reaches a report.
 */
const labSync = (...args: string[]) => {
  const result = spawnSync(lab, args, { env: { ...process.env, LAB_SKIP_SETUP: '1' }, encoding: 'utf8', timeout: 900_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
};

/** Every file of a report folder whose text holds one of the needles (base64 forms too: the HTML report embeds attachments). */
function filesHolding(dir: string, needles: string[]): string[] {
  const forms = needles.flatMap((needle) => [needle, ...[0, 1, 2].map((shift) => Buffer.from(`${'x'.repeat(shift)}${needle}`).toString('base64').slice(4 * Math.ceil(shift / 3) + 4, -4))]);
  const found: string[] = [];
  const walk = (path: string) => {
    if (statSync(path).isDirectory()) return readdirSync(path).forEach((entry) => walk(join(path, entry)));
    const text = readFileSync(path).toString('latin1');
    if (forms.some((form) => form.length >= 8 && text.includes(form))) found.push(path);
  };
  walk(dir);
  return found;
}
// Like ssh, lab ssh hands the words to the node's shell: one string is one command line.
const sshOn = (runId: string, node: string, command: string) => labSync('ssh', node, '--run', runId, '--', command);
/** Polls a shell condition on a node (bounded): exit 0 as soon as it holds. */
const until = (runId: string, node: string, condition: string, tries: number, pause = 2) =>
  sshOn(runId, node, `for i in $(seq ${tries}); do ${condition} && exit 0; sleep ${pause}; done; exit 1`);
// A two-node install with its checks takes 20-25 minutes under emulation on 2 cores (the negatives as long again).
const RUN_MS = 30 * 60_000;
const phaseSeconds = (summary: ReturnType<typeof onlyRun>['summary']) => Object.fromEntries(summary.phases.map((p) => [p.name, p.seconds]));

describe('docker-multinode with Flocker', () => {
  test(
    'scenarios/two-node-flocker (v1.3.0, udp) passes; kubectl works on the kept cluster; a missing image, kube-dns at zero, a stopped proxy, a foreign client certificate, a stopped dataset agent, an unnamed dataset, flannel and the kubelet stopped fail what sees them; no key in the report',
    async () => {
      const result = await runLab(['run', '--keep=always', 'scenarios/two-node-flocker']);
      const { runId, dir, summary } = onlyRun(result);
      const keys: string[] = [];
      try {
        expect(result.code, result.output).toBe(0);
        console.log(`two-node-flocker v1.3.0 phases (s): ${JSON.stringify(phaseSeconds(summary))}`);
        expect(summary.checks.filter((c) => c.status === 'passed').map((c) => c.name)).toEqual(
          expect.arrayContaining([
            expect.stringContaining('answers the API user\'s certificate and refuses a client without one'),
            expect.stringContaining('every node is listed in /v1/state/nodes'),
            expect.stringContaining('runs on worker, and a file it writes is on the node under /flocker/<dataset_id>'),
            expect.stringContaining('the pod deleted and made again on worker finds the file again'),
            expect.stringContaining('the dataset deleted, its mount disappears from the node'),
          ]),
        );
        // Keys on the nodes are private to root; their text is what must never reach the report.
        for (const [node, file] of [['master', '/etc/flocker/control-service.key'], ['worker', '/etc/flocker/node.key'], ['worker', '/etc/flocker/kubernetes.key']] as const) {
          const key = sshOn(runId, node, `stat -c %a ${file} && sed -n 2p ${file}`);
          expect(key.out.split('\n')[0], `${file} on ${node}`).toBe('600');
          keys.push(key.out.split('\n')[1] ?? '');
        }
        expect(summary.checks.filter((c) => c.status === 'passed').map((c) => c.name)).toEqual(
          expect.arrayContaining([
            expect.stringContaining('worker is registered as 10.77.0.12 and Ready'),
            expect.stringContaining('container on master pings container on worker'),
            expect.stringContaining('container on worker pings container on master'),
          ]),
        );
        expect(result.output).toContain('+++ [');
        expect(summary.checks.filter((c) => c.status === 'passed').map((c) => c.name)).toEqual(
          expect.arrayContaining([
            expect.stringContaining('nslookup kubernetes.default in the pod on master answers 10.0.0.1 from 10.0.0.10'),
            expect.stringContaining('nslookup kubernetes.default in the pod on worker answers 10.0.0.1 from 10.0.0.10'),
            expect.stringContaining('lab-dns-check resolves to its service IP from the pod on worker, and one of its pods answers'),
          ]),
        );

        // Debian's kubectl on the master, as a user of the kept cluster runs it: v1.3 deployed kube-dns by itself.
        const system = sshOn(runId, 'master', 'kubectl get pods --namespace=kube-system -l k8s-app=kube-dns -o json');
        expect(system.code, system.err).toBe(0);
        const dnsPods = JSON.parse(system.out).items as { metadata: { name: string }; status: { phase: string } }[];
        expect(dnsPods.map((p) => p.status.phase)).toEqual(['Running']);
        expect(dnsPods[0]?.metadata.name).toMatch(/^kube-dns-v11-[a-z0-9]{5}$/);

        // An image that is not in the bundle: the pod stays Pending with the kubelet's image error in its status.
        const missing = sshOn(
          runId,
          'master',
          'kubectl create -f - <<EOF\napiVersion: v1\nkind: Pod\nmetadata:\n  name: not-bundled\nspec:\n  containers:\n  - name: app\n    image: registry.example/not-bundled:1.0\nEOF',
        );
        expect(missing.out, missing.err).toContain('pod/not-bundled created');
        const waiting = until(
          runId,
          'master',
          "kubectl get pod not-bundled -o jsonpath='{.status.phase} {.spec.nodeName} {.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}' | grep -E 'ImagePull'",
          60,
        );
        expect(waiting.code, `${waiting.out}${waiting.err}`).toBe(0);
        expect(waiting.out).toMatch(/^Pending 10\.77\.0\.1[12] (ErrImagePull|ImagePullBackOff): /);
        expect(waiting.out).toContain('registry.example/not-bundled:1.0');
        const node = waiting.out.includes('10.77.0.11') ? 'master' : 'worker';
        expect(sshOn(runId, 'master', 'kubectl delete pod not-bundled').out).toContain('pod "not-bundled" deleted');
        // Deleting the pod removes its containers (the pause container was running) from its node.
        const gone = until(runId, node, '[ -z "$(docker ps -aq --filter label=io.kubernetes.pod.name=not-bundled)" ]', 30, 1);
        expect(gone.code, `the pod's containers are still on ${node}`).toBe(0);

        // The worker's proxy stopped, and its rules gone with a reboot: service IPs lead nowhere from
        // that node's pods, so the lookup through 10.0.0.10 fails there and still works on the master.
        const proxyDown = sshOn(
          runId,
          'worker',
          "docker stop $(docker ps --format '{{.ID}} {{.Command}}' | awk '/proxy/ {print $1}') >/dev/null && iptables -w -t nat -F KUBE-SERVICES && echo stopped",
        );
        expect(proxyDown.out.trim(), proxyDown.err).toBe('stopped');
        const noProxy = labSync('verify', '--run', runId, '--check', 'dns');
        expect(noProxy.code, noProxy.err).toBe(1);
        expect(noProxy.err).toContain('nslookup kubernetes.default in pod lab-dns-worker on worker did not answer 10.0.0.1 from 10.0.0.10');
        expect(noProxy.err).not.toContain('on master did not answer');
        expect(sshOn(runId, 'worker', "docker start $(docker ps -a --format '{{.ID}} {{.Command}}' | awk '/proxy/ {print $1}')").code).toBe(0);

        // kube-dns scaled to zero: the dns check fails at its lookup, saying why. (It stays at zero: nothing
        // after this needs the cluster DNS.)
        expect(sshOn(runId, 'master', 'kubectl scale rc kube-dns-v11 --namespace=kube-system --replicas=0').out).toContain('scaled');
        const drained = until(runId, 'master', '[ -z "$(kubectl get pods --namespace=kube-system -l k8s-app=kube-dns -o name)" ]', 60);
        expect(drained.code, 'the kube-dns pod was never removed').toBe(0);
        const noDns = labSync('verify', '--run', runId, '--check', 'dns');
        expect(noDns.code, noDns.err).toBe(1);
        expect(noDns.err).toContain('nslookup kubernetes.default in pod lab-dns-master on master did not answer 10.0.0.1 from 10.0.0.10');
        expect(noDns.err).toContain('the kube-dns service has no ready endpoints (no kube-dns pod is running)');

        // A client certificate from another Flocker cluster (lab certs makes one): the check fails at its TLS step.
        const foreign = mkdtempSync(join(tmpdir(), 'lab-foreign-certs-'));
        try {
          const made = labSync('certs', join(foreign, 'set'), '--control-host', '10.77.0.11', '--node', 'elsewhere', '--key-bits', '2048');
          expect(made.code, made.err).toBe(0);
          const b64 = (file: string) => readFileSync(join(foreign, 'set', file)).toString('base64');
          const swap = sshOn(
            runId,
            'master',
            `cp -p /etc/flocker/kubernetes.crt /root/kubernetes.crt.lab && cp -p /etc/flocker/kubernetes.key /root/kubernetes.key.lab && echo ${b64('kubernetes.crt')} | base64 -d > /etc/flocker/kubernetes.crt && echo ${b64('kubernetes.key')} | base64 -d > /etc/flocker/kubernetes.key && echo swapped`,
          );
          expect(swap.out.trim(), swap.err).toBe('swapped');
        } finally {
          rmSync(foreign, { recursive: true, force: true });
        }
        const wrongCert = labSync('verify', '--run', runId, '--check', 'flocker-attach');
        expect(wrongCert.code, wrongCert.err).toBe(1);
        expect(wrongCert.err).toContain("TLS with the API user's certificate /etc/flocker/kubernetes.crt failed: the control service at 10.77.0.11:4523 refused it");
        const restore = sshOn(runId, 'master', 'mv /root/kubernetes.crt.lab /etc/flocker/kubernetes.crt && mv /root/kubernetes.key.lab /etc/flocker/kubernetes.key && echo restored');
        expect(restore.out.trim(), restore.err).toBe('restored');

        // The dataset agent stopped on the pod's node: the dataset never shows up there, and the attach step times out with the plugin's message.
        expect(sshOn(runId, 'worker', 'docker stop flocker-dataset-agent').code).toBe(0);
        const noAgent = labSync('verify', '--run', runId, '--check', 'flocker-attach', '--set', 'FLOCKER_ATTACH_WITHIN=60');
        expect(noAgent.code, noAgent.err).toBe(1);
        expect(noAgent.err).toContain('pod lab-flocker-attach (flocker dataset "lab-flocker-attach") is Pending on worker after 60 s; the flocker volume plugin says: FailedMount');
        expect(noAgent.err).toContain("The volume 'lab-flocker-attach' is not available in Flocker");
        expect(sshOn(runId, 'worker', 'docker start flocker-dataset-agent').code).toBe(0);

        // A dataset made without -m name=...: the pod cannot find it by name, and the check says so with the plugin's error.
        const unnamed = labSync('verify', '--run', runId, '--check', 'flocker-attach', '--set', 'FLOCKER_ATTACH_UNNAMED=true', '--set', 'FLOCKER_ATTACH_WITHIN=60');
        expect(unnamed.code, unnamed.err).toBe(1);
        expect(unnamed.err).toContain('the flocker volume plugin says: FailedMount: Unable to mount volumes for pod "lab-flocker-attach_default(');
        expect(unnamed.err).toContain('Configuration not found by Name');

        // flannel's udp tunnel dies with flanneld: cross-host container traffic stops both ways.
        const stop = sshOn(
          runId,
          'worker',
          'docker -H unix:///var/run/docker-bootstrap.sock stop $(docker -H unix:///var/run/docker-bootstrap.sock ps -q --filter ancestor=gcr.io/google_containers/flannel-amd64:0.5.5)',
        );
        expect(stop.code, stop.err).toBe(0);
        const noFlannel = labSync('verify', '--run', runId, '--check', 'flannel-ping', '--check', 'node-registration');
        expect(noFlannel.code).toBe(1);
        expect(noFlannel.err).toContain('master -> worker: the container on master cannot reach the container on worker');
        expect(noFlannel.err).toContain('worker -> master: the container on worker cannot reach the container on master');
        expect(noFlannel.err).not.toMatch(/node-registration.*failed/);

        // The kubelet's heartbeats stop: after the grace period the controller-manager marks the node, and the check names it.
        const kill = sshOn(
          runId,
          'worker',
          'docker stop $(docker ps -q --filter ancestor=gcr.io/google_containers/hyperkube-amd64:v1.3.0) >/dev/null && echo stopped',
        );
        expect(kill.out.trim(), kill.err).toBe('stopped');
        const unknown = until(runId, 'master', 'curl -fsS localhost:8080/api/v1/nodes/10.77.0.12 | grep -q \'"status":"Unknown"\'', 90);
        expect(unknown.code, 'the controller-manager never marked the worker').toBe(0);
        // (The node is already marked: the check need not give it its usual 60 s to come back.)
        const noKubelet = labSync('verify', '--run', runId, '--check', 'node-registration', '--set', 'NODE_READY_TIMEOUT=20');
        expect(noKubelet.code).toBe(1);
        expect(noKubelet.err).toContain(
          'node worker (10.77.0.12) is not Ready after 20 s: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)',
        );
      } finally {
        labSync('down', runId);
      }
      expect(leftovers(runId)).toEqual([]);
      expect(keys.every((k) => k.length > 40), 'the keys read from the nodes').toBe(true);
      expect(filesHolding(dir, ['PRIVATE KEY', ...keys]), 'report files holding private key material').toEqual([]);
    },
    RUN_MS + 45 * 60_000,
  );

  // One run covers the second version and the second backend: v1.3.0/udp above, v1.2.4/vxlan
  // here (the backend as scenarios/two-node-vxlan sets it, from the caller's environment). CI's
  // 90 minutes hold one install with Flocker and its negatives beside the other e2e files, not
  // two: this one runs with LAB_E2E_FULL=1 (and is reported as skipped without it).
  test.runIf(process.env.LAB_E2E_FULL === '1')(
    'K8S_VERSION=v1.2.4 FLANNEL_BACKEND=vxlan from the environment, on scenarios/two-node-flocker: v1.2.4 with the manual DNS step and Flocker, and the vxlan backend',
    async () => {
      const result = await runLab(['run', 'scenarios/two-node-flocker'], { env: { K8S_VERSION: 'v1.2.4', FLANNEL_BACKEND: 'vxlan' } });
      const { runId, dir, summary } = onlyRun(result);
      expect(result.code, result.output).toBe(0);
      console.log(`two-node-flocker v1.2.4 vxlan phases (s): ${JSON.stringify(phaseSeconds(summary))}`);
      expect(readFileSync(join(dir, 'logs', 'master', 'provision-master.log'), 'utf8')).toMatch(
        /^\+\+\+ \[\d{4} [\d:]{8}\] K8S_VERSION is set to: v1\.2\.4$/m,
      );
      const passed = summary.checks.filter((c) => c.status === 'passed').map((c) => c.name);
      expect(passed).toContainEqual(expect.stringContaining('version is v1.2.4'));
      // v1.2 leaves kube-dns to the user: the guide's manual skydns.yaml step created it, and the dns check passed.
      expect(readFileSync(join(dir, 'logs', 'master', 'provision-dns-addon.log'), 'utf8')).toContain('replicationcontroller/kube-dns-v8 created');
      expect(passed).toContainEqual(expect.stringContaining('nslookup kubernetes.default in the pod on worker answers 10.0.0.1 from 10.0.0.10'));
      expect(passed).toContainEqual(expect.stringContaining('flannel.1 agree with it'));
      expect(passed).toContainEqual(expect.stringContaining('container on worker pings container on master'));
      expect(passed).toContainEqual(expect.stringContaining('the pod deleted and made again on worker finds the file again'));
      expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
      // The containers' logs are kept with the run: flanneld's from the bootstrap daemon, the kubelet's from the main one.
      const containers = readFileSync(join(dir, 'logs', 'worker', 'containers.log'), 'utf8');
      expect(containers).toContain('=== unix:///var/run/docker-bootstrap.sock');
      expect(containers).toMatch(/flanneld\] Allocated lease|flanneld\] Found lease/);
      expect(containers).toMatch(/kubelet\.go\] Successfully registered node 10\.77\.0\.12/);
      expect(leftovers(runId)).toEqual([]);
      expect(filesHolding(dir, ['PRIVATE KEY']), 'report files holding private key material').toEqual([]);
    },
    RUN_MS,
  );
});
