import { describe, expect, test } from 'vitest';
import type { MachineSpec } from '../../lab/machines/driver.js';
import { MGMT_MAC } from '../../lab/machines/guest.js';
import { domainName, domainXml } from '../../lab/machines/libvirt/domain-xml.js';

const spec = (arch: 'amd64' | 'arm64'): MachineSpec => ({
  runId: 'two-node-20260101-000000-abcd',
  name: 'worker',
  arch,
  cpus: 2,
  memoryMiB: 1024,
  image: {
    disk: '/cache/disk.qcow2',
    kernel: '/cache/vmlinuz',
    initrd: '/cache/initrd.img',
    clientKey: '/cache/id_ed25519',
    hostKey: 'ssh-ed25519 AAAA',
  } as MachineSpec['image'],
  stateDir: '/state/nodes/worker',
  logDir: '/logs/worker',
  cluster: { switchDir: '/state/switch', mac: '52:54:00:4c:00:02', address: '10.77.0.12/24' },
});

const paths = { overlay: '/state/nodes/worker/disk.qcow2', consoleLog: '/logs/worker/console.log' };

describe('libvirt domain XML', () => {
  test("a restored domain keeps the saved name and UUID (libvirt's rule) and carries this run's label", () => {
    const restoring = { ...spec('amd64'), restore: { state: '/layer/worker.state', disk: '/layer/worker.qcow2', cmdline: 'lab.process=lab:older-run:worker' } } as MachineSpec;
    const xml = domainXml(restoring, 'tcg', 40022, { ...paths, saved: { name: 'lab-older-run-worker', uuid: '0aee8fc1-d458-464e-8d49-695ac4ae2026' } });
    expect(xml).toContain('<name>lab-older-run-worker</name>\n  <uuid>0aee8fc1-d458-464e-8d49-695ac4ae2026</uuid>');
    expect(xml).toMatch(/<cmdline>[^<]*lab\.process=lab:two-node-20260101-000000-abcd:worker<\/cmdline>/);
    expect(xml).not.toContain('older-run:worker');
  });

  test('boots the image kernel with the run label, the cluster address and both NICs at fixed slots', () => {
    const xml = domainXml(spec('amd64'), 'tcg', 40022, paths);
    expect(xml).toContain(`<name>${domainName(spec('amd64'))}</name>`);
    expect(xml).toContain("<domain type='qemu'");
    expect(xml).toContain("<type arch='x86_64' machine='pc'>hvm</type>");
    expect(xml).toMatch(
      /<cmdline>[^<]*lab\.cluster_ip=10\.77\.0\.12\/24[^<]*lab\.process=lab:two-node-20260101-000000-abcd:worker<\/cmdline>/,
    );
    expect(xml).toContain("<source file='/state/nodes/worker/disk.qcow2'/>");
    expect(xml).toContain(`value='user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22'`);
    expect(xml).toContain(`value='virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC},bus=pci.0,addr=0x1e'`);
    expect(xml).toContain(`value='vde,id=cluster,sock=/state/switch'`);
    expect(xml).toContain(`value='virtio-net-pci,netdev=cluster,mac=52:54:00:4c:00:02,bus=pci.0,addr=0x1f'`);
    // ACPI: the power button works and the guest keeps a good clock; without it libvirt adds -no-acpi.
    expect(xml).toContain('<acpi/>');
    expect(xml).toContain('<on_poweroff>destroy</on_poweroff>');
  });

  test('arm64 uses the virt machine and its PCIe root bus; KVM uses host-passthrough', () => {
    const xml = domainXml(spec('arm64'), 'kvm', 40022, paths);
    expect(xml).toContain("<type arch='aarch64' machine='virt'>hvm</type>");
    expect(xml).toContain('bus=pcie.0,addr=0x1f');
    expect(xml).toContain("<domain type='kvm'");
    expect(xml).toContain("<cpu mode='host-passthrough'/>");
    expect(xml).toContain('console=ttyAMA0');
  });

  test('escapes what it embeds', () => {
    const odd = { ...spec('amd64'), image: { ...spec('amd64').image, kernel: "/c/a&b'<k>" } };
    expect(domainXml(odd, 'tcg', 1, paths)).toContain('<kernel>/c/a&amp;b&apos;&lt;k&gt;</kernel>');
  });
});
