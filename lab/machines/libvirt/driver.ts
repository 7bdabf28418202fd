import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Domain, Hypervisor } from '@unraid/libvirt';
import { freeLoopbackPort } from '../../net/ports.js';
import { run } from '../../util/proc.js';
import { detectAccel, type Accel } from '../accel.js';
import type { Driver, DriverInfo, MachineSpec, RunHost, Vm } from '../driver.js';
import { labelledHypervisors, qemuBinary } from '../guest.js';
import { PrivateLibvirtd } from './daemon.js';
import { domainName, domainXml, type DomainPaths } from './domain-xml.js';

/** How often a running domain is looked up, to notice that it stopped. */
const WATCH_MS = 1000;

class LibvirtVm implements Vm {
  domain: Domain | undefined;
  exited: string | undefined;
  readonly paths: DomainPaths;
  private watcher: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: MachineSpec,
    public ssh: Vm['ssh'],
  ) {
    this.paths = { overlay: join(spec.stateDir, 'disk.qcow2'), consoleLog: join(spec.logDir, 'console.log') };
  }

  get consoleLog(): string {
    return this.paths.consoleLog;
  }

  exitReason(): string | undefined {
    return this.exited;
  }

  async stoppedWithin(ms: number): Promise<string | undefined> {
    for (const deadline = Date.now() + ms; !this.exited && this.watcher && Date.now() < deadline;) await sleep(100);
    return this.exited;
  }

  /** Polls the domain: a transient domain that is gone has stopped (powered off, crashed or killed). */
  watch(hypervisor: Hypervisor, daemon: PrivateLibvirtd | undefined): void {
    this.watcher = setInterval(() => {
      const daemonGone = daemon?.exitReason();
      if (daemonGone) return this.stopped(`the run's libvirtd stopped: ${daemonGone}`);
      hypervisor
        .domainLookupByName(domainName(this.spec))
        .then((domain) => domain.getInfo())
        .then((info) => {
          if (info.state === 5 /* VIR_DOMAIN_SHUTOFF */ || info.state === 6 /* VIR_DOMAIN_CRASHED */)
            this.stopped(`the libvirt domain ${domainName(this.spec)} is ${info.state === 5 ? 'shut off' : 'crashed'}`);
        })
        .catch(() => this.stopped(`the libvirt domain ${domainName(this.spec)} is gone (its QEMU exited or was killed)`));
    }, WATCH_MS);
    this.watcher.unref();
  }

  stopped(reason: string): void {
    this.exited ??= reason;
    clearInterval(this.watcher);
    this.watcher = undefined;
  }
}

/**
 * Runs each node as a transient libvirt domain, through the libvirt API (@unraid/libvirt). By
 * default every run gets a private libvirtd (see PrivateLibvirtd); LAB_LIBVIRT_URI points the lab
 * at a libvirtd of the user's instead, which must already answer: the lab never assumes one.
 * Networking is the qemu driver's: a user-mode NIC with an SSH forward on 127.0.0.1, and the run's
 * vde switch for the cluster link.
 */
export class LibvirtDriver implements Driver {
  readonly name = 'libvirt' as const;
  private accel: Accel | undefined;
  private daemon: PrivateLibvirtd | undefined;
  private hypervisor: Hypervisor | undefined;

  constructor(private readonly uri = process.env.LAB_LIBVIRT_URI) {}

  async info(): Promise<DriverInfo> {
    const problems: string[] = [];
    for (const binary of ['libvirtd', 'qemu-img', 'unshare', 'setpriv']) {
      const found = await run(['sh', '-c', `command -v ${binary}`], { check: false });
      if (found.code !== 0) problems.push(`${binary} is missing: install libvirt-daemon-system qemu-utils util-linux (bin/lab setup does)`);
    }
    try {
      await import('@unraid/libvirt');
    } catch (error) {
      problems.push(`the libvirt binding does not load (${(error as Error).message}): run bin/lab setup`);
    }
    const where = this.uri ? `libvirtd at ${this.uri}` : 'a private libvirtd per run';
    return {
      name: this.name,
      problems,
      acceleration: `${this.accel ? `${this.accel.kind} (${this.accel.why})` : 'not probed yet'}; ${where}`,
    };
  }

  async open(host: RunHost): Promise<void> {
    const { Hypervisor } = await import('@unraid/libvirt');
    let uri = this.uri;
    if (!uri) {
      this.daemon = new PrivateLibvirtd(host.stateDir, host.persistent);
      await host.log.step("starting the run's libvirtd", () => this.daemon!.start());
      uri = this.daemon.uri;
    }
    const hypervisor = new Hypervisor({ uri });
    try {
      await hypervisor.connectOpen();
    } catch (error) {
      throw new Error(
        `cannot reach libvirtd at ${uri}: ${(error as Error).message}\n` +
          (this.uri ? 'start it (libvirtd -d) or unset LAB_LIBVIRT_URI to let the lab run a private one' : ''),
      );
    }
    this.hypervisor = hypervisor;
  }

  async close(options: { keep?: boolean } = {}): Promise<void> {
    await this.hypervisor?.connectClose().catch(() => undefined);
    this.hypervisor = undefined;
    // A kept run's domains live in this daemon: it stays, and `lab down` stops it by its state folder.
    if (!options.keep) await this.daemon?.stop();
  }

  async create(spec: MachineSpec): Promise<Vm> {
    mkdirSync(spec.stateDir, { recursive: true });
    mkdirSync(spec.logDir, { recursive: true });
    const vm = new LibvirtVm(spec, {
      host: '127.0.0.1',
      port: await freeLoopbackPort(),
      user: 'root',
      privateKeyFile: spec.image.clientKey,
      hostKey: spec.image.hostKey,
    });
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', spec.image.disk, vm.paths.overlay]);
    return vm;
  }

  async start(vm: Vm): Promise<void> {
    const lvm = vm as LibvirtVm;
    const hypervisor = this.connected();
    this.accel ??= await detectAccel(lvm.spec.arch, qemuBinary(lvm.spec.arch), lvm.spec.image.kernel);
    // As with the qemu driver, the free port can be taken before QEMU binds it: try a few times.
    for (let attempt = 1; ; attempt++) {
      const xml = domainXml(lvm.spec, this.accel.kind, lvm.ssh.port, lvm.paths);
      writeFileSync(join(lvm.spec.stateDir, 'domain.xml'), xml);
      try {
        lvm.domain = await hypervisor.domainCreateXML(xml);
        break;
      } catch (error) {
        const message = (error as Error).message;
        if (attempt < 3 && /host forwarding rule|Could not set up host forwarding/.test(message)) {
          lvm.ssh = { ...lvm.ssh, port: await freeLoopbackPort() };
          continue;
        }
        throw new Error(`libvirt could not start ${lvm.spec.name}: ${message}`);
      }
    }
    lvm.watch(hypervisor, this.daemon);
  }

  async stop(vm: Vm, graceMs: number): Promise<void> {
    const lvm = vm as LibvirtVm;
    const domain = lvm.domain;
    if (!domain || lvm.exited || !this.hypervisor) return;
    if (graceMs > 0) {
      // ACPI power button, then the domain's on_poweroff=destroy ends the transient domain.
      await domain.shutdown().catch(() => undefined);
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && !(await this.gone(lvm))) await sleep(250);
    }
    if (!(await this.gone(lvm))) await domain.destroy().catch(() => undefined);
    lvm.stopped('stopped by the lab');
  }

  async destroy(vm: Vm): Promise<void> {
    await this.stop(vm, 0);
    rmSync(vm.spec.stateDir, { recursive: true, force: true });
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }

  private connected(): Hypervisor {
    if (!this.hypervisor) throw new Error('the libvirt driver is not open: call open() first');
    return this.hypervisor;
  }

  private async gone(vm: LibvirtVm): Promise<boolean> {
    try {
      const info = await (await this.connected().domainLookupByName(domainName(vm.spec))).getInfo();
      return info.state === 5;
    } catch {
      return true;
    }
  }
}
