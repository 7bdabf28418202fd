import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { failedAt, labSync, type Breakage, type KeptRun } from '../helpers.js';

/**
 * Each step of flocker-attach broken its own way on a kept two-node-flocker cluster, one breakage
 * per test (which share a reset is the test file's choice); `nightly` ones run with LAB_E2E_FULL=1.
 * (A dataset made without a name breaks nothing on the cluster: that test is with the version
 * mismatches, which need no reset.)
 */
export const FLOCKER_VERSION = '1.14.0';

/**
 * Puts `openssl s_server` in the control service's place on the master: the same certificate and
 * port, serving a /v1/version, but checking client certificates only as `verify` says (-verify:
 * asked for, not needed; -Verify: needed, from the cluster's CA, any CN).
 */
function impostor(run: KeptRun, verify: '-verify' | '-Verify'): void {
  run.succeed(
    'master',
    `docker stop flocker-control-service >/dev/null && mkdir -p /root/impostor/v1 && echo '{"flocker": "${FLOCKER_VERSION}", "impostor": true}' > /root/impostor/v1/version && ` +
      `cd /root/impostor && setsid -f openssl s_server -quiet -accept 4523 -cert /etc/flocker/control-service.crt -key /etc/flocker/control-service.key -CAfile /etc/flocker/cluster.crt ${verify} 1 -WWW </dev/null >/dev/null 2>&1 && ` +
      'for i in $(seq 20); do ss -Htln "sport = :4523" | grep -q . && exit 0; sleep 0.5; done; exit 1',
  );
}

/** The control service's node list, as the check's API user reads it on the master. */
const LISTED_NODES =
  'curl -fsS --cacert /etc/flocker/cluster.crt --cert /etc/flocker/kubernetes.crt --key /etc/flocker/kubernetes.key https://10.77.0.11:4523/v1/state/nodes';

export const flocker = {
  foreignUserCert: {
    check: 'flocker-attach',
    title: "the API user's certificate from another cluster: refused at the TLS step",
    run: (run) => {
      const foreign = mkdtempSync(join(tmpdir(), 'lab-foreign-certs-'));
      try {
        const made = labSync('certs', join(foreign, 'set'), '--control-host', '10.77.0.11', '--node', 'elsewhere', '--key-bits', '2048');
        expect(made.code, made.err).toBe(0);
        const b64 = (file: string) => readFileSync(join(foreign, 'set', file)).toString('base64');
        run.succeed(
          'master',
          `echo ${b64('kubernetes.crt')} | base64 -d > /etc/flocker/kubernetes.crt && echo ${b64('kubernetes.key')} | base64 -d > /etc/flocker/kubernetes.key`,
        );
      } finally {
        rmSync(foreign, { recursive: true, force: true });
      }
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', "answers the API user's certificate");
      expect(message).toContain(
        "TLS with the API user's certificate /etc/flocker/kubernetes.crt failed: the control service at 10.77.0.11:4523 refused it",
      );
    },
  },
  answersWithoutCert: {
    check: 'flocker-attach',
    title: 'a server in its place that answers clients without a certificate',
    run: (run) => {
      impostor(run, '-verify');
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'refuses a client without a certificate');
      expect(message).toMatch(/the control service answered a client without a certificate: it answered HTTP 200/);
    },
  },
  takesNodeCert: {
    check: 'flocker-attach',
    title: 'a server in its place that takes any certificate of the cluster, a node one too',
    run: (run) => {
      impostor(run, '-Verify');
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'refuses a node certificate on its API port');
      expect(message).toMatch(/the control service answered a node certificate on its API port: it answered HTTP 200/);
    },
  },
  agentStopped: {
    check: 'flocker-attach',
    title: "the worker's dataset agent stopped: at first the node is still listed, and the pod waits with the plugin's error",
    run: (run) => {
      run.succeed('worker', 'docker stop flocker-dataset-agent >/dev/null');
      // As Flocker 1.13/1.14 did: still listed at first, gone once nothing came from the agent for 120 s (agentExpired).
      expect(run.succeed('master', LISTED_NODES)).toContain('10.77.0.12');
      // While it is listed, the dataset is made for it, and no agent ever reports it.
      const waited = failedAt(run.verify(['flocker-attach'], { FLOCKER_ATTACH_WITHIN: '60' }), 'flocker-attach', 'runs on worker');
      expect(waited).toContain(
        'pod lab-flocker-attach (flocker dataset "lab-flocker-attach") is Pending on worker after 60 s; the flocker volume plugin says: FailedMount',
      );
      expect(waited).toContain("The volume 'lab-flocker-attach' is not available in Flocker");
    },
  },
  agentExpired: {
    check: 'flocker-attach',
    // Runs later from the same reset as agentStopped, so that other breakages fill Flocker's 120 s expiry.
    title: "the worker's dataset agent stopped (agentStopped), after Flocker's 120 s expiry: the node is not listed",
    run: (run) => {
      expect(run.until('master', `! ${LISTED_NODES} | grep -q 10.77.0.12`, 45, 4)).toBe(true);
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'every node is listed in /v1/state/nodes');
      expect(message).toMatch(/the control service does not list worker \(10\.77\.0\.12\): is its dataset agent running\?/);
    },
  },
  configUnsaved: {
    check: 'flocker-attach',
    title: 'the control service cannot save its configuration: the dataset is not created',
    run: (run) => {
      run.succeed('master', 'chattr +i /var/lib/flocker');
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'a dataset named lab-flocker-attach is created on worker');
      // A 500 with the incident identifier flocker's REST API gave for an internal failure.
      expect(message).toMatch(/creating the dataset: "[0-9a-f-]{36},\/1": expected 500 to be 201/);
    },
  },
  privateMounts: {
    check: 'flocker-attach',
    title: "the worker's agent without shared mount propagation: its mounts never reach the node or the pod",
    run: (run) => {
      run.succeed(
        'worker',
        'image=$(docker inspect -f "{{.Config.Image}}" flocker-dataset-agent) && docker rm -f flocker-dataset-agent >/dev/null && ' +
          'docker run -d --name=flocker-dataset-agent --restart=always --net=host --privileged -v /etc/flocker:/etc/flocker:ro -v /dev:/dev -v /flocker:/flocker -v /var/lib/flocker:/var/lib/flocker "$image" >/dev/null',
      );
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'a file system on a loop device');
      expect(message).toMatch(/\/flocker\/[0-9a-f-]{36} is not mounted from a loop device on worker/);
    },
  },
  filesRemoved: {
    check: 'flocker-attach',
    nightly: true,
    title: "something on the worker removes the dataset's files when its pod goes: the new pod does not find the file",
    run: (run) => {
      // Deletes lab-check.txt from every mounted dataset once no container of the check's pod runs.
      run.succeed(
        'worker',
        'setsid -f sh -c \'while :; do [ -z "$(docker ps -q --filter label=io.kubernetes.pod.name=lab-flocker-attach)" ] && rm -f /flocker/*/lab-check.txt; sleep 1; done\' </dev/null >/dev/null 2>&1',
      );
      const message = failedAt(
        run.verify(['flocker-attach']),
        'flocker-attach',
        'the pod deleted and made again on worker finds the file again',
      );
      expect(message).toMatch(/\/data\/lab-check\.txt in the new pod \(exit 1\)/);
    },
  },
  mountBusy: {
    check: 'flocker-attach',
    nightly: true,
    title: "a process on the worker keeps the dataset's mount busy: deleting the dataset leaves it mounted",
    run: (run) => {
      // Moves into every dataset mount that appears (once each), and stays there.
      run.succeed(
        'worker',
        'setsid -f sh -c \'while :; do for d in $(findmnt -rn -o TARGET | grep "^/flocker/"); do m=/run/busy-${d##*/}; [ -e $m ] || { touch $m; (cd "$d" && exec sleep 3600) & }; done; sleep 1; done\' </dev/null >/dev/null 2>&1',
      );
      const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'the dataset deleted, its mount disappears from the node');
      expect(message).toMatch(/to be unmounted.*still mounted/s);
    },
  },
} satisfies Record<string, Breakage>;
