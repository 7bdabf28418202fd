import { existsSync, readFileSync } from 'node:fs';
import * as allure from 'allure-js-commons';
import { afterAll, afterEach, beforeEach } from 'vitest';
import * as faults from '../machines/faults.js';
import type { NodeControl } from '../machines/faults.js';
import { Machine } from '../remote/machine.js';
import { connectWhenReady, SshSession } from '../remote/ssh.js';
import { AssertionFailed, consoleTail, tail } from '../util/errors.js';
import { notYet, waitFor } from '../util/wait.js';
import { CLUSTER_ENV, FAIL_FAST_ENV, type ClusterDescriptor, type NodeDescriptor } from './descriptor.js';

/**
 * The handle a check file gets on the live cluster. Checks never learn which driver made the
 * nodes: they see names, roles, arches and `Machine` verbs over SSH.
 *
 *     const lab = useCluster();
 *     test('...', async () => { await lab.node('master').succeed('true'); });
 */

export class ClusterNode extends Machine {
  constructor(
    readonly spec: NodeDescriptor,
    session: SshSession,
  ) {
    super(spec.name, session);
  }
  get role(): NodeDescriptor['role'] {
    return this.spec.role;
  }
  get arch(): NodeDescriptor['arch'] {
    return this.spec.arch;
  }

  // Faults on purpose (NixOS tests' crash, block and unblock). Each is a step, and returns once
  // its effect is observable: from the monitor, and from the guest where it still answers.

  /** Hard power-off: the node stops at once, losing what it had not written; `powerOn` boots it again. */
  crash(): Promise<void> {
    return step(`crash ${this.name} (hard power-off)`, async () => {
      await faults.powerOffVm(this.controlOf('crash'));
      // QEMU's state for a machine reset while stopped: as at start-up, before its first instruction.
      await this.expectStatus('prelaunch');
      await this.expectNoAnswer();
    });
  }

  /** Powers on a crashed node: it boots from its disk, and the verb returns once SSH answers again. */
  powerOn(): Promise<void> {
    return step(`power ${this.name} on`, async () => {
      await faults.powerOnVm(this.controlOf('power on'));
      await this.rebooted('');
    });
  }

  /** Hard reset: the node boots again from its disk; returns once it answers SSH with a new boot ID. */
  reboot(): Promise<void> {
    return step(`reboot ${this.name} (hard reset)`, async () => {
      const bootId = (await this.succeed('cat /proc/sys/kernel/random/boot_id', { timeout: 20 })).trim();
      await faults.resetVm(this.controlOf('reboot'));
      await this.rebooted(bootId);
    });
  }

  /**
   * Cuts the node's cluster link (the cable out): returns once the guest sees no carrier on it.
   * (The image's networkd drops the link's address with its carrier, and puts it back after.)
   */
  block(): Promise<void> {
    return step(`cut ${this.name}'s cluster link`, async () => {
      this.clusterInterface ??= (
        await this.succeed(`ip -o -4 addr show to ${this.spec.address}/32 | awk '{print $2; exit}'`, { timeout: 10 })
      ).trim();
      if (!this.clusterInterface) throw new AssertionFailed(`${this.name} holds no ${this.spec.address}: it has no cluster link to cut`);
      await faults.setClusterLink(this.controlOf('block'), false);
      await this.expectLink('0', false);
    });
  }

  /** Puts the cluster link back: returns once the guest sees its carrier and holds its address again. */
  unblock(): Promise<void> {
    return step(`restore ${this.name}'s cluster link`, async () => {
      await faults.setClusterLink(this.controlOf('unblock'), true);
      if (this.clusterInterface) await this.expectLink('1', true);
    });
  }

  /** Freezes the node's CPUs (its clock too): it answers nothing until `resume`. */
  pause(): Promise<void> {
    return step(`pause ${this.name}`, async () => {
      await faults.pauseVm(this.controlOf('pause'));
      await this.expectStatus('paused');
    });
  }

  /** Lets a paused node go on where it stopped; returns once it answers a command. */
  resume(): Promise<void> {
    return step(`resume ${this.name}`, async () => {
      await faults.resumeVm(this.controlOf('resume'));
      await this.expectStatus('running');
      await this.waitUntilSucceeds('true', { timeoutMs: 60_000 });
    });
  }

  /** The guest's name of its cluster link's interface, found before the first cut. */
  private clusterInterface: string | undefined;

  private controlOf(verb: string): NodeControl {
    if (!this.spec.control)
      throw new Error(`${this.name} cannot ${verb}: its driver gives checks no hold on the hypervisor (the qemu and libvirt drivers do)`);
    return this.spec.control;
  }

  private expectStatus(status: string): Promise<string> {
    return waitFor({ what: `${this.name}'s hypervisor to say ${status}`, timeoutMs: 30_000, intervalMs: 250 }, async () => {
      const now = await faults.vmStatus(this.controlOf('report its state'));
      return now === status ? now : notYet(now);
    });
  }

  /** A node that is off answers no SSH login (QEMU still takes the connection, nothing speaks on it). */
  private async expectNoAnswer(): Promise<void> {
    const answered = await SshSession.connect(this.spec.ssh, 5000).then(
      (session) => (session.close(), true),
      () => false,
    );
    if (answered) throw new AssertionFailed(`${this.name} still answers SSH after it was powered off`);
  }

  private async rebooted(previousBootId: string): Promise<void> {
    const session = await connectWhenReady(this.spec.ssh, {
      what: `an SSH login on ${this.name} after its boot`,
      timeoutMs: 240_000,
    }).catch((error: unknown) => {
      // Where the boot stopped is on the console, and CI's log shows only the message.
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${consoleTail(this.spec.consoleLog)}`, { cause: error });
    });
    this.reconnected(session);
    await faults.bootedAgain(this.controlOf('boot'));
    const bootId = (await this.succeed('cat /proc/sys/kernel/random/boot_id', { timeout: 20 })).trim();
    if (bootId === previousBootId) throw new AssertionFailed(`${this.name} answers with its old boot ID ${bootId}: it did not boot again`);
  }

  /** The guest's view of its cluster link: the carrier, and whether it holds its address. */
  private expectLink(carrier: '0' | '1', holdsAddress: boolean): Promise<string> {
    const read = `cat /sys/class/net/${this.clusterInterface}/carrier; ip -o -4 addr show dev ${this.clusterInterface}`;
    const want = `carrier ${carrier}, ${holdsAddress ? '' : 'not '}holding ${this.spec.address}`;
    return waitFor({ what: `${this.name}'s cluster link to show ${want}`, timeoutMs: 30_000, intervalMs: 500 }, async () => {
      const [seen = '', ...addresses] = (await this.succeed(read, { timeout: 10 })).trim().split('\n');
      const holds = addresses.some((line) => line.includes(`inet ${this.spec.address}/`));
      return seen === carrier && (holds || !holdsAddress)
        ? seen
        : notYet(`carrier ${seen}, ${holds ? '' : 'not '}holding ${this.spec.address}`);
    });
  }
}

export interface Cluster {
  descriptor: ClusterDescriptor;
  /** Node specs, available synchronously so tests can be declared per node. */
  specs: NodeDescriptor[];
  /** A connected node (connects on first use). */
  node(name: string): Promise<ClusterNode>;
  nodes(): Promise<ClusterNode[]>;
}

export function readDescriptor(): ClusterDescriptor {
  const file = process.env[CLUSTER_ENV];
  if (!file || !existsSync(file))
    throw new Error(`${CLUSTER_ENV} does not name a cluster descriptor; checks run through \`lab run\` or \`lab verify\``);
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterDescriptor;
}

/**
 * Declares the cluster for this check file: connections are opened on demand and closed after
 * the file; a failing test gets the tail of every node's console log attached.
 */
export function useCluster(): Cluster {
  const descriptor = readDescriptor();
  const connections = new Map<string, Promise<ClusterNode>>();
  const node = (name: string): Promise<ClusterNode> => {
    const spec = descriptor.nodes.find((n) => n.name === name);
    if (!spec) throw new Error(`no node named ${name} in run ${descriptor.runId}`);
    let connection = connections.get(name);
    if (!connection) {
      connection = SshSession.connect(spec.ssh).then((session) => new ClusterNode(spec, session));
      connections.set(name, connection);
    }
    return connection;
  };
  // --fail-fast: a check stops at its first failed step (its later steps are skipped); other checks go on.
  let failed = false;
  beforeEach((context) => {
    if (failed && process.env[FAIL_FAST_ENV] === '1') context.skip();
  });
  afterEach(async (context) => {
    if (context.task.result?.state !== 'fail') return;
    failed = true;
    for (const spec of descriptor.nodes) {
      if (existsSync(spec.consoleLog)) {
        await allure.attachment(`${spec.name} console (tail)`, tail(readFileSync(spec.consoleLog, 'utf8'), 60), 'text/plain');
      }
    }
  });
  afterAll(async () => {
    for (const connection of connections.values()) (await connection.catch(() => undefined))?.close();
  });
  return {
    descriptor,
    specs: descriptor.nodes,
    node,
    nodes: () => Promise.all(descriptor.nodes.map((n) => node(n.name))),
  };
}

/** A named step: shows in Allure and in the failure message, so a failure says which step broke. */
export async function step<T>(name: string, body: () => Promise<T>): Promise<T> {
  try {
    return await allure.step(name, body);
  } catch (error) {
    if (error instanceof Error && !error.message.startsWith('step "')) error.message = `step "${name}" failed: ${error.message}`;
    throw error;
  }
}

/** Attaches text (a command's output, a config file) to the current test or step. */
export const attach = async (name: string, content: string): Promise<void> => {
  await allure.attachment(name, content, 'text/plain');
};
