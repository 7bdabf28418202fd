import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hypervisor } from '@unraid/libvirt';
import { freeLoopbackPort } from '../../net/ports.js';
import { run } from '../../util/proc.js';
import { detectAccel, type Accel } from '../accel.js';
import type { Driver, DriverInfo, MachineSpec, RunHost, Vm, VmSnapshots } from '../driver.js';
import type { NodeControl } from '../faults.js';
import { kernelCmdline, labelledHypervisors, qemuBinary } from '../guest.js';
import { PrivateLibvirtd } from './daemon.js';
import { domainName, domainXml, type DomainPaths } from './domain-xml.js';
import { DomainVm, Domains } from './domains.js';

/** Problems that stop the libvirt-based drivers here, each with what to do about it. */
export async function libvirtProblems(binaries: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const binary of ['libvirtd', 'qemu-img', 'unshare', 'setpriv', ...binaries]) {
    const found = await run(['sh', '-c', `command -v ${binary}`], { check: false });
    if (found.code !== 0) problems.push(`${binary} is missing: run bin/lab setup (it installs libvirt, Vagrant and QEMU)`);
  }
  try {
    await import('@unraid/libvirt');
  } catch (error) {
    problems.push(`the libvirt binding does not load (${(error as Error).message}): run bin/lab setup`);
  }
  return problems;
}

/** The API of the run's libvirtd, the daemon itself when the lab started it, and its domains. */
export class LibvirtConnection {
  readonly domains: Domains;

  constructor(
    readonly hypervisor: Hypervisor,
    readonly uri: string,
    private readonly daemon?: PrivateLibvirtd,
  ) {
    this.domains = new Domains(hypervisor, daemon);
  }

  /** Lets go of the API, and stops the lab's daemon unless the run is kept (its domains live in it). */
  async close(options: { keep?: boolean } = {}): Promise<void> {
    await this.hypervisor.connectClose().catch(() => undefined);
    if (!options.keep) await this.daemon?.stop();
  }
}

/**
 * Connects to libvirtd: by default a private one started for the run (see PrivateLibvirtd); with
 * `uri`, a libvirtd of the user's, which must already answer: the lab never assumes one.
 */
export async function connectLibvirt(host: RunHost, uri: string | undefined): Promise<LibvirtConnection> {
  const { Hypervisor } = await import('@unraid/libvirt');
  let daemon: PrivateLibvirtd | undefined;
  if (!uri) {
    const started = new PrivateLibvirtd(host.stateDir, host.persistent);
    await host.log.step("starting the run's libvirtd", () => started.start());
    daemon = started;
    uri = started.uri;
  }
  const hypervisor = new Hypervisor({ uri });
  try {
    await hypervisor.connectOpen();
  } catch (error) {
    await daemon?.stop();
    throw new Error(
      `cannot reach libvirtd at ${uri}: ${(error as Error).message}` +
        (daemon ? '' : '\nstart it (libvirtd -d) or unset LAB_LIBVIRT_URI to let the lab run a private one'),
    );
  }
  return new LibvirtConnection(hypervisor, uri, daemon);
}

/**
 * Runs each node as a transient libvirt domain, through the libvirt API (@unraid/libvirt), in a
 * private libvirtd per run unless LAB_LIBVIRT_URI names another. Networking is the qemu driver's:
 * a user-mode NIC with an SSH forward on 127.0.0.1, and the run's vde switch for the cluster link.
 */
export class LibvirtDriver implements Driver {
  readonly name = 'libvirt' as const;
  private accel: Accel | undefined;
  private connection: LibvirtConnection | undefined;

  constructor(private readonly uri = process.env.LAB_LIBVIRT_URI) {}

  async info(): Promise<DriverInfo> {
    const where = this.uri ? `libvirtd at ${this.uri}` : 'a private libvirtd per run';
    return {
      name: this.name,
      problems: await libvirtProblems(['virsh']),
      acceleration: `${this.accel ? `${this.accel.kind} (${this.accel.why})` : 'not probed yet'}; ${where}`,
    };
  }

  async open(host: RunHost): Promise<void> {
    this.connection = await connectLibvirt(host, this.uri);
  }

  async close(options: { keep?: boolean } = {}): Promise<void> {
    // A kept run's daemon stays with its domains; `lab down` stops it by its state folder.
    await this.connection?.close(options);
    this.connection = undefined;
  }

  async create(spec: MachineSpec): Promise<Vm> {
    mkdirSync(spec.stateDir, { recursive: true });
    mkdirSync(spec.logDir, { recursive: true });
    const endpoint = {
      host: '127.0.0.1',
      port: spec.sshPort ?? (await freeLoopbackPort()),
      user: 'root',
      privateKeyFile: spec.image.clientKey,
      hostKey: spec.image.hostKey,
    };
    const vm = new LibvirtVm(spec, endpoint, () => this.opened(), async () => {
      this.accel ??= await detectAccel(spec.arch, qemuBinary(spec.arch), spec.image.kernel);
      return this.accel.kind;
    });
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', spec.restore?.disk ?? spec.image.disk, vm.overlay]);
    return vm;
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }

  private opened(): LibvirtConnection {
    if (!this.connection) throw new Error('the libvirt driver is not open');
    return this.connection;
  }
}

/**
 * A node as a transient domain. Snapshots use libvirt's own save and restore: a saved domain is
 * gone, so saving one restores it at once (paused, on a new overlay over its frozen disk) with
 * the domain XML adjusted, as `virsh restore --xml` allows.
 */
class LibvirtVm extends DomainVm {
  /** Overlays made by snapshots so far. */
  private overlays = 0;
  overlay: string;

  constructor(
    spec: MachineSpec,
    ssh: Vm['ssh'],
    private readonly connection: () => LibvirtConnection,
    private readonly accel: () => Promise<'kvm' | 'tcg'>,
  ) {
    super(spec, ssh, domainName(spec), join(spec.logDir, 'console.log'));
    this.overlay = join(spec.stateDir, 'disk.qcow2');
  }

  protected domains(): Domains | undefined {
    return this.connection().domains;
  }

  get control(): NodeControl {
    return { driver: 'libvirt', uri: this.connection().uri, domain: this.domainName };
  }

  private async xml(saved?: DomainPaths['saved']): Promise<string> {
    const xml = domainXml(this.spec, await this.accel(), this.ssh.port, { overlay: this.overlay, consoleLog: this.consoleLog, saved });
    writeFileSync(join(this.spec.stateDir, 'domain.xml'), xml);
    return xml;
  }

  protected async boot(): Promise<void> {
    const connection = this.connection();
    if (this.spec.restore) {
      await this.restoreFrom(this.spec.restore.state);
      return;
    }
    // As with the qemu driver, the free port can be taken before QEMU binds it: try a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await connection.hypervisor.domainCreateXML(await this.xml());
        break;
      } catch (error) {
        const message = (error as Error).message;
        if (attempt < 3 && this.spec.sshPort === undefined && /host forwarding rule|Could not set up host forwarding/.test(message)) {
          this.ssh = { ...this.ssh, port: await freeLoopbackPort() };
          continue;
        }
        throw new Error(`libvirt could not start ${this.spec.name}: ${message}`);
      }
    }
    this.watch();
  }

  /** `virsh restore --paused` with the domain XML of this VM (its name, ports, overlay and console). */
  private async restoreFrom(state: string): Promise<void> {
    const xmlFile = join(this.spec.stateDir, 'domain.xml');
    const saved = await run(['virsh', '-c', this.connection().uri, 'save-image-dumpxml', state], { check: false });
    const name = /<name>([^<]+)<\/name>/.exec(saved.stdout)?.[1];
    const uuid = /<uuid>([^<]+)<\/uuid>/.exec(saved.stdout)?.[1];
    if (!name || !uuid) throw new Error(`libvirt could not read the saved domain in ${state}: ${saved.stderr.trim() || 'no <name> or <uuid> in its XML'}`);
    // libvirt restores a domain only under the name and UUID it was saved with (so two runs sharing
    // one libvirtd cannot restore the same layer at once); the QEMU process still carries this run's label.
    this.domainName = name;
    await this.xml({ name, uuid });
    const restored = await run(['virsh', '-c', this.connection().uri, 'restore', state, '--xml', xmlFile, '--paused'], { check: false });
    if (restored.code !== 0) throw new Error(`libvirt could not restore ${this.spec.name} from ${state}: ${restored.stderr.trim()}`);
    this.exited = undefined;
    this.watch();
  }

  protected async remove(): Promise<void> {
    rmSync(this.spec.stateDir, { recursive: true, force: true });
  }

  private domain() {
    return this.connection().hypervisor.domainLookupByName(this.domainName);
  }

  readonly snapshots: VmSnapshots = {
    saveDropsConnections: true,
    pause: async () => (await this.domain()).suspend(),
    resume: async () => (await this.domain()).resume(),
    save: async (dir) => {
      const state = join(dir, `${this.spec.name}.state`);
      // The domain ends with its save: stop watching it, or that would read as a crash.
      this.unwatch?.();
      this.unwatch = undefined;
      const saved = await run(['virsh', '-c', this.connection().uri, 'save', this.domainName, state, '--paused'], { check: false });
      if (saved.code !== 0) throw new Error(`libvirt could not save ${this.spec.name}: ${saved.stderr.trim()}`);
      const frozen = this.overlay;
      this.overlay = join(this.spec.stateDir, `disk-${++this.overlays}.qcow2`);
      await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', frozen, this.overlay]);
      await this.restoreFrom(state);
      return { state, frozenDisk: frozen, cmdline: this.spec.restore?.cmdline ?? kernelCmdline(this.spec) };
    },
  };
}
