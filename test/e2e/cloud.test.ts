import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { ClusterDescriptor } from '../../lab/checks/descriptor.js';
import { monitor, pauseVm, powerOffVm, powerOnVm, resumeVm } from '../../lab/machines/faults.js';
import { openstackEnv, useKeptRun } from './helpers.js';

/**
 * The run's emulated OpenStack with real guests: the kept run's check has each node get a token
 * from 10.0.2.100:5000 with its /etc/lab/openstack.env (also after a restore, whose cloud takes the
 * layer's identity); here Debian's openstack client on the host moves a volume with its data from
 * one VM to the other, the guests seeing the disk come and go by its serial, and sees a server's
 * status follow its VM's power; a reset empties the cloud; nothing is left after `lab down`.
 * Through QMP (qemu) and libvirt's attach-device (libvirt).
 */
describe.each([
  ['qemu', 'test/scenarios/cloud'],
  ['libvirt', 'test/scenarios/cloud-libvirt'],
])('the emulated OpenStack with real guests (%s driver)', (driver, scenario) => {
  const kept = useKeptRun([scenario], { timeoutMs: 15 * 60_000 });

  const descriptor = (): ClusterDescriptor =>
    JSON.parse(
      readFileSync(join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', 'runs', kept.run.runId, 'cluster.json'), 'utf8'),
    ) as ClusterDescriptor;

  function openstack(...args: string[]): string {
    const cloud = descriptor().cloud;
    if (!cloud) throw new Error('the kept run has no cloud in its descriptor');
    const result = spawnSync('openstack', args, { encoding: 'utf8', timeout: 60_000, env: openstackEnv(cloud) });
    if (result.status !== 0) throw new Error(`openstack ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    return result.stdout.trim();
  }

  function waitForStatus(volume: string, status: string): void {
    for (let i = 0; i < 30; i++) {
      if (openstack('volume', 'show', volume, '-f', 'value', '-c', 'status') === status) return;
      spawnSync('sleep', ['1']);
    }
    throw new Error(`volume ${volume} did not become ${status} within 30 tries`);
  }

  test('the cloud listens on 127.0.0.1 only', () => {
    const cloud = descriptor().cloud;
    const ports = Object.values(JSON.parse(readFileSync(join(cloud?.dir ?? '', 'ports.json'), 'utf8')) as Record<string, number>);
    expect(ports).toHaveLength(4);
    const listening = spawnSync('ss', ['-Hltn'], { encoding: 'utf8' }).stdout;
    for (const port of ports) {
      const lines = listening.split('\n').filter((line) => new RegExp(`:${port}\\s`).test(line));
      expect(lines, `sockets on port ${port}`).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`\\s127\\.0\\.0\\.1:${port}\\s`));
    }
  });

  test('a volume moves with its data: attached to the worker (its disk appears by serial), written, detached (gone), attached to the master, read', () => {
    const { run } = kept;
    const id = openstack('volume', 'create', '--size', '1', 'moving', '-f', 'value', '-c', 'id');
    waitForStatus('moving', 'available');
    const disk = `/dev/disk/by-id/virtio-${id.slice(0, 20)}`;

    openstack('server', 'add', 'volume', 'worker', 'moving');
    waitForStatus('moving', 'in-use');
    expect(run.until('worker', `test -b ${disk}`, 30, 1), `${disk} on the worker`).toBe(true);
    run.succeed('worker', `echo written-on-the-worker | dd of=${disk} conv=fsync status=none`);

    openstack('server', 'remove', 'volume', 'worker', 'moving');
    waitForStatus('moving', 'available');
    expect(run.ssh('worker', `test -e ${disk}`).code, `${disk} is gone from the worker`).toBe(1);
    expect(run.succeed('worker', 'lsblk -dno NAME').trim().split('\n')).toEqual(['vda']);

    openstack('server', 'add', 'volume', 'master', 'moving');
    waitForStatus('moving', 'in-use');
    expect(run.until('master', `test -b ${disk}`, 30, 1), `${disk} on the master`).toBe(true);
    expect(run.succeed('master', `head -c 21 ${disk}`)).toBe('written-on-the-worker');
    expect(JSON.parse(openstack('volume', 'show', 'moving', '-f', 'json', '-c', 'attachments')).attachments[0].server_id).toBe(
      JSON.parse(openstack('server', 'show', 'master', '-f', 'json', '-c', 'id')).id,
    );
  });

  // Before the reset: the worker boots again from its disk after the power-off.
  test("a server's status follows its VM: paused under Nova still ACTIVE (power 3), powered off SHUTOFF (power 4) and not among the ACTIVE, its volume detached without the guest, on again ACTIVE", async () => {
    const control = descriptor().nodes.find((n) => n.name === 'worker')?.control;
    if (!control) throw new Error('the kept run has no hypervisor control for the worker');
    const shown = () => JSON.parse(openstack('server', 'show', 'worker', '-f', 'json')) as Record<string, unknown>;
    const active = () =>
      (JSON.parse(openstack('server', 'list', '--status', 'ACTIVE', '-f', 'json')) as { Name: string }[]).map((s) => s.Name);
    await pauseVm(control);
    expect(shown()).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:power_state': 3 });
    await resumeVm(control);
    const id = openstack('volume', 'create', '--size', '1', 'on-the-crashed', '-f', 'value', '-c', 'id');
    waitForStatus('on-the-crashed', 'available');
    openstack('server', 'add', 'volume', 'worker', 'on-the-crashed');
    waitForStatus('on-the-crashed', 'in-use');
    // The volume's file among the block nodes of the worker's QEMU.
    const holds = async () => ((await monitor(control, 'query-named-block-nodes')) as { file: string }[]).some((n) => n.file.includes(id));
    expect(await holds()).toBe(true);
    await powerOffVm(control);
    expect(shown()).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:vm_state': 'stopped', 'OS-EXT-STS:power_state': 4 });
    expect(active()).toEqual(['master']);
    // Nova takes the disk out of a server that is off: no guest is asked, and the VM stays off.
    openstack('server', 'remove', 'volume', 'worker', 'on-the-crashed');
    waitForStatus('on-the-crashed', 'available');
    expect(await holds()).toBe(false);
    expect(shown()).toMatchObject({ status: 'SHUTOFF' });
    await powerOnVm(control);
    expect(shown()).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:power_state': 1 });
    expect(active().sort()).toEqual(['master', 'worker']);
  });

  // lab reset is the qemu driver's.
  test.runIf(driver === 'qemu')('a reset to the last layer (which holds no volume) empties the cloud, and the nodes reach it again', () => {
    const { run } = kept;
    run.reset();
    expect(openstack('volume', 'list', '-f', 'value')).toBe('');
    expect(readdirSync(join(descriptor().cloud?.dir ?? '', 'volumes'))).toEqual([]);
    expect(run.succeed('master', 'lsblk -dno NAME').trim()).toBe('vda');
    const verified = run.verify(['./cloud.check.ts']);
    expect(verified.code, verified.err).toBe(0);
    expect(existsSync(join(descriptor().cloud?.dir ?? '', 'cloud.pid'))).toBe(true);
  });
});
