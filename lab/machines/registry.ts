import type { Driver } from './driver.js';

/**
 * Every driver, listed once: the scenario schema, its rules, the CLI and the run read this table.
 * Adding a driver is a folder under lab/machines/ plus one line here. Drivers load lazily, so
 * reading the names costs nothing.
 */
export const DRIVER_NAMES = ['qemu', 'libvirt', 'vagrant'] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

export interface DriverEntry {
  /** What makes the VMs, for help texts. */
  summary: string;
  /** Whether its VMs can be saved as snapshot layers and restored from them. */
  snapshots: boolean;
  /** Whether disks can be plugged into its running VMs (the emulated Nova's volume attach). */
  hotplug: boolean;
  load(): Promise<Driver>;
}

export const DRIVERS: Record<DriverName, DriverEntry> = {
  qemu: {
    summary: 'one qemu-system process per node, no daemon',
    snapshots: true,
    hotplug: true,
    load: async () => new (await import('./qemu/driver.js')).QemuDriver(),
  },
  libvirt: {
    summary: 'transient libvirt domains through the libvirt API, in a libvirtd of the run',
    snapshots: true,
    hotplug: true,
    load: async () => new (await import('./libvirt/driver.js')).LibvirtDriver(),
  },
  vagrant: {
    summary: 'vagrant up with vagrant-libvirt, in a network namespace of the run',
    snapshots: false,
    hotplug: false,
    load: async () => new (await import('./vagrant/driver.js')).VagrantDriver(),
  },
};

export const loadDriver = (name: DriverName): Promise<Driver> => DRIVERS[name].load();

/** Every driver, for `lab doctor` and for finding the processes of killed runs. */
export const allDrivers = (): Promise<Driver[]> => Promise.all(DRIVER_NAMES.map(loadDriver));
