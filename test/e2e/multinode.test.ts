import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { lab, leftovers, onlyRun, runLab } from './helpers.js';

/**
 * The docker-multinode install on two VMs with the emulated payload: the scenarios pass for both
 * Kubernetes versions and both flannel backends, and each check fails, naming what broke, when
 * the kept cluster is broken by hand.
 */
const labSync = (...args: string[]) => {
  const result = spawnSync(lab, args, { env: { ...process.env, LAB_SKIP_SETUP: '1' }, encoding: 'utf8', timeout: 900_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
};
// Like ssh, lab ssh hands the words to the node's shell: one string is one command line.
const sshOn = (runId: string, node: string, command: string) => labSync('ssh', node, '--run', runId, '--', command);
// A two-node install takes 8-10 minutes under emulation on 2 cores.
const RUN_MS = 20 * 60_000;
const phaseSeconds = (summary: ReturnType<typeof onlyRun>['summary']) => Object.fromEntries(summary.phases.map((p) => [p.name, p.seconds]));

describe('docker-multinode', () => {
  test(
    'scenarios/two-node (v1.3.0, udp) passes; stopping flannel, then the kubelet, on the worker fails the checks that see it',
    async () => {
      const result = await runLab(['run', '--keep=always', 'scenarios/two-node']);
      const { runId, summary } = onlyRun(result);
      try {
        expect(result.code, result.output).toBe(0);
        console.log(`two-node v1.3.0 phases (s): ${JSON.stringify(phaseSeconds(summary))}`);
        expect(summary.checks.filter((c) => c.status === 'passed').map((c) => c.name)).toEqual(
          expect.arrayContaining([
            expect.stringContaining('worker is registered as 10.77.0.12 and Ready'),
            expect.stringContaining('container on master pings container on worker'),
            expect.stringContaining('container on worker pings container on master'),
          ]),
        );
        expect(result.output).toContain('+++ [');

        // flannel's udp tunnel dies with flanneld: cross-host container traffic stops both ways.
        const stop = sshOn(
          runId,
          'worker',
          'docker -H unix:///var/run/docker-bootstrap.sock stop $(docker -H unix:///var/run/docker-bootstrap.sock ps -q --filter ancestor=gcr.io/google_containers/flannel-amd64:0.5.5)',
        );
        expect(stop.code, stop.err).toBe(0);
        const noFlannel = labSync('verify', '--run', runId);
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
        const unknown = sshOn(
          runId,
          'master',
          'for i in $(seq 90); do curl -fsS localhost:8080/api/v1/nodes/10.77.0.12 | grep -q \'"status":"Unknown"\' && exit 0; sleep 2; done; exit 1',
        );
        expect(unknown.code, 'the controller-manager never marked the worker').toBe(0);
        const noKubelet = labSync('verify', '--run', runId);
        expect(noKubelet.code).toBe(1);
        expect(noKubelet.err).toContain(
          'node worker (10.77.0.12) is not Ready after 60 s: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)',
        );
      } finally {
        labSync('down', runId);
      }
      expect(leftovers(runId)).toEqual([]);
    },
    RUN_MS + 10 * 60_000,
  );

  test(
    'K8S_VERSION=v1.2.4 from the environment installs and reports v1.2.4',
    async () => {
      const result = await runLab(['run', 'scenarios/two-node'], { env: { K8S_VERSION: 'v1.2.4' } });
      const { runId, dir, summary } = onlyRun(result);
      expect(result.code, result.output).toBe(0);
      console.log(`two-node v1.2.4 phases (s): ${JSON.stringify(phaseSeconds(summary))}`);
      expect(readFileSync(join(dir, 'logs', 'master', 'provision-master.log'), 'utf8')).toMatch(
        /^\+\+\+ \[\d{4} [\d:]{8}\] K8S_VERSION is set to: v1\.2\.4$/m,
      );
      expect(summary.checks.map((c) => c.name)).toContainEqual(expect.stringContaining('version is v1.2.4'));
      // The containers' logs are kept with the run: flanneld's from the bootstrap daemon, the kubelet's from the main one.
      const containers = readFileSync(join(dir, 'logs', 'worker', 'containers.log'), 'utf8');
      expect(containers).toContain('=== unix:///var/run/docker-bootstrap.sock');
      expect(containers).toMatch(/flanneld\] Allocated lease|flanneld\] Found lease/);
      expect(containers).toMatch(/kubelet\.go\] Successfully registered node 10\.77\.0\.12/);
      expect(leftovers(runId)).toEqual([]);
    },
    RUN_MS,
  );

  test(
    'scenarios/two-node-vxlan passes with the vxlan backend',
    async () => {
      const result = await runLab(['run', 'scenarios/two-node-vxlan']);
      const { runId, summary } = onlyRun(result);
      expect(result.code, result.output).toBe(0);
      console.log(`two-node-vxlan phases (s): ${JSON.stringify(phaseSeconds(summary))}`);
      expect(summary.checks.map((c) => c.name)).toContainEqual(expect.stringContaining('flannel.1 agree with it'));
      expect(leftovers(runId)).toEqual([]);
    },
    RUN_MS,
  );
});
