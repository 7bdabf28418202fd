import { describe, expect, test } from 'vitest';
import type { MachineSpec } from '../../lab/machines/driver.js';
import { qemuArgs } from '../../lab/machines/qemu/args.js';
import { MGMT_MAC, parseRunLabel, qemuBinary, runLabel } from '../../lab/machines/guest.js';
import type { Image } from '../../lab/images/cache.js';
import type { Arch } from '../../lab/scenario/schema.js';

function spec(arch: Arch): MachineSpec {
  const image = {
    key: `base-${arch}-0123456789ab`,
    dir: '/cache/images/base',
    disk: '/cache/images/base/disk.qcow2',
    kernel: '/cache/images/base/vmlinuz',
    initrd: '/cache/images/base/initrd.img',
    clientKey: '/cache/images/base/id_ed25519',
    hostKey: 'ssh-ed25519 AAAA host',
  } as Image;
  return { runId: 'smoke-20260101-000000-abcd', name: 'node1', arch, cpus: 2, memoryMiB: 1024, image, stateDir: '/state', logDir: '/logs' };
}

const paths = { overlay: '/state/overlay.qcow2', qmpSocket: '/state/qmp.sock', consoleLog: '/logs/console.log' };

/** The value that follows `flag` on the command line. */
function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('qemuArgs', () => {
  test('amd64 under TCG', () => {
    const args = qemuArgs(spec('amd64'), 'tcg', 2222, paths);
    expect(valueOf(args, '-accel')).toBe('tcg,thread=multi,tb-size=1024');
    expect(valueOf(args, '-M')).toBe('pc');
    expect(valueOf(args, '-cpu')).toBe('max');
    expect(valueOf(args, '-smp')).toBe('2');
    expect(valueOf(args, '-m')).toBe('1024');
    expect(valueOf(args, '-netdev')).toBe('user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22');
    expect(valueOf(args, '-device')).toBe(`virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC}`);
    expect(valueOf(args, '-kernel')).toBe('/cache/images/base/vmlinuz');
    expect(valueOf(args, '-initrd')).toBe('/cache/images/base/initrd.img');
    expect(valueOf(args, '-drive')).toMatch(/^file=\/state\/overlay\.qcow2,id=disk0,if=virtio,format=qcow2,/);
    expect(valueOf(args, '-qmp')).toBe('unix:/state/qmp.sock,server=on,wait=off');
    expect(valueOf(args, '-chardev')).toBe('file,id=console,path=/logs/console.log');
    expect(args).toContain('-no-reboot');
    const append = valueOf(args, '-append')?.split(' ');
    expect(append).toContain('console=ttyS0');
    expect(append).toContain('systemd.hostname=node1');
    expect(valueOf(args, '-name')).toBe('guest=node1,process=lab:smoke-20260101-000000-abcd:node1');
  });

  test('KVM uses the host CPU', () => {
    const args = qemuArgs(spec('amd64'), 'kvm', 2222, paths);
    expect(valueOf(args, '-accel')).toBe('kvm');
    expect(valueOf(args, '-cpu')).toBe('host');
  });

  test('arm64 uses the virt machine and the PL011 console', () => {
    expect(qemuBinary('arm64')).toBe('qemu-system-aarch64');
    expect(qemuBinary('amd64')).toBe('qemu-system-x86_64');
    const args = qemuArgs(spec('arm64'), 'tcg', 2300, paths);
    expect(valueOf(args, '-M')).toBe('virt');
    expect(valueOf(args, '-cpu')).toBe('max,pauth-impdef=on');
    expect(valueOf(args, '-append')?.split(' ')).toContain('console=ttyAMA0');
    expect(valueOf(args, '-netdev')).toContain('hostfwd=tcp:127.0.0.1:2300-:22');
  });
});

describe('run labels', () => {
  test('parseRunLabel reads back what runLabel wrote', () => {
    const args = qemuArgs(spec('amd64'), 'tcg', 2222, paths);
    expect(parseRunLabel(valueOf(args, '-name') ?? '')).toEqual({ runId: 'smoke-20260101-000000-abcd', name: 'node1' });
    expect(parseRunLabel(`process=${runLabel('r-1', 'worker-2')}`)).toEqual({ runId: 'r-1', name: 'worker-2' });
  });

  test('arguments without a run label are not ours', () => {
    expect(parseRunLabel('guest=node1')).toBeUndefined();
    expect(parseRunLabel('process=other:r:n')).toBeUndefined();
  });
});

describe('qemuArgs: cluster link', () => {
  test('a node with a cluster NIC plugs into the run switch and gets its MAC and address on the kernel command line', () => {
    const node = {
      ...spec('amd64'),
      cluster: { switchDir: '/var/lib/lab/runs/r1/switch', mac: '52:54:00:1a:c0:02', address: '10.77.0.12/24' },
    };
    const args = qemuArgs(node, 'tcg', 2222, paths);
    expect(args.join(' ')).toContain(
      '-netdev vde,id=cluster,sock=/var/lib/lab/runs/r1/switch -device virtio-net-pci,netdev=cluster,mac=52:54:00:1a:c0:02',
    );
    const append = args[args.indexOf('-append') + 1];
    expect(append).toContain('lab.cluster_mac=52:54:00:1a:c0:02 lab.cluster_ip=10.77.0.12/24');
  });

  test('a node without one has a single NIC', () => {
    const args = qemuArgs(spec('amd64'), 'tcg', 2222, paths);
    expect(args.filter((a) => a === '-netdev')).toHaveLength(1);
  });
});
