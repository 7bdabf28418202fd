import { createHash } from 'node:crypto';
import type { Arch } from './arch.js';
import { processes } from '../util/procfs.js';
import type { MachineSpec } from './driver.js';

/** What every driver shares about booting a lab image: the QEMU flavour per arch and the kernel command line. */

/** The management NIC always has this MAC; the image's networkd config matches on it. */
export const MGMT_MAC = '52:54:00:1a:b0:01';

/** The monitor's id of the cluster link's netdev (a fault cuts the link by this name). */
export const CLUSTER_NETDEV = 'cluster';

export interface ArchProfile {
  binary: string;
  /** libvirt's name for the architecture. */
  libvirtArch: string;
  machine: string;
  /** The machine's root PCI bus, for devices placed at fixed slots. */
  pciRoot: string;
  /** libvirt <features> the guest needs: without <acpi/> libvirt passes -no-acpi (no power button, a poor clock). */
  libvirtFeatures: string;
  cpu: (accel: 'kvm' | 'tcg') => string;
  console: string;
  /** Kernel options for this arch's guests, on every driver's command line (and in the machines layer's key). */
  kernelOptions: string[];
}

export const ARCH_PROFILES: Record<Arch, ArchProfile> = {
  amd64: {
    binary: 'qemu-system-x86_64',
    libvirtArch: 'x86_64',
    machine: 'pc',
    pciRoot: 'pci.0',
    libvirtFeatures: '<acpi/><apic/>',
    cpu: (accel) => (accel === 'kvm' ? 'host' : 'max'),
    console: 'ttyS0',
    // TCG's vCPUs share one TSC, but the kernel's sync test finds them apart and falls back to
    // the HPET: every clock read then traps into QEMU under its global lock (1 us each on an idle
    // guest, 10 us in a busy cluster, where Node.js and Go read the clock all the time). With the
    // TSC a read is the vDSO's (0.13 us). Under KVM, kvm-clock still wins on its rating.
    kernelOptions: ['tsc=reliable'],
  },
  arm64: {
    binary: 'qemu-system-aarch64',
    libvirtArch: 'aarch64',
    machine: 'virt',
    pciRoot: 'pcie.0',
    libvirtFeatures: '<gic version="3"/>',
    cpu: (accel) => (accel === 'kvm' ? 'host' : 'max,pauth-impdef=on'),
    console: 'ttyAMA0',
    kernelOptions: [],
  },
};

export const qemuBinary = (arch: Arch): string => ARCH_PROFILES[arch].binary;

/** A label on every hypervisor process, so the processes of a run can be found after a crash. */
export const runLabel = (runId: string, node: string): string => `lab:${runId}:${node}`;

/** The run and node of an argument that carries `process=<run label>`. */
export function parseRunLabel(arg: string): { runId: string; name: string } | undefined {
  const match = /process=lab:([^:,\s]+):([^:,\s]+)/.exec(arg);
  return match ? { runId: match[1] as string, name: match[2] as string } : undefined;
}

/**
 * The guest kernel's command line. The cluster NIC's MAC and address ride on it (a boot unit in
 * the image writes the networkd file from them), and so does the run label: drivers that do not
 * choose QEMU's `-name` (libvirt, Vagrant) still start processes that carry it.
 */
export function kernelCmdline(spec: MachineSpec): string {
  return [
    `console=${ARCH_PROFILES[spec.arch].console}`,
    'root=/dev/vda',
    'rw',
    'quiet',
    'panic=-1',
    'net.ifnames=0',
    ...ARCH_PROFILES[spec.arch].kernelOptions,
    `systemd.hostname=${spec.name}`,
    // Clones of one image must not share a machine ID (journald, DHCP, Kubernetes node IDs use it).
    `systemd.machine_id=${createHash('sha256').update(`${spec.runId}/${spec.name}`).digest('hex').slice(0, 32)}`,
    ...(spec.cluster ? [`lab.cluster_mac=${spec.cluster.mac}`, `lab.cluster_ip=${spec.cluster.address}`] : []),
    `lab.process=${runLabel(spec.runId, spec.name)}`,
  ].join(' ');
}

/**
 * The management NIC's user-mode network: restrict=on, so the guest reaches nothing outside but
 * what is forwarded: SSH in from 127.0.0.1, and each of the run's host services out, every
 * connection handed by QEMU to a socat of its own that connects to 127.0.0.1 (QEMU's own tcp
 * chardev would connect once, at start).
 */
export function mgmtNetdev(spec: MachineSpec, sshPort: number): string {
  const services = (spec.hostServices ?? []).map((s) => `,guestfwd=tcp:${s.address}:${s.port}-cmd:socat STDIO TCP:127.0.0.1:${s.hostPort}`);
  return `user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22${services.join('')}`;
}

/** The vde netdev and NIC of the run's cluster link, as QEMU arguments; `placement` may pin the NIC's PCI slot. */
export function clusterNicArgs(spec: MachineSpec, placement = ''): string[] {
  return spec.cluster
    ? [
        '-netdev',
        `vde,id=${CLUSTER_NETDEV},sock=${spec.cluster.switchDir}`,
        '-device',
        `virtio-net-pci,netdev=${CLUSTER_NETDEV},mac=${spec.cluster.mac}${placement}`,
      ]
    : [];
}

/** Hypervisor processes of one run (or of every run), whichever driver started them, found by their label. */
export function labelledHypervisors(runId?: string): { runId: string; name: string; pid: number }[] {
  const found: { runId: string; name: string; pid: number }[] = [];
  for (const { pid, args } of processes()) {
    if (!args[0]?.includes('qemu-system')) continue;
    const label = parseRunLabel(args.find((arg) => arg.includes('process=lab:')) ?? '');
    if (label && (runId === undefined || label.runId === runId)) found.push({ ...label, pid });
  }
  return found;
}
