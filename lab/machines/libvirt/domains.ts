import { setTimeout as sleep } from 'node:timers/promises';
import type { Hypervisor } from '@unraid/libvirt';
import type { MachineSpec, Vm } from '../driver.js';
import type { PrivateLibvirtd } from './daemon.js';

/** How often a running domain is looked up, to notice that it stopped. */
const WATCH_MS = 1000;
const SHUTOFF = 5;
const CRASHED = 6;

/** Watching and stopping domains by name, for the drivers that go through libvirt (libvirt, vagrant). */
export class Domains {
  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly daemon?: PrivateLibvirtd,
  ) {}

  /** Why the domain is not running (shut off, crashed, gone, its daemon dead), or undefined while it runs. */
  async whyStopped(name: string): Promise<string | undefined> {
    const daemonGone = this.daemon?.exitReason();
    if (daemonGone) return `the run's libvirtd stopped: ${daemonGone}`;
    try {
      const { state } = await (await this.hypervisor.domainLookupByName(name)).getInfo();
      if (state === SHUTOFF) return `the libvirt domain ${name} is shut off`;
      if (state === CRASHED) return `the libvirt domain ${name} crashed`;
      return undefined;
    } catch {
      return `the libvirt domain ${name} is gone (its QEMU exited or was killed)`;
    }
  }

  /** Polls the domain and calls `onStop` once with the reason it stopped. Returns a function that stops watching. */
  watch(name: string, onStop: (reason: string) => void): () => void {
    const timer = setInterval(() => {
      void this.whyStopped(name).then((reason) => {
        if (reason) {
          clearInterval(timer);
          onStop(reason);
        }
      });
    }, WATCH_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** A hard stop (virsh destroy). Idempotent. */
  async stop(name: string): Promise<void> {
    if (await this.whyStopped(name)) return;
    const domain = await this.hypervisor.domainLookupByName(name).catch(() => undefined);
    if (!domain) return;
    await domain.destroy().catch(() => undefined);
  }
}

/**
 * A VM that is a libvirt domain (made by the libvirt or the vagrant driver, which supply how it
 * boots and what removing it takes). It learns that it stopped from a `Domains.watch`.
 */
export abstract class DomainVm implements Vm {
  protected exited: string | undefined;
  protected unwatch: (() => void) | undefined;

  constructor(
    readonly spec: MachineSpec,
    public ssh: Vm['ssh'],
    /** Fixed at boot, except that a restored libvirt domain keeps the name it was saved under. */
    public domainName: string,
    readonly consoleLog: string,
  ) {}

  /** The run's domains, once the driver is open. */
  protected abstract domains(): Domains | undefined;
  /** Makes the domain run (or, restored, paused) and starts watching it. */
  protected abstract boot(signal?: AbortSignal): Promise<void>;
  /** What `destroy` removes besides stopping the domain. */
  protected abstract remove(): Promise<void>;

  async start(signal?: AbortSignal): Promise<void> {
    await this.boot(signal);
  }

  /** A hard stop. Idempotent. */
  async stop(): Promise<void> {
    const domains = this.domains();
    if (!this.unwatch || !domains) return;
    await domains.stop(this.domainName);
    this.stopped('stopped by the lab');
  }

  async destroy(): Promise<void> {
    await this.stop();
    await this.remove();
  }

  exitReason(): string | undefined {
    return this.exited;
  }

  async stoppedWithin(ms: number): Promise<string | undefined> {
    for (const deadline = Date.now() + ms; !this.exited && this.unwatch && Date.now() < deadline;) await sleep(100);
    return this.exited;
  }

  protected watch(): void {
    const domains = this.domains();
    if (domains) this.unwatch = domains.watch(this.domainName, (reason) => this.stopped(reason));
  }

  protected stopped(reason: string): void {
    this.exited ??= reason;
    this.unwatch?.();
    this.unwatch = undefined;
  }
}
