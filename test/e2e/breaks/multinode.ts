import { expect } from 'vitest';
import { BOOTSTRAP, containerOf, failedAt, type Breakage } from '../helpers.js';

/**
 * Each step of node-registration, flannel-ping and dns broken its own way on a kept multinode
 * cluster, one breakage per test: the check fails at that step (--fail-fast: the steps after it do
 * not run; failedAt: every step before it passed) with a message that names what is wrong. A
 * breakage two checks meet (busybox gone from a node) is one test of both. Which breakages share a
 * reset is the test file's choice; `nightly` ones run with LAB_E2E_FULL=1.
 */

export const registration = {
  etcdStopped: {
    check: 'node-registration',
    title: 'etcd stopped: the apiserver still answers /healthz (as 1.2/1.3 did), and the check names etcd',
    run: (run) => {
      run.succeed('master', `${BOOTSTRAP} stop ${containerOf(BOOTSTRAP, 'local\\/bin\\/etcd ')}`);
      const message = failedAt(
        run.verify(['node-registration'], { APISERVER_HEALTHY_WITHIN: '20' }),
        'node-registration',
        'apiserver is healthy and reaches etcd',
      );
      expect(message).toMatch(
        /the apiserver cannot reach its etcd: etcd-0 is not Healthy \(Get http:\/\/127\.0\.0\.1:4001\/health: .*ECONNREFUSED/,
      );
    },
  },
  apiserverPaused: {
    check: 'node-registration',
    title: 'the apiserver stopped: no answer on 8080',
    run: (run) => {
      run.succeed('master', `docker pause ${containerOf('docker', 'hyperkube apiserver')}`);
      const message = failedAt(
        run.verify(['node-registration'], { APISERVER_HEALTHY_WITHIN: '20' }),
        'node-registration',
        'apiserver is healthy and reaches etcd',
      );
      expect(message).toMatch(/no answer on http:\/\/127\.0\.0\.1:8080 \(curl: \(28\)/);
    },
  },
  workerUnregistered: {
    check: 'node-registration',
    title: "the worker's kubelet stopped and its node deleted: not registered, and the check lists who is",
    run: (run) => {
      run.succeed('worker', `docker stop ${containerOf('docker', 'hyperkube kubelet')} >/dev/null`);
      run.succeed('master', 'kubectl delete node 10.77.0.12');
      // 15 s: the master, healthy, must post a new heartbeat first (every 10 s; 10 s was too tight).
      const message = failedAt(
        run.verify(['node-registration'], { NODE_READY_TIMEOUT: '15' }),
        'node-registration',
        'worker is registered as 10.77.0.12',
      );
      expect(message).toContain(
        'node worker (10.77.0.12) is not Ready and posting after 15 s: not registered (registered nodes: 10.77.0.11)',
      );
    },
  },
  workerDockerStopped: {
    check: 'node-registration',
    title:
      "the worker's Docker stopped (its kubelet with it), the node controller paused: a Ready=True whose heartbeat went stale is not taken for health",
    run: (run) => {
      // With the node controller paused nothing marks the node, however slowly Docker stops and
      // the check's first steps run (the 40 s grace period was too short for that on a slow day):
      // the apiserver keeps the kubelet's last Ready=True, and only its heartbeat's age tells.
      run.succeed('master', `docker pause ${containerOf('docker', 'hyperkube controller-manager')} >/dev/null`);
      run.succeed('worker', 'systemctl stop docker.socket docker.service');
      const message = failedAt(
        run.verify(['node-registration'], { NODE_READY_TIMEOUT: '15' }),
        'node-registration',
        'worker is registered as 10.77.0.12',
      );
      expect(message).toMatch(
        // Which of the two depends on how long Docker took to stop: its heartbeat older than the grace period, or merely not renewed.
        /node worker \(10\.77\.0\.12\) is not Ready and posting after 15 s: (no new heartbeat yet \(the last one is \d+ s old; the kubelet posts every 10 s; it says|its last heartbeat is \d+ s old \(the kubelet posts every 10 s; it still says) Ready=True \(KubeletReady: kubelet is posting ready status\)\)$/,
      );
    },
  },
} satisfies Record<string, Breakage>;

const etcdctl = (args: string) => `${BOOTSTRAP} exec ${containerOf(BOOTSTRAP, 'local\\/bin\\/etcd ')} etcdctl ${args}`;

export const flannel = {
  networkConfig: {
    check: 'flannel-ping',
    title: 'another network in the config',
    run: (run) => {
      run.succeed('master', etcdctl(`set /coreos.com/network/config '{ "Network": "10.9.0.0/16", "Backend": {"Type": "udp"}}'`));
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', 'the network config in etcd is 10.1.0.0/16 over udp');
      expect(message).toContain('the flannel network in etcd is 10.9.0.0/16, the scenario set 10.1.0.0/16');
    },
  },
  leaseGone: {
    check: 'flannel-ping',
    title: "the worker's lease gone (and its flanneld, which would take it again)",
    run: (run) => {
      run.succeed('worker', `${BOOTSTRAP} stop ${containerOf(BOOTSTRAP, 'bin\\/flanneld ')} >/dev/null`);
      run.succeed(
        'master',
        `for key in $(${etcdctl('ls /coreos.com/network/subnets')}); do ${etcdctl('get $key')} | grep -q 10.77.0.12 && ${etcdctl('rm $key')}; done; true`,
      );
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', 'worker holds a lease in 10.1.0.0/16');
      expect(message).toMatch(
        /worker \(10\.77\.0\.12\) holds no lease under \/coreos\.com\/network\/subnets \(leases: 10\.1\.\d+\.0\/24 -> 10\.77\.0\.11\)/,
      );
    },
  },
  subnetEnv: {
    check: 'flannel-ping',
    title: "the worker's subnet.env names another subnet",
    run: (run) => {
      run.succeed('worker', "sed -i 's/^FLANNEL_SUBNET=.*/FLANNEL_SUBNET=10.1.250.1\\/24/' /run/flannel/subnet.env");
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', "worker's subnet.env agrees with its lease");
      expect(message).toMatch(/worker's subnet\.env says FLANNEL_SUBNET=10\.1\.250\.1\/24, its lease is 10\.1\.\d+\.0\/24/);
    },
  },
  docker0: {
    check: 'flannel-ping',
    title: 'docker0 on the worker outside its lease',
    run: (run) => {
      run.succeed('worker', 'ip addr flush dev docker0 && ip addr add 172.17.0.1/16 dev docker0');
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', 'docker0 on worker holds the first address of its lease');
      expect(message).toMatch(/docker0 on worker is 172\.17\.0\.1\/16, not 10\.1\.\d+\.1\/24 of its lease/);
    },
  },
  mtu: {
    check: 'flannel-ping',
    title: "the flannel device's MTU changed on the worker",
    run: (run) => {
      run.succeed('worker', 'ip link set dev flannel0 mtu 1400');
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', "the udp backend's device on worker");
      expect(message).toContain("flannel0 on worker has MTU 1400; the udp backend's on eth1 (MTU 1500) is 1472");
    },
  },
  port: {
    check: 'flannel-ping',
    title: "nothing listens on the udp backend's port on the worker",
    run: (run) => {
      run.succeed('worker', 'ip fou del port 8285');
      const message = failedAt(run.verify(['flannel-ping']), 'flannel-ping', "the udp backend's device on worker");
      expect(message).toContain("nothing listens on UDP 8285 on worker: the udp backend's packets have nowhere to go");
    },
  },
  flanneldStopped: {
    check: 'flannel-ping',
    title: 'flanneld stopped on the worker: its tunnel goes, and the pings fail',
    run: (run) => {
      run.succeed('worker', `${BOOTSTRAP} stop ${containerOf(BOOTSTRAP, 'bin\\/flanneld ')} >/dev/null`);
      // Not --fail-fast: the two directions are two steps, and both must fail.
      const verified = run.verify(['flannel-ping'], {}, false);
      const failed = verified.checks.filter((c) => c.status === 'failed').map((c) => c.name);
      expect(failed).toEqual(
        expect.arrayContaining([
          'flannel-ping > container on master pings container on worker',
          'flannel-ping > container on worker pings container on master',
        ]),
      );
      expect(verified.err).toContain('master -> worker: the container on master cannot reach the container on worker');
    },
  },
} satisfies Record<string, Breakage>;

export const dns = {
  serviceDeleted: {
    check: 'dns',
    title: "the kube-dns service deleted (and v1.3's addon manager, which would make it again, stopped)",
    run: (run) => {
      run.succeed(
        'master',
        `docker pause ${containerOf('docker', 'kube-addons ')} >/dev/null && kubectl delete service kube-dns --namespace=kube-system`,
      );
      const message = failedAt(
        run.verify(['dns'], { DNS_SERVICE_WITHIN: '10' }),
        'dns',
        'kube-dns is the service 10.0.0.10 in kube-system',
      );
      expect(message).toMatch(/there is no kube-dns service in kube-system: expected 404 to be 200/);
    },
  },
  scaledToZero: {
    check: 'dns',
    nightly: true,
    title: 'kube-dns scaled to zero: the lookup fails, saying kube-dns has no endpoints',
    run: (run) => {
      run.succeed('master', 'kubectl scale rc kube-dns-v11 --namespace=kube-system --replicas=0');
      expect(run.until('master', '[ -z "$(kubectl get pods --namespace=kube-system -l k8s-app=kube-dns -o name)" ]', 60)).toBe(true);
      const message = failedAt(run.verify(['dns'], { DNS_ANSWER_WITHIN: '60' }), 'dns', 'nslookup kubernetes.default in the pod on master');
      expect(message).toContain('the kube-dns service has no ready endpoints (no kube-dns pod is running)');
    },
  },
  controllerManagerPaused: {
    check: 'dns',
    nightly: true,
    title: "the controller-manager paused: the check's service never gets its two pods",
    run: (run) => {
      // Once kube-dns has its endpoints (after a restore its pod may still be starting): the cluster DNS itself must answer.
      expect(
        run.until(
          'master',
          "kubectl get endpoints kube-dns --namespace=kube-system -o jsonpath='{.subsets[0].addresses[0].ip}' | grep -q .",
          90,
        ),
      ).toBe(true);
      run.succeed('master', `docker pause ${containerOf('docker', 'hyperkube controller-manager')} >/dev/null`);
      const message = failedAt(
        run.verify(['dns'], { DNS_RUNNING_WITHIN: '60' }),
        'dns',
        "the check's service lab-dns-check has two pods behind it",
      );
      expect(message).toMatch(/endpoints of lab-dns-check/);
    },
  },
  podPortRejected: {
    check: 'dns',
    nightly: true,
    title: "traffic to the pods' port rejected on both nodes: the service resolves, and no pod answers",
    run: (run) => {
      for (const node of ['master', 'worker']) run.succeed(node, 'iptables -w -I FORWARD -d 10.1.0.0/16 -p tcp --dport 8080 -j REJECT');
      const message = failedAt(
        run.verify(['dns']),
        'dns',
        'lab-dns-check resolves to its service IP from the pod on master, and one of its pods answers',
      );
      expect(message).toMatch(/GET http:\/\/lab-dns-check\/ \(10\.0\.0\.\d+:80\) from the pod on master failed \(exit \d+\)/);
    },
  },
} satisfies Record<string, Breakage>;

export const busyboxGone: Breakage = {
  check: 'flannel-ping and dns',
  // 3 minutes (two checks up to their containers, a 60 s wait for a pod that cannot start): nightly, for CI's 60 minutes.
  nightly: true,
  title: "busybox removed from the worker: flannel-ping's container and dns's pod cannot start there, each check saying why",
  run: (run) => {
    run.succeed('worker', 'docker rmi -f busybox:latest >/dev/null');
    const verified = run.verify(['flannel-ping', 'dns'], { DNS_RUNNING_WITHIN: '60' });
    expect(failedAt(verified, 'flannel-ping', 'a container runs on every node')).toMatch(
      /docker run busybox:latest on worker failed: .*busybox/,
    );
    expect(failedAt(verified, 'dns', 'a busybox pod that sleeps is Running on every node')).toMatch(
      /pod lab-dns-worker is Pending on 10\.77\.0\.12 after 60 s: (ErrImagePull|ImagePullBackOff): .*busybox/,
    );
  },
};
