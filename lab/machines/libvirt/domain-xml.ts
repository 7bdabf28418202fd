import type { MachineSpec } from '../driver.js';
import { ARCH_PROFILES, clusterNicArgs, kernelCmdline, MGMT_MAC, mgmtNetdev } from '../guest.js';
import { TB_CACHE_MIB } from '../qemu/args.js';

export interface DomainPaths {
  overlay: string;
  consoleLog: string;
  /** The saved domain's name and UUID, when restoring one (libvirt refuses a restore under others). */
  saved?: { name: string; uuid: string };
}

const escape = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** libvirt's name for a lab VM: unique per run and node, and readable in `virsh list`. */
export const domainName = (spec: MachineSpec): string => `lab-${spec.runId}-${spec.name}`;

/**
 * A transient domain equivalent to the qemu driver's command line: direct kernel boot, one
 * overlay disk, the serial console into a file. libvirt 9.0 forwards host ports only with the
 * passt backend and has no vde interface, so both NICs are given to QEMU as passthrough
 * arguments (libvirt then marks the domain "custom-argv", which is expected). A restored domain
 * gets this run's kernel command line too: the guest read its own at boot, and the process's
 * label (on that line) must name the run that owns it now.
 */
export function domainXml(spec: MachineSpec, accel: 'kvm' | 'tcg', sshPort: number, paths: DomainPaths): string {
  const profile = ARCH_PROFILES[spec.arch];
  // Fixed slots at the end of the root bus, which libvirt's own address allocation never reaches.
  const qemuArgs = [
    '-netdev',
    mgmtNetdev(spec, sshPort),
    '-device',
    `virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC},bus=${profile.pciRoot},addr=0x1e`,
    ...clusterNicArgs(spec, `,bus=${profile.pciRoot},addr=0x1f`),
  ];
  const cpu = accel === 'kvm' ? `<cpu mode='host-passthrough'/>` : `<cpu mode='maximum' check='none'/>`;
  return `<domain type='${accel === 'kvm' ? 'kvm' : 'qemu'}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${escape(paths.saved?.name ?? domainName(spec))}</name>${paths.saved ? `\n  <uuid>${escape(paths.saved.uuid)}</uuid>` : ''}
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <vcpu>${spec.cpus}</vcpu>
  <os>
    <type arch='${profile.libvirtArch}' machine='${profile.machine}'>hvm</type>
    <kernel>${escape(spec.image.kernel)}</kernel>
    <initrd>${escape(spec.image.initrd)}</initrd>
    <cmdline>${escape(kernelCmdline(spec))}</cmdline>
  </os>
  ${cpu}
  <features>${profile.libvirtFeatures}${accel === 'tcg' ? `<tcg><tb-cache unit='MiB'>${TB_CACHE_MIB}</tb-cache></tcg>` : ''}</features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/${profile.binary}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe' discard='unmap'/>
      <source file='${escape(paths.overlay)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='${escape(paths.consoleLog)}'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='${escape(paths.consoleLog)}'/>
      <target type='serial' port='0'/>
    </console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
${qemuArgs.map((arg) => `    <qemu:arg value='${escape(arg)}'/>`).join('\n')}
  </qemu:commandline>
</domain>
`;
}
