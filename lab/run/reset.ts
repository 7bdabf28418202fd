import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterDescriptor } from '../checks/descriptor.js';
import { readImage } from '../images/cache.js';
import { loadDriver } from '../machines/registry.js';
import { Provisioner } from '../provision/runner.js';
import { Machine } from '../remote/machine.js';
import { connectWhenReady } from '../remote/ssh.js';
import type { StepResult } from '../report/summary.js';
import { loadScenario } from '../scenario/loader.js';
import { deepestIntact } from '../snapshots/chain.js';
import { resumeTogether, stepClocks } from '../snapshots/resume.js';
import { readLayer, type Layer } from '../snapshots/store.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { stopProcesses } from '../util/proc.js';
import type { KeptMachines } from './keep.js';
import { forgetVolumes, placeCredentials } from './phases/cloud.js';
import { readIdentity } from '../cloud/state.js';
import type { KeptRun, RunRecord } from './registry.js';

/**
 * `lab verify --reset`: brings a kept run back to the snapshot layer it stood on when its run
 * ended. Its VMs are stopped and made again from that layer, on the same SSH ports and the same
 * cluster link, resumed together, their clocks stepped, and the restored steps' readiness
 * scripts run; whatever a test broke on the nodes is gone.
 */
export async function resetKeptRun(run: RunRecord & { kept: KeptRun }, log: Logger, signal: AbortSignal): Promise<void> {
  if (!run.kept.machinesFile)
    throw new InputError(`run ${run.runId} has no snapshot layer to reset to (it ran with --snapshots=off, or its driver makes none)`);
  const kept = JSON.parse(readFileSync(run.kept.machinesFile, 'utf8')) as KeptMachines;
  if (kept.driver !== 'qemu') throw new InputError(`lab verify --reset works with the qemu driver; run ${run.runId} used ${kept.driver}`);
  const chain = ancestry(kept.layer);
  const imageDisks = new Map(kept.nodes.map((node) => [node.name, join(node.imageDir, 'disk.qcow2')]));
  const layer = chain.length
    ? await deepestIntact(
        chain.map((l) => l.key),
        imageDisks,
        log,
      )
    : undefined;
  if (!layer || layer.key !== kept.layer)
    throw new Error(
      `the snapshot layer ${kept.layer} of run ${run.runId} is gone from the cache or damaged: the run cannot be reset (lab down, then lab run again)`,
    );

  await log.step(`resetting run ${run.runId} to snapshot layer ${layer.depth} (${layer.name}, ${layer.key})`, async () => {
    const driver = await loadDriver(kept.driver);
    await stopProcesses((await driver.list(run.runId)).map((p) => p.pid));
    const descriptor = JSON.parse(readFileSync(run.kept.descriptorFile, 'utf8')) as ClusterDescriptor;
    if (descriptor.cloud) await forgetVolumes(descriptor.cloud.dir);
    const vms = await Promise.all(
      kept.nodes.map(async ({ imageDir, ...node }) => {
        const image = readImage(imageDir);
        if (!image) throw new Error(`the image ${imageDir} of ${node.name} is gone from the cache`);
        const saved = layer.nodes.find((n) => n.name === node.name);
        if (!saved) throw new Error(`layer ${layer.key} holds no ${node.name}`);
        rmSync(node.stateDir, { recursive: true, force: true });
        const restore = { state: join(layer.dir, saved.state), disk: join(layer.dir, saved.disk), cmdline: saved.cmdline };
        return driver.create({ ...node, image, restore, persistent: true });
      }),
    );
    // Each loads its saved state paused, side by side (as a restoring run does); they go on together.
    await Promise.all(vms.map((vm) => vm.start(signal)));
    await resumeTogether(vms);
    const machines = await Promise.all(
      vms.map(
        async (vm) =>
          new Machine(vm.spec.name, await connectWhenReady(vm.ssh, { what: `an SSH login on ${vm.spec.name}`, timeoutMs: 90_000, signal })),
      ),
    );
    try {
      await stepClocks(machines, log);
      // The layer may be older than the run's cloud (one it shares with a scenario without one).
      if (descriptor.cloud) await placeCredentials(readIdentity(descriptor.cloud.dir), machines);
      await readiness(run, descriptor, chain, machines, Math.floor(Date.now() / 1000) - 1, log, signal);
    } finally {
      for (const machine of machines) machine.close();
    }
  });
}

/** The layer and the ones below it, lowest first. */
function ancestry(key: string): Layer[] {
  const chain: Layer[] = [];
  for (let layer = readLayer(key); layer; layer = layer.parent ? readLayer(layer.parent) : undefined) chain.unshift(layer);
  return chain;
}

/** The readiness scripts of the steps the layer holds, as a restoring run runs them. */
async function readiness(
  run: RunRecord,
  descriptor: ClusterDescriptor,
  chain: Layer[],
  machines: Machine[],
  restoredAt: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const scenario = loadScenario(run.scenario);
  const held = new Set(chain.map((layer) => layer.name));
  const nodes = descriptor.nodes.map((node) => ({ ...node, machine: machines.find((m) => m.name === node.name) as Machine }));
  const env = chain.at(-1)?.env ?? descriptor.env;
  const provisioner = new Provisioner({
    nodes,
    env,
    scenario,
    runId: run.runId,
    logsDir: descriptor.logsDir,
    runDir: run.reportDir,
    log,
    signal,
  });
  const results: StepResult[] = [];
  await provisioner.ready(
    scenario.spec.provision.filter((s) => held.has(`step ${s.name}`)),
    restoredAt,
    results,
  );
}
