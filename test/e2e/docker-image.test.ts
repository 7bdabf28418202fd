import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { fullOnly, leftovers, onlyRun, runLab } from './helpers.js';

describe('the docker image variant', () => {
  // Nightly (LAB_E2E_FULL=1): a fresh install of its own (about 6 minutes), and every cluster run in
  // CI goes through the same forms (the multinode scripts use each of them).
  fullOnly(
    "a node of the docker image runs Debian's Docker, a container from an offline image pings the node, the 2016 scripts' docker forms work, and their image names are loaded",
    async () => {
      const result = await runLab(['run', '--fresh', 'test/scenarios/docker-node']);
      expect(result.code, result.output).toBe(0);
      const { runId, dir } = onlyRun(result);
      const log = readFileSync(`${dir}/logs/node1/provision-docker.log`, 'utf8');
      expect(log).toMatch(/docker server \d+\.\d+/);
      expect(log).toMatch(/eth0\s+inet 172\.17\.\d+\.\d+/);
      expect(log).toContain('docker ok');
      // The 2016 forms (lab/images/docker-2016): each line is what a 2016 Docker host gave the scripts.
      const compat = readFileSync(`${dir}/logs/node1/provision-docker-2016.log`, 'utf8');
      expect(compat).toContain('lsb_release: Debian');
      expect(compat).toContain('/sbin/ifconfig');
      expect(compat).toContain('bootstrap root: /var/lib/docker-bootstrap');
      expect(compat).toContain('main lists: in-main\n');
      expect(compat).toMatch(/unit line: ExecStart=\/usr\/local\/bin\/docker daemon -H fd:\/\/ /);
      // The bootstrap daemon's --bridge=none took docker0 away, as Docker's did; the restart makes it on the new --bip.
      expect(compat).toContain('docker0: ERROR while getting interface flags: No such device');
      expect(compat).toContain('docker0 10.1.15.1/24');
      expect(compat).toContain('container mtu 1472');
      expect(compat).toContain('bootstrap after restart: in-bootstrap\n');
      // The payload loaded every name the 2016-2017 scripts give etcd and flannel where they look, before any script ran.
      const images = readFileSync(`${dir}/logs/node1/provision-script-images.log`, 'utf8');
      for (const image of ['etcd-amd64:2.2.5', 'etcd-amd64:3.0.4', 'flannel-amd64:0.5.5'])
        expect(images).toContain(`bootstrap has gcr.io/google_containers/${image}\n`);
      expect(images).toContain('bootstrap has quay.io/coreos/flannel:v0.6.1-amd64\n');
      expect(images).toContain('main has hyperkube v1.3.0\n');
      expect(images).toContain('quay flannel reports 0.6.1\n');
      expect(images).toContain('gcr flannel reports 0.5.5\n');
      expect(images).toMatch(/etcd 3\.0\.4 health: \{"health":\s*"true"/);
      expect(images).toMatch(
        /etcd 3\.0\.4 v2: \{"action":"get","node":\{"key":"\/coreos\.com\/network\/config","value":"\{\\"Network\\":\\"10\.1\.0\.0\/16\\"\}"/,
      );
      expect(leftovers(runId)).toEqual([]);
      // The payload's copy and load (about 100 s alone here, 300 s beside two other VMs) come before the steps.
    },
    15 * 60_000,
  );

  test("the multinode worker.sh refuses to start without MASTER_IP, with the guide's message; turndown needs no terminal", async () => {
    const result = await runLab(['run', '--fresh', 'test/scenarios/worker-without-master']);
    expect(result.code, result.output).toBe(1);
    const { runId, dir, summary } = onlyRun(result);
    expect(summary.steps.map((s) => `${s.step}:${s.status}`)).toEqual(['turndown:passed', 'worker:failed']);
    expect(result.output).toContain('provision step "worker" failed on worker: exit code 1');
    expect(readFileSync(`${dir}/logs/worker/provision-worker.log`, 'utf8')).toContain('Please export MASTER_IP in your env');
    expect(readFileSync(`${dir}/logs/worker/provision-turndown.log`, 'utf8')).toMatch(/\+\+\+ \[\d{4} \d\d:\d\d:\d\d\] Turned down/);
    expect(leftovers(runId)).toEqual([]);
  });
});
