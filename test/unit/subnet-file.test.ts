import { describe, expect, test } from 'vitest';
import { subnetFileOf } from '../../lab/checks/builtin/kube.js';

/** A node whose Docker daemons list these containers as `PID PATH ARGS...`, one per line. */
const nodeListing = (...containers: string[]) => ({
  succeed: async (command: string) => {
    expect(command).toContain('docker -H "unix://$sock" inspect');
    return containers.map((c) => `${c}\n`).join('');
  },
});

describe('flannel-ping: where a node keeps subnet.env', () => {
  test("the flanneld container's default file, in its own mount namespace", async () => {
    const node = nodeListing(
      '812 /usr/local/bin/etcd --data-dir=/var/etcd/data',
      '977 /opt/bin/flanneld --etcd-endpoints=http://localhost:4001 --ip-masq=true --iface=10.77.0.11',
    );
    expect(await subnetFileOf(node)).toBe('/proc/977/root/run/flannel/subnet.env');
  });

  test('a --subnet-file given either way', async () => {
    expect(await subnetFileOf(nodeListing('40 /opt/bin/flanneld --subnet-file=/tmp/flannel/env --iface=eth1'))).toBe(
      '/proc/40/root/tmp/flannel/env',
    );
    expect(await subnetFileOf(nodeListing('41 /opt/bin/flanneld -subnet-file /srv/subnet.env'))).toBe('/proc/41/root/srv/subnet.env');
  });

  test("the host's file when no flanneld container runs", async () => {
    expect(await subnetFileOf(nodeListing('812 /usr/local/bin/etcd'))).toBe('/run/flannel/subnet.env');
    expect(await subnetFileOf(nodeListing())).toBe('/run/flannel/subnet.env');
  });
});
