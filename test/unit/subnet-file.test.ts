import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
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

describe("flannel-ping: the node's containers listed by its own shell", () => {
  /**
   * Runs the listing in bash with a `docker` of the test's on PATH: `ps -q` lists two containers;
   * `inspect` fails while `gone` inspects remain (a container removed between ps and inspect:
   * Docker prints the others, says "No such object" and exits 1).
   */
  function nodeWithDocker(gone: number) {
    const dir = mkdtempSync(join(tmpdir(), 'subnet-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'gone'), String(gone));
    const docker = join(dir, 'docker');
    writeFileSync(
      docker,
      [
        '#!/bin/bash',
        `state=${dir}`,
        // Whatever sockets the host has, one daemon answers: the first the listing asks.
        '[ -f $state/first ] || echo "$2" > $state/first; [ "$2" = "$(cat $state/first)" ] || exit 0',
        'case "$3" in',
        '  ps) printf "a1\\nb2\\n" ;;',
        '  inspect) echo inspect >> $state/calls; echo "977 /opt/bin/flanneld --iface=eth1"',
        '    left=$(cat $state/gone); if [ $left -gt 0 ]; then echo $((left - 1)) > $state/gone; echo "Error: No such object: b2" >&2; exit 1; fi',
        '    echo "812 /usr/local/bin/etcd" ;;',
        'esac',
      ].join('\n'),
    );
    chmodSync(docker, 0o755);
    const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').length;
    const node = {
      succeed: async (command: string) => {
        const ran = spawnSync('bash', ['-c', command], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
        if (ran.status !== 0) throw new Error(`exited with ${ran.status}: ${ran.stderr}`);
        return ran.stdout;
      },
    };
    return { node, calls };
  }

  test('a container gone between ps and inspect: it asks again', async () => {
    const { node, calls } = nodeWithDocker(1);
    expect(await subnetFileOf(node)).toBe('/proc/977/root/run/flannel/subnet.env');
    expect(calls()).toBe(2);
  });

  test('an inspect that keeps failing fails the step with what Docker said', async () => {
    const { node, calls } = nodeWithDocker(10);
    await expect(subnetFileOf(node)).rejects.toThrow(/exited with 1: .*No such object: b2/s);
    expect(calls()).toBe(3);
  });
});
