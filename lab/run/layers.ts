import { cpSync, existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { userCaDir } from '../certs/flocker-ca.js';
import { detectAccel } from '../machines/accel.js';
import { ARCH_PROFILES, qemuBinary } from '../machines/guest.js';
import { DRIVERS } from '../machines/registry.js';
import { resolveScript, scriptFolders } from '../provision/scripts.js';
import { connectWhenReady } from '../remote/ssh.js';
import type { RestoredFrom, StepResult } from '../report/summary.js';
import type { LoadedScenario } from '../scenario/loader.js';
import { envStrings, type NodeStep } from '../scenario/schema.js';
import { deepestIntact } from '../snapshots/chain.js';
import { fileHash, folderHash, layerKey, namedVariables } from '../snapshots/keys.js';
import { stepClocks } from '../snapshots/resume.js';
import { saveLayer } from '../snapshots/save.js';
import { layerBytes, markUsed, readLayer, snapshotsDir, type Layer } from '../snapshots/store.js';
import { existingAncestor, freeBytes } from '../util/disk.js';
import { run } from '../util/proc.js';
import { nodeArch, type LiveNode, type RunContext } from './context.js';
import { certsDir, controlHost } from './phases/certificates.js';
import { identityFile, type RunCloud } from './phases/cloud.js';
import { hasVolumes, IDENTITY_FILE } from '../cloud/state.js';
import type { Prepared } from './phases/images.js';
import type { ClusterNetwork } from './phases/network.js';
import { needsPayload, payloadEnv } from './phases/payload.js';

export type SnapshotMode = 'on' | 'fresh' | 'off';

/** One layer a scenario's run can save: after the machines, the certificates, the payload, each step. */
export interface PlannedLayer {
  key: string;
  /** "machines", "certificates", "payload" or "step <name>". */
  name: string;
}

/** Below this much free space in the cache, the run saves no more layers (and says so). LAB_SNAPSHOT_MIN_FREE: bytes. */
const minFreeBytes = (): number => {
  const set = Number(process.env.LAB_SNAPSHOT_MIN_FREE);
  return process.env.LAB_SNAPSHOT_MIN_FREE && Number.isFinite(set) ? set : 8 * 1024 ** 3;
};

const qemuVersions = new Map<string, string>();
async function qemuVersion(binary: string): Promise<string> {
  if (!qemuVersions.has(binary)) qemuVersions.set(binary, (await run([binary, '--version'])).stdout.split('\n')[0] ?? '');
  return qemuVersions.get(binary) as string;
}

/**
 * The scenario's layers and their keys, each a hash of the one below and of what decides it: for
 * the machines, the driver, how guests run here, the images and the nodes and network; then the
 * certificates' names, the payload bundles, and each step's definition, script folder and
 * environment (LAB_RUN_ID aside: a layer serves every run).
 */
export async function planLayers(ctx: RunContext, prepared: Prepared, network: ClusterNetwork): Promise<PlannedLayer[]> {
  const { spec } = ctx.scenario;
  const arches = [...prepared.images.keys()];
  const machines = {
    driver: ctx.driver.name,
    guests: await Promise.all(
      arches.map(async (arch) => {
        const image = prepared.images.get(arch);
        if (!image) throw new Error(`no image for ${arch}`);
        const accel = (await detectAccel(arch, qemuBinary(arch), image.kernel)).kind;
        return { arch, accel, qemu: await qemuVersion(qemuBinary(arch)), kernelOptions: ARCH_PROFILES[arch].kernelOptions };
      }),
    ),
    nodes: spec.nodes.map((node) => ({
      name: node.name,
      role: node.role,
      cpus: node.cpus,
      memory: node.memory,
      image: prepared.images.get(nodeArch(ctx, node))?.key,
      address: network.addresses.get(node.name),
      mac: network.macs.get(node.name),
    })),
    cidr: spec.network.cidr,
  };
  const inputs: [string, unknown][] = [['machines', machines]];
  if (needsPayload(ctx))
    inputs.push([
      'payload',
      { source: spec.payload, bundles: [...prepared.bundles].map(([arch, b]) => [arch, basename(dirname(b.file))]), env: payloadEnv(ctx) },
    ]);
  for (const step of spec.provision)
    inputs.push([
      `step ${step.name}`,
      'certificates' in step
        ? { ...step, flocker: spec.flocker, control: controlHost(ctx, network.addresses), userDir: userCaDir(ctx.env) }
        : stepInputs(step, ctx.scenario, ctx.env),
    ]);

  const plan: PlannedLayer[] = [];
  for (const [name, what] of inputs) plan.push({ name, key: layerKey(plan.at(-1)?.key, what) });
  return plan;
}

/**
 * What a step does to the cluster: its definition (less its timeout and readiness script), the
 * files of its script's folder (its readiness script aside), and the variables of the
 * environment (the scenario's, and its nodes' own) that those files name. A variable no file of the folder mentions cannot reach what the step does (the scripts pass on
 * what they use by name), so FLOCKER_VERSION does not make the multinode steps another layer.
 */
export function stepInputs(step: NodeStep, scenario: LoadedScenario, env: Record<string, string>): unknown {
  if ('upload' in step) return { ...step, content: fileHash(resolve(scenario.dir, step.upload.from)) };
  const { timeout: _timeout, ready, ...rest } = step;
  const folders = scriptFolders(scenario.spec.scripts);
  const folder = dirname(resolveScript(step.script, scenario.dir, folders));
  // The readiness script runs only after a restore (from a fresh copy of the folder): it is no part of the layer.
  const except = ready ? [resolveScript(ready, scenario.dir, folders)] : [];
  // A node's own variables change what the step does there.
  const targets = scenario.spec.nodes.filter((node) => node.env && (step.nodes === 'all' || step.nodes.includes(node.name)));
  const named = namedVariables(folder, [...Object.keys(env), ...targets.flatMap((node) => Object.keys(node.env ?? {}))], except);
  const used = (vars: Record<string, string>) => Object.fromEntries(Object.entries(vars).filter(([key]) => named.has(key)));
  const nodeEnv = Object.fromEntries(
    targets.map((node) => [node.name, used(envStrings(node.env))] as const).filter(([, vars]) => Object.keys(vars).length),
  );
  return { ...rest, folder: folderHash(folder, except), env: used(env), ...(Object.keys(nodeEnv).length ? { nodeEnv } : {}) };
}

/**
 * The run's use of the snapshot cache: which layer it restored, which it saves, and the disk each
 * VM's current overlay stands on (the image's, then each layer's it saved or restored).
 */
export class Snapshots {
  restored: Layer | undefined;
  /** The run's cloud, whose identity each layer it saves keeps (its guests hold its credentials). */
  cloud: RunCloud | undefined;
  private saving: boolean;
  private readonly diskBases = new Map<string, string>();
  private parent: string | undefined;

  constructor(
    private readonly ctx: RunContext,
    readonly mode: SnapshotMode,
    readonly plan: PlannedLayer[],
  ) {
    this.saving = mode !== 'off';
    ctx.summary.snapshot = { mode, layers: plan.length, saved: [] };
  }

  /** How the run takes snapshots: `--snapshots`, unless its driver cannot. */
  static mode(ctx: RunContext, asked: SnapshotMode): SnapshotMode {
    if (asked !== 'off' && !DRIVERS[ctx.driver.name].snapshots) {
      ctx.log.info(`snapshots: the ${ctx.driver.name} driver cannot save a running cluster; every step runs, and no layer is saved`);
      return 'off';
    }
    return asked;
  }

  /** Looks for the deepest intact layer of the plan (mode `on` only), noting each node's image disk as the base below it. */
  async lookup(prepared: Prepared): Promise<Layer | undefined> {
    const imageDisks = new Map(
      this.ctx.scenario.spec.nodes.map((node) => [node.name, prepared.images.get(nodeArch(this.ctx, node))?.disk ?? '']),
    );
    for (const [name, disk] of imageDisks) this.diskBases.set(name, disk);
    if (this.mode !== 'on') return undefined;
    const layer = await deepestIntact(
      this.plan.map((p) => p.key),
      imageDisks,
      this.ctx.log,
    );
    if (!layer) return undefined;
    markUsed(layer);
    this.restored = layer;
    this.parent = layer.key;
    for (const node of layer.nodes) this.diskBases.set(node.name, join(layer.dir, node.disk));
    return layer;
  }

  /** Whether the restored layer already holds this layer's work. */
  covers(name: string): boolean {
    const index = this.plan.findIndex((p) => p.name === name);
    return this.restored !== undefined && index >= 0 && index < this.restored.depth;
  }

  /** Where the restored cluster came from. */
  get from(): RestoredFrom | undefined {
    return this.restored && { layer: this.restored.key, madeAt: this.restored.madeAt, madeBy: this.restored.madeBy };
  }

  /** The key of the layer the cluster stands on now (the last one saved or restored), for a kept run's reset. */
  get current(): string | undefined {
    return this.parent;
  }

  /** A restored step's results, as the run that made its layer recorded them: it did not run here. */
  restoredSteps(name: string): StepResult[] {
    const layer = readLayer(this.plan.find((p) => p.name === name)?.key ?? '');
    if (!layer) return [];
    const from: RestoredFrom = { layer: layer.key, madeAt: layer.madeAt, madeBy: layer.madeBy };
    return layer.steps.map((step) => ({ ...step, seconds: 0, log: '', restored: from }));
  }

  /**
   * After a phase or step did its work: saves the cluster as the layer named so (unless saving
   * is off or stopped), then steps the guests' clocks over the pause.
   */
  async save(name: string, nodes: LiveNode[], seconds: number, steps: StepResult[] = []): Promise<void> {
    const index = this.plan.findIndex((p) => p.name === name);
    const planned = this.plan[index];
    if (!planned || !this.saving) return;
    if (this.cloud && hasVolumes(this.cloud.dir)) {
      this.stopSaving(`the run's cloud holds volumes (made before ${name} ended), which a layer does not keep: no more layers are saved for this run`);
      return;
    }
    const free = freeBytes(snapshotsRoot());
    if (free < minFreeBytes()) {
      this.stopSaving(`only ${Math.round(free / 1024 ** 3)} GiB free in ${snapshotsRoot()}: no more layers are saved for this run`);
      return;
    }
    const started = performance.now();
    const saved = await this.ctx.log.step(`saving snapshot layer ${index + 1}/${this.plan.length} (${name})`, () =>
      saveLayer({
        key: planned.key,
        parent: this.parent,
        depth: index + 1,
        name,
        scenario: this.ctx.scenario.spec.name,
        driver: this.ctx.driver.name,
        runId: this.ctx.runId,
        seconds,
        nodes: nodes.map(({ vm }) => ({ vm, diskBase: this.diskBases.get(vm.spec.name) ?? '', baseSha256: this.baseSha256(vm.spec.name) })),
        replace: this.mode === 'fresh',
        env: this.ctx.env,
        steps,
        secrets: [
          ...(this.certificatesStep === name ? [certsDir(this.ctx)] : []),
          // Every layer a run with a cloud saves keeps its identity: its guests hold its credentials.
          ...(this.cloud ? [identityFile(this.cloud)] : []),
        ],
        log: this.ctx.log,
        signal: this.ctx.signal,
      }),
    );
    if (!saved) {
      this.stopSaving(
        `another run saved layer ${planned.key} (${name}) meanwhile; this run's later layers stand on its own disks and are not saved`,
      );
      return;
    }
    if (nodes.some(({ vm }) => vm.snapshots?.saveDropsConnections)) await reconnect(nodes, this.ctx.signal);
    // The pause stopped the guests' clocks.
    await stepClocks(
      nodes.map((n) => n.machine),
      this.ctx.log,
    );
    const { layer } = saved;
    this.parent = layer.key;
    for (const node of layer.nodes) this.diskBases.set(node.name, join(layer.dir, node.disk));
    this.ctx.summary.snapshot?.saved.push({
      layer: layer.key,
      depth: layer.depth,
      name,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      bytes: layerBytes(layer),
    });
  }

  /** The checksum of the layer disk a node's current disk stands on (none for the image's). */
  private baseSha256(node: string): string | undefined {
    const parent = this.parent ? readLayer(this.parent) : undefined;
    const disk = parent?.nodes.find((n) => n.name === node)?.disk;
    return disk ? parent?.files[disk]?.sha256 : undefined;
  }

  /** The layer of the step that makes the run's certificates (their set is kept with it). */
  private get certificatesStep(): string | undefined {
    const step = this.ctx.scenario.spec.provision.find((s) => 'certificates' in s);
    return step && `step ${step.name}`;
  }

  /**
   * The cloud identity the restored layer's guests were given, when a run with a cloud saved it
   * (layers below the first cloud step may come from a scenario without one: none then).
   */
  cloudIdentity(): string | undefined {
    const file = this.restored && join(this.restored.dir, IDENTITY_FILE);
    return file && existsSync(file) ? file : undefined;
  }

  /** A restored run gets its certificate set back from the layer that made it. */
  restoreSecrets(): void {
    const name = this.certificatesStep;
    if (!name || !this.covers(name)) return;
    const certs = join(snapshotsDir(), this.plan.find((p) => p.name === name)?.key ?? '', basename(certsDir(this.ctx)));
    if (existsSync(certs)) cpSync(certs, certsDir(this.ctx), { recursive: true });
  }

  private stopSaving(why: string): void {
    this.saving = false;
    this.ctx.log.warn(`snapshots: ${why}`);
    if (this.ctx.summary.snapshot) this.ctx.summary.snapshot.note = why;
  }
}

const snapshotsRoot = (): string => existingAncestor(snapshotsDir());

/** Logs in again to every node whose SSH connection its VM's save dropped. */
async function reconnect(nodes: LiveNode[], signal: AbortSignal | undefined): Promise<void> {
  await Promise.all(
    nodes.map(async ({ name, vm, machine }) => {
      const session = await connectWhenReady(vm.ssh, { what: `an SSH login on ${name} after its save`, timeoutMs: 60_000, signal });
      machine.reconnected(session);
    }),
  );
}
