import type { Arch } from '../../scenario/schema.js';
import type { MachineSpec } from '../driver.js';

/** The management NIC always has this MAC; the image's networkd config matches on it. */
export const MGMT_MAC = '52:54:00:1a:b0:01';

interface ArchProfile {
  binary: string;
  machine: string;
  cpu: (accel: 'kvm' | 'tcg') => string;
  console: string;
}

const PROFILES: Record<Arch, ArchProfile> = {
  amd64: { binary: 'qemu-system-x86_64', machine: 'pc', cpu: (accel) => (accel === 'kvm' ? 'host' : 'max'), console: 'ttyS0' },
  arm64: {
    binary: 'qemu-system-aarch64',
    machine: 'virt',
    cpu: (accel) => (accel === 'kvm' ? 'host' : 'max,pauth-impdef=on'),
    console: 'ttyAMA0',
  },
};

export const qemuBinary = (arch: Arch): string => PROFILES[arch].binary;

/** A label in every QEMU command line, so the processes of a run can be found after a crash. */
export const runLabel = (runId: string, node: string): string => `lab:${runId}:${node}`;

/** The run and node of a `-name` argument that carries a run label. */
export function parseRunLabel(arg: string): { runId: string; name: string } | undefined {
  const match = /process=lab:([^:,]+):([^:,]+)/.exec(arg);
  return match ? { runId: match[1] as string, name: match[2] as string } : undefined;
}

export interface QemuPaths {
  overlay: string;
  qmpSocket: string;
  consoleLog: string;
}

/** The QEMU command line for one node: direct kernel boot, a private user network with one forward. */
export function qemuArgs(spec: MachineSpec, accel: 'kvm' | 'tcg', sshPort: number, paths: QemuPaths): string[] {
  const profile = PROFILES[spec.arch];
  const cmdline = [
    `console=${profile.console}`,
    'root=/dev/vda',
    'rw',
    'quiet',
    'panic=-1',
    'net.ifnames=0',
    `systemd.hostname=${spec.name}`,
    ...(spec.cluster ? [`lab.cluster_mac=${spec.cluster.mac}`, `lab.cluster_ip=${spec.cluster.address}`] : []),
  ].join(' ');
  const clusterNic = spec.cluster
    ? ['-netdev', `vde,id=cluster,sock=${spec.cluster.switchDir}`, '-device', `virtio-net-pci,netdev=cluster,mac=${spec.cluster.mac}`]
    : [];
  return [
    '-name',
    `guest=${spec.name},process=${runLabel(spec.runId, spec.name)}`,
    '-accel',
    accel === 'kvm' ? 'kvm' : 'tcg,thread=multi,tb-size=256',
    '-M',
    profile.machine,
    '-cpu',
    profile.cpu(accel),
    '-smp',
    String(spec.cpus),
    '-m',
    String(spec.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    spec.image.kernel,
    '-initrd',
    spec.image.initrd,
    '-append',
    cmdline,
    '-drive',
    `file=${paths.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
    // restrict=on: the guest reaches nothing outside; only the SSH forward on 127.0.0.1 comes in.
    '-netdev',
    `user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
    '-device',
    `virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC}`,
    ...clusterNic,
    '-chardev',
    `file,id=console,path=${paths.consoleLog}`,
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${paths.qmpSocket},server=on,wait=off`,
  ];
}
