import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hypervisor } from '@unraid/libvirt';
import { freeLoopbackPort } from '../../net/ports.js';
import { run } from '../../util/proc.js';
import { detectAccel, type Accel } from '../accel.js';
import type { Driver, DriverInfo, MachineSpec, RunHost, Vm } from '../driver.js';
import { labelledHypervisors, qemuBinary } from '../guest.js';
import { PrivateLibvirtd } from './daemon.js';
import { domainName, domainXml } from './domain-xml.js';
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
      problems: await libvirtProblems([]),
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
      port: await freeLoopbackPort(),
      user: 'root',
      privateKeyFile: spec.image.clientKey,
      hostKey: spec.image.hostKey,
    };
    const vm = new DomainVm(spec, endpoint, domainName(spec), join(spec.logDir, 'console.log'));
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', spec.image.disk, overlayOf(spec)]);
    return vm;
  }

  async start(vm: Vm): Promise<void> {
    const dvm = vm as DomainVm;
    const connection = this.connection;
    if (!connection) throw new Error('the libvirt driver is not open');
    this.accel ??= await detectAccel(dvm.spec.arch, qemuBinary(dvm.spec.arch), dvm.spec.image.kernel);
    // As with the qemu driver, the free port can be taken before QEMU binds it: try a few times.
    for (let attempt = 1; ; attempt++) {
      const xml = domainXml(dvm.spec, this.accel.kind, dvm.ssh.port, { overlay: overlayOf(dvm.spec), consoleLog: dvm.consoleLog });
      writeFileSync(join(dvm.spec.stateDir, 'domain.xml'), xml);
      try {
        await connection.hypervisor.domainCreateXML(xml);
        break;
      } catch (error) {
        const message = (error as Error).message;
        if (attempt < 3 && /host forwarding rule|Could not set up host forwarding/.test(message)) {
          dvm.ssh = { ...dvm.ssh, port: await freeLoopbackPort() };
          continue;
        }
        throw new Error(`libvirt could not start ${dvm.spec.name}: ${message}`);
      }
    }
    dvm.watchWith(connection.domains);
  }

  async stop(vm: Vm, graceMs: number): Promise<void> {
    // ACPI power button, then the domain's on_poweroff=destroy ends the transient domain.
    await this.connection?.domains.stopVm(vm as DomainVm, graceMs);
  }

  async destroy(vm: Vm): Promise<void> {
    await this.stop(vm, 0);
    rmSync(vm.spec.stateDir, { recursive: true, force: true });
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }
}

const overlayOf = (spec: MachineSpec): string => join(spec.stateDir, 'disk.qcow2');
