import type { MachineSpec } from '../driver.js';
import { ARCH_PROFILES, clusterNicArgs, kernelCmdline, MGMT_MAC, mgmtNetdev, runLabel } from '../guest.js';

export interface QemuPaths {
  overlay: string;
  qmpSocket: string;
  consoleLog: string;
}

/**
 * TCG's translation cache. A cluster node runs a dozen Node.js programs whose JIT code fills a
 * smaller one again and again: with 256 MiB the two-node checks took 260 s, with 1024 MiB 184 s
 * (2048: 180 s). The pages are taken as they are used, up to this much per VM.
 */
export const TB_CACHE_MIB = 1024;

/** The block device's name on the monitor (snapshots switch its overlay by this name). */
export const DISK_ID = 'disk0';

/**
 * The QEMU command line for one node: direct kernel boot, a private user network with one
 * forward. A VM restored from a snapshot layer gets the same devices and the kernel command line
 * it was booted with, and waits paused for its saved state (`-S -incoming defer`).
 */
export function qemuArgs(spec: MachineSpec, accel: 'kvm' | 'tcg', sshPort: number, paths: QemuPaths): string[] {
  const profile = ARCH_PROFILES[spec.arch];
  return [
    '-name',
    `guest=${spec.name},process=${runLabel(spec.runId, spec.name)}`,
    '-accel',
    accel === 'kvm' ? 'kvm' : `tcg,thread=multi,tb-size=${TB_CACHE_MIB}`,
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
    spec.restore?.cmdline ?? kernelCmdline(spec),
    '-drive',
    `file=${paths.overlay},id=${DISK_ID},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
    '-netdev',
    mgmtNetdev(spec, sshPort),
    '-device',
    `virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC}`,
    ...clusterNicArgs(spec),
    '-chardev',
    `file,id=console,path=${paths.consoleLog}`,
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${paths.qmpSocket},server=on,wait=off`,
    ...(spec.restore ? ['-S', '-incoming', 'defer'] : []),
  ];
}
