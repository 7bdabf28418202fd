import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIsolated } from '../../net/isolate.js';
import { run } from '../../util/proc.js';
import { detectAccel, type Accel } from '../accel.js';
import type { Driver, DriverInfo, MachineSpec, RunHost, Vm } from '../driver.js';
import { kernelCmdline, labelledHypervisors, qemuBinary } from '../guest.js';
import { DomainVm, type Domains } from '../libvirt/domains.js';
import { connectLibvirt, libvirtProblems, type LibvirtConnection } from '../libvirt/driver.js';
import { ensureBox, vagrantEnv } from './box.js';
import { netmaskOf, parseSshConfig, renderVagrantfile, type VagrantNode } from './vagrantfile.js';

/** CPU models libvirt knows for TCG guests (its "custom" mode has no `max`). */
const CPU_MODEL = { amd64: 'qemu64', arm64: 'cortex-a57' } as const;

/** The nodes share one libvirt management network here, so each needs a MAC of its own. */
const mgmtMac = (index: number): string => `52:54:00:1a:b1:${(index + 1).toString(16).padStart(2, '0')}`;

/**
 * Makes the VMs through the Vagrant CLI with vagrant-libvirt, from a Vagrantfile the driver writes
 * for the run (template in vagrant/), against the run's private libvirtd. vagrant-libvirt needs
 * a libvirt management network (a bridge, dnsmasq and NAT rules), so this driver only runs inside
 * a network namespace the run created (`--isolate`). The lab reaches the nodes at the addresses
 * `vagrant ssh-config` reports on that network. The cluster link is an isolated libvirt network
 * (Vagrant's own private_network), so that the Vagrantfile also works by hand; the run's vde
 * switch stays unused.
 */
export class VagrantDriver implements Driver {
  readonly name = 'vagrant' as const;
  private accel: Accel | undefined;
  private host: RunHost | undefined;
  private connection: LibvirtConnection | undefined;
  private readonly nodes: VagrantNode[] = [];
  /** `vagrant up` one node at a time: concurrent ups race to create the shared networks. */
  private upQueue: Promise<unknown> = Promise.resolve();

  async info(): Promise<DriverInfo> {
    const problems = await libvirtProblems(['vagrant']);
    const plugins = await run(['vagrant', 'plugin', 'list'], { env: vagrantEnv(), check: false }).catch(() => undefined);
    if (plugins && !plugins.stdout.includes('vagrant-libvirt')) problems.push('the vagrant-libvirt plugin is missing: run bin/lab setup');
    return { name: this.name, problems, acceleration: this.accel ? `${this.accel.kind} (${this.accel.why})` : 'not probed yet' };
  }

  async open(host: RunHost): Promise<void> {
    if (!isIsolated())
      throw new Error(
        'the vagrant driver runs only inside a network namespace of the run: use lab run --isolate (lab run does it by itself)',
      );
    this.host = host;
    const connection = await connectLibvirt(host, undefined);
    this.connection = connection;
    // vagrant-libvirt keeps disks in the pool named "default"; the run's libvirtd starts with none
    // (the binding has no storage API, so virsh it is).
    for (const args of [
      ['pool-define-as', 'default', 'dir', '--target', '/var/lib/libvirt/images'],
      ['pool-build', 'default'],
      ['pool-start', 'default'],
    ])
      await run(['virsh', '-c', connection.uri, ...args]);
    mkdirSync(this.projectDir, { recursive: true });
  }

  async close(): Promise<void> {
    await this.connection?.close();
    this.connection = undefined;
  }

  private get projectDir(): string {
    return join(this.opened().stateDir, 'vagrant');
  }

  async create(spec: MachineSpec, signal?: AbortSignal): Promise<Vm> {
    const host = this.opened();
    mkdirSync(spec.stateDir, { recursive: true });
    mkdirSync(spec.logDir, { recursive: true });
    if (!spec.cluster) throw new Error("the vagrant driver needs the run's cluster addresses");
    const box = await ensureBox(spec.image, host.log, signal);
    this.accel ??= await detectAccel(spec.arch, qemuBinary(spec.arch), spec.image.kernel);
    const mac = mgmtMac(this.nodes.length);
    const consoleLog = join(spec.logDir, 'console.log');
    this.nodes.push({
      name: spec.name,
      box: box.name,
      cpus: spec.cpus,
      memory: spec.memoryMiB,
      domain_type: this.accel.kind === 'kvm' ? 'kvm' : 'qemu',
      cpu_model: CPU_MODEL[spec.arch],
      cmdline: `${kernelCmdline(spec)} lab.mgmt_mac=${mac}`,
      mgmt_mac: mac,
      cluster_ip: spec.cluster.address.split('/')[0] as string,
      cluster_mac: spec.cluster.mac,
      console_log: consoleLog,
    });
    this.writeVagrantfile(spec.cluster.address);
    // Until `vagrant up` reports where SSH listens, the endpoint is unknown.
    const ssh = { host: '', port: 22, user: 'root', privateKeyFile: spec.image.clientKey, hostKey: spec.image.hostKey };
    return new VagrantVm(spec, ssh, `${this.prefix}${spec.name}`, consoleLog, this);
  }

  /** Written again for every node, so the file always lists every node created so far. */
  private writeVagrantfile(clusterAddress: string): void {
    const host = this.opened();
    const text = renderVagrantfile({
      runId: host.runId,
      prefix: this.prefix,
      clusterNetwork: 'lab-cluster',
      clusterNetmask: netmaskOf(Number(clusterAddress.split('/')[1])),
      nodes: this.nodes,
    });
    writeFileSync(join(this.projectDir, 'Vagrantfile'), text);
    // A copy in the run's logs, for a user to run by hand.
    writeFileSync(join(host.logDir, 'Vagrantfile'), text);
  }

  private get prefix(): string {
    return `lab-${this.opened().runId}-`;
  }

  /** `vagrant up` of one node, after the ones before it (see upQueue). */
  up(vm: VagrantVm, signal?: AbortSignal): Promise<void> {
    const up = this.upQueue.then(() => this.upNow(vm, signal));
    this.upQueue = up.catch(() => undefined);
    return up;
  }

  /** Where and how every Vagrant command of the run runs: in its project, against its libvirtd. */
  private vagrantOptions(): { cwd: string; env: NodeJS.ProcessEnv } {
    const connection = this.connection;
    if (!connection) throw new Error('the vagrant driver is not open');
    return { cwd: this.projectDir, env: vagrantEnv({ LIBVIRT_DEFAULT_URI: connection.uri }) };
  }

  private async upNow(vm: VagrantVm, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const name = vm.spec.name;
    const vagrantLog = join(vm.spec.logDir, 'vagrant.log');
    const options = {
      ...this.vagrantOptions(),
      signal,
      group: () => undefined,
      onLine: (line: string) => appendFileSync(vagrantLog, `${line}\n`),
    };
    // pdeathsig: a killed lab takes its vagrant with it.
    const vagrant = (...args: string[]) => ['setpriv', '--pdeathsig', 'KILL', '--', 'vagrant', ...args];
    try {
      await run(vagrant('up', name, '--provider=libvirt', '--no-provision'), options);
    } catch (error) {
      throw new Error(`vagrant up ${name} failed (log: ${vagrantLog})\n${(error as Error).message}`);
    }
    const config = parseSshConfig((await run(vagrant('ssh-config', name), options)).stdout);
    vm.ssh = { ...vm.ssh, host: config.host, port: config.port, user: config.user };
  }

  get domains(): Domains | undefined {
    return this.connection?.domains;
  }

  /** Removes the domain and its disk from the run's libvirtd; the daemon and its folders go with the run. */
  async remove(vm: VagrantVm): Promise<void> {
    if (this.connection) await run(['vagrant', 'destroy', '-f', vm.spec.name], { ...this.vagrantOptions(), check: false });
    rmSync(vm.spec.stateDir, { recursive: true, force: true });
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }

  private opened(): RunHost {
    if (!this.host) throw new Error('the vagrant driver is not open');
    return this.host;
  }
}

/** A node made by `vagrant up`: a libvirt domain of the run's libvirtd. Vagrant offers no snapshots of a whole cluster. */
class VagrantVm extends DomainVm {
  constructor(
    spec: MachineSpec,
    ssh: Vm['ssh'],
    domainName: string,
    consoleLog: string,
    private readonly driver: VagrantDriver,
  ) {
    super(spec, ssh, domainName, consoleLog);
  }

  protected domains(): Domains | undefined {
    return this.driver.domains;
  }

  protected async boot(signal?: AbortSignal): Promise<void> {
    await this.driver.up(this, signal);
    this.watch();
  }

  protected remove(): Promise<void> {
    return this.driver.remove(this);
  }
}
