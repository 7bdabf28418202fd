import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { failedAt, labSync, useKeptRun } from './helpers.js';

/**
 * scenarios/two-node-flocker (v1.3.0): the multinode install (restored from the layers two-node
 * made, when it ran first) plus the run's certificates, the control service and the agents;
 * every check passes, no private key reaches the report. Then each step of flocker-attach is
 * broken its own way on the kept cluster, one test per breakage, each from a reset.
 */
const FLOCKER_VERSION = '1.14.0';

const kept = useKeptRun(['scenarios/two-node-flocker']);
const keys: string[] = [];

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

/**
 * Puts `openssl s_server` in the control service's place on the master: the same certificate and
 * port, serving a /v1/version, but checking client certificates only as `verify` says (-verify:
 * asked for, not needed; -Verify: needed, from the cluster's CA, any CN).
 */
function impostor(verify: '-verify' | '-Verify'): void {
  kept.run.succeed(
    'master',
    `docker stop flocker-control-service >/dev/null && mkdir -p /root/impostor/v1 && echo '{"flocker": "${FLOCKER_VERSION}", "impostor": true}' > /root/impostor/v1/version && ` +
      `cd /root/impostor && setsid -f openssl s_server -quiet -accept 4523 -cert /etc/flocker/control-service.crt -key /etc/flocker/control-service.key -CAfile /etc/flocker/cluster.crt ${verify} 1 -WWW </dev/null >/dev/null 2>&1 && ` +
      'for i in $(seq 20); do ss -Htln "sport = :4523" | grep -q . && exit 0; sleep 0.5; done; exit 1',
  );
}

afterAll(() => {
  // The kept run's report was written when its run ended: no key may be in it.
  expect(keys.every((k) => k.length > 40), 'the keys read from the nodes').toBe(true);
  expect(filesHolding(kept.dir, ['PRIVATE KEY', ...keys]), 'report files holding private key material').toEqual([]);
});

describe('scenarios/two-node-flocker (v1.3.0), kept', () => {
  test('every check passes, flocker-attach step by step; the keys on the nodes are 0600', () => {
    const { run, summary } = kept;
    expect(summary.verdict).toBe('passed');
    expect(summary.checks.filter((c) => c.status !== 'passed')).toEqual([]);
    expect(summary.checks.filter((c) => c.check === 'flocker-attach').map((c) => c.name.replace(/^flocker-attach > /, ''))).toEqual([
      "the control service at https://10.77.0.11:4523/v1 answers the API user's certificate",
      'the control service refuses a client without a certificate',
      'the control service refuses a node certificate on its API port',
      'every node is listed in /v1/state/nodes',
      'a dataset named lab-flocker-attach is created on worker',
      'a pod with flocker: {datasetName: lab-flocker-attach} runs on worker',
      'the dataset is a file system on a loop device under /flocker/<dataset_id> on worker, holding what the pod writes',
      'the pod deleted and made again on worker finds the file again',
      'the dataset deleted, its mount disappears from the node',
    ]);
    // The certificates were made by the run's own step, after the multinode steps.
    expect(summary.steps.find((s) => s.step === 'flocker-certificates')?.status).toBe('passed');
    for (const [node, file] of [['master', '/etc/flocker/control-service.key'], ['worker', '/etc/flocker/node.key'], ['worker', '/etc/flocker/kubernetes.key']] as const) {
      const [mode = '', line = ''] = run.succeed(node, `stat -c %a ${file} && sed -n 2p ${file}`).split('\n');
      expect(mode, `${file} on ${node}`).toBe('600');
      keys.push(line);
    }
  });
});

describe('flocker-attach fails at the step that is broken', () => {
  test('the scenario names another Flocker version than the control service reports', () => {
    const { run } = kept;
    const message = failedAt(run.verify(['flocker-attach'], { FLOCKER_VERSION: '1.13.0' }), 'flocker-attach', "answers the API user's certificate");
    expect(message).toContain(`the control service reports Flocker ${FLOCKER_VERSION}, the scenario installed 1.13.0`);
  });

  test("the API user's certificate from another cluster: refused at the TLS step", () => {
    const { run } = kept;
    run.reset();
    const foreign = mkdtempSync(join(tmpdir(), 'lab-foreign-certs-'));
    try {
      const made = labSync('certs', join(foreign, 'set'), '--control-host', '10.77.0.11', '--node', 'elsewhere', '--key-bits', '2048');
      expect(made.code, made.err).toBe(0);
      const b64 = (file: string) => readFileSync(join(foreign, 'set', file)).toString('base64');
      run.succeed('master', `echo ${b64('kubernetes.crt')} | base64 -d > /etc/flocker/kubernetes.crt && echo ${b64('kubernetes.key')} | base64 -d > /etc/flocker/kubernetes.key`);
    } finally {
      rmSync(foreign, { recursive: true, force: true });
    }
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', "answers the API user's certificate");
    expect(message).toContain("TLS with the API user's certificate /etc/flocker/kubernetes.crt failed: the control service at 10.77.0.11:4523 refused it");
  });

  test('a server in its place that answers clients without a certificate', () => {
    const { run } = kept;
    run.reset();
    impostor('-verify');
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'refuses a client without a certificate');
    expect(message).toMatch(/the control service answered a client without a certificate: it answered HTTP 200/);
  });

  test('a server in its place that takes any certificate of the cluster, a node one too', () => {
    const { run } = kept;
    run.reset();
    impostor('-Verify');
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'refuses a node certificate on its API port');
    expect(message).toMatch(/the control service answered a node certificate on its API port: it answered HTTP 200/);
  });

  test("the worker's dataset agent stopped: after Flocker's 120 s expiry the control service no longer lists the node", () => {
    const { run } = kept;
    run.reset();
    run.succeed('worker', 'docker stop flocker-dataset-agent >/dev/null');
    // As Flocker 1.13/1.14 did: still listed at first, gone once nothing came from the agent for 120 s.
    const listed = `curl -fsS --cacert /etc/flocker/cluster.crt --cert /etc/flocker/kubernetes.crt --key /etc/flocker/kubernetes.key https://10.77.0.11:4523/v1/state/nodes`;
    expect(run.succeed('master', listed)).toContain('10.77.0.12');
    expect(run.until('master', `! ${listed} | grep -q 10.77.0.12`, 45, 4)).toBe(true);
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'every node is listed in /v1/state/nodes');
    expect(message).toMatch(/the control service does not list worker \(10\.77\.0\.12\): is its dataset agent running\?/);
  });

  test("the control service cannot save its configuration: the dataset is not created", () => {
    const { run } = kept;
    run.reset();
    run.succeed('master', 'chattr +i /var/lib/flocker');
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'a dataset named lab-flocker-attach is created on worker');
    expect(message).toMatch(/creating the dataset: /);
    expect(message).not.toContain('201');
  });

  test("the worker's agent stopped just before: the dataset never shows, and the pod waits with the plugin's error", () => {
    const { run } = kept;
    run.reset();
    run.succeed('worker', 'docker stop flocker-dataset-agent >/dev/null');
    const message = failedAt(run.verify(['flocker-attach'], { FLOCKER_ATTACH_WITHIN: '60' }), 'flocker-attach', 'runs on worker');
    expect(message).toContain('pod lab-flocker-attach (flocker dataset "lab-flocker-attach") is Pending on worker after 60 s; the flocker volume plugin says: FailedMount');
    expect(message).toContain("The volume 'lab-flocker-attach' is not available in Flocker");
  });

  test('a dataset made without -m name=...: the pod cannot find it by name', () => {
    const { run } = kept;
    run.reset();
    const message = failedAt(run.verify(['flocker-attach'], { FLOCKER_ATTACH_UNNAMED: 'true', FLOCKER_ATTACH_WITHIN: '60' }), 'flocker-attach', 'runs on worker');
    expect(message).toContain('the flocker volume plugin says: FailedMount: Unable to mount volumes for pod "lab-flocker-attach_default(');
    expect(message).toContain('Configuration not found by Name');
  });

  test("the worker's agent without shared mount propagation: its mounts never reach the node or the pod", () => {
    const { run } = kept;
    run.reset();
    run.succeed(
      'worker',
      'image=$(docker inspect -f "{{.Config.Image}}" flocker-dataset-agent) && docker rm -f flocker-dataset-agent >/dev/null && ' +
        'docker run -d --name=flocker-dataset-agent --restart=always --net=host --privileged -v /etc/flocker:/etc/flocker:ro -v /dev:/dev -v /flocker:/flocker -v /var/lib/flocker:/var/lib/flocker "$image" >/dev/null',
    );
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'a file system on a loop device');
    expect(message).toMatch(/\/flocker\/[0-9a-f-]{36} is not mounted from a loop device on worker/);
  });

  test("something on the worker removes the dataset's files when its pod goes: the new pod does not find the file", () => {
    const { run } = kept;
    run.reset();
    // Deletes lab-check.txt from every mounted dataset once no container of the check's pod runs.
    run.succeed(
      'worker',
      'setsid -f sh -c \'while :; do [ -z "$(docker ps -q --filter label=io.kubernetes.pod.name=lab-flocker-attach)" ] && rm -f /flocker/*/lab-check.txt; sleep 1; done\' </dev/null >/dev/null 2>&1',
    );
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'the pod deleted and made again on worker finds the file again');
    expect(message).toMatch(/\/data\/lab-check\.txt in the new pod \(exit 1\)/);
  });

  test("a process on the worker keeps the dataset's mount busy: deleting the dataset leaves it mounted", () => {
    const { run } = kept;
    run.reset();
    // Moves into every dataset mount that appears (once each), and stays there.
    run.succeed(
      'worker',
      'setsid -f sh -c \'while :; do for d in $(findmnt -rn -o TARGET | grep "^/flocker/"); do m=/run/busy-${d##*/}; [ -e $m ] || { touch $m; (cd "$d" && exec sleep 3600) & }; done; sleep 1; done\' </dev/null >/dev/null 2>&1',
    );
    const message = failedAt(run.verify(['flocker-attach']), 'flocker-attach', 'the dataset deleted, its mount disappears from the node');
    expect(message).toMatch(/to be unmounted.*still mounted/s);
  });
});
