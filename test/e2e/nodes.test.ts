import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { failedAt, useKeptRun } from './helpers.js';

/**
 * nodes-up and cluster-link, each step broken its own way on a kept cluster (smoke's one node,
 * two-vms' two, booted together), one test per breakage, each from a reset to the run's last
 * snapshot layer.
 */
describe('nodes-up fails at the step that is broken', () => {
  const kept = useKeptRun(['scenarios/smoke']);

  test("the node's sshd stopped: it does not answer over SSH", () => {
    const { run } = kept;
    run.reset();
    // Stopped a moment later, by systemd: stopping it now would end this session too.
    run.succeed('node1', 'systemd-run --on-active=2 systemctl stop ssh.service ssh.socket');
    // The break has taken effect once a new login fails (the timer fires in the guest's own time).
    let refused = false;
    for (let i = 0; i < 30 && !refused; i++) {
      refused = run.ssh('node1', 'true').code === 255;
      if (!refused) spawnSync('sleep', ['1']);
    }
    expect(refused, 'a new SSH login to node1 fails').toBe(true);
    const message = failedAt(run.verify(['nodes-up']), 'nodes-up', 'answers over SSH');
    expect(message).toMatch(/step "log in to node1 over SSH \(127\.0\.0\.1:\d+\)" failed: node1 does not answer over SSH at 127\.0\.0\.1:\d+: /);
  });

  test('another hostname', () => {
    const { run } = kept;
    run.reset();
    run.succeed('node1', 'hostname impostor');
    const message = failedAt(run.verify(['nodes-up']), 'nodes-up', 'hostname is node1');
    expect(message).toContain('node1 reports hostname "impostor"');
  });

  test('another architecture reported by the node', () => {
    const { run } = kept;
    run.reset();
    run.succeed(
      'node1',
      "cp /usr/bin/uname /root/uname.real && printf '#!/bin/sh\\ncase \"$1\" in -m) echo aarch64 ;; *) exec /root/uname.real \"$@\" ;; esac\\n' > /root/uname && chmod +x /root/uname && mount --bind /root/uname /usr/bin/uname",
    );
    const message = failedAt(run.verify(['nodes-up']), 'nodes-up', 'architecture is amd64');
    expect(message).toContain('node1 runs aarch64, the scenario wants amd64');
  });

  test('a clock two minutes ahead', () => {
    const { run } = kept;
    run.reset();
    run.succeed('node1', "date -s '+2 min' >/dev/null");
    const message = failedAt(run.verify(['nodes-up']), 'nodes-up', 'clock is within 5 s of the host');
    expect(message).toMatch(/node1's clock is 1[12]\d\.\d s off the host's/);
  });
});

describe('cluster-link fails at the step that is broken', () => {
  // --fresh: booted, whatever the snapshot cache holds, so that the first test sees two boots.
  const kept = useKeptRun(['--fresh', 'test/scenarios/two-vms']);

  test('two amd64 nodes boot together and reach each other by name over the cluster link', () => {
    const { summary, dir } = kept;
    expect(summary.nodes.map((n) => `${n.name}:${n.role}`)).toEqual(['master:master', 'worker:worker']);
    const link = summary.checks.filter((c) => c.check === 'cluster-link');
    expect(link.map((c) => `${c.name}:${c.status}`)).toEqual([
      'cluster-link > master holds 10.77.0.11 on its cluster NIC:passed',
      'cluster-link > worker holds 10.77.0.12 on its cluster NIC:passed',
      'cluster-link > master -> worker:passed',
      'cluster-link > worker -> master:passed',
    ]);
    // Both boots ran at the same time: the second started before the first finished.
    const lab = readFileSync(join(dir, 'logs/lab.log'), 'utf8');
    const started = [...lab.matchAll(/• booting (\w+)/g)].map((m) => m[1]);
    expect(started).toHaveLength(2);
    expect(lab.lastIndexOf('• booting')).toBeLessThan(lab.search(/✓ booting/));
  });

  test("the worker's cluster address removed", () => {
    const { run } = kept;
    run.reset();
    run.succeed('worker', 'ip addr del 10.77.0.12/24 dev eth1');
    const message = failedAt(run.verify(['cluster-link']), 'cluster-link', 'worker holds 10.77.0.12 on its cluster NIC');
    expect(message).toContain('worker does not hold its cluster address 10.77.0.12');
  });

  test("the master resolves the worker's name to another address", () => {
    const { run } = kept;
    run.reset();
    run.succeed('master', "sed -i 's/^10\\.77\\.0\\.12 worker/10.77.0.99 worker/' /etc/hosts");
    const message = failedAt(run.verify(['cluster-link']), 'cluster-link', 'master -> worker');
    expect(message).toContain('master resolves worker to 10.77.0.99, not its cluster address 10.77.0.12');
  });

  test('the worker ignores pings', () => {
    const { run } = kept;
    run.reset();
    run.succeed('worker', 'sysctl -qw net.ipv4.icmp_echo_ignore_all=1');
    const message = failedAt(run.verify(['cluster-link']), 'cluster-link', 'master -> worker');
    expect(message).toContain('master cannot reach worker (10.77.0.12) on the cluster link');
  });
});
