import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineSpec } from '../machines/driver.js';
import type { DriverName } from '../machines/registry.js';
import type { LiveNode, RunContext } from './context.js';
import { checkFiles, clusterDescriptor } from './phases/checks.js';
import type { RunCloud } from './phases/cloud.js';
import { markKept } from './registry.js';

/** What `lab verify --reset` needs to make a kept run's VMs again from its last snapshot layer. */
export interface KeptMachines {
  driver: DriverName;
  /** The layer the cluster stood on when the run ended. */
  layer: string;
  /** Each node as its driver made it, the image named by its folder. */
  nodes: (Omit<MachineSpec, 'image' | 'restore'> & { imageDir: string; sshPort: number })[];
}

/** Leaves the VMs running, closes the lab's connections and records how to reach (and reset) the run again. */
export async function keepRun(ctx: RunContext, nodes: LiveNode[], layer: string | undefined, cloud?: RunCloud): Promise<void> {
  // The descriptor first: a libvirt VM's handle asks its driver's open connection for the URI.
  const descriptorFile = join(ctx.stateDir, 'cluster.json');
  writeFileSync(descriptorFile, `${JSON.stringify(clusterDescriptor(ctx, nodes, cloud), null, 2)}\n`);
  for (const node of nodes) node.machine.close();
  await ctx.driver.close?.({ keep: true });
  let machinesFile: string | undefined;
  if (layer) {
    machinesFile = join(ctx.stateDir, 'machines.json');
    const kept: KeptMachines = {
      driver: ctx.driver.name,
      layer,
      nodes: nodes.map(({ vm }) => {
        const { image, restore: _restore, ...spec } = vm.spec;
        return { ...spec, imageDir: image.dir, sshPort: vm.ssh.port };
      }),
    };
    writeFileSync(machinesFile, `${JSON.stringify(kept, null, 2)}\n`);
  }
  markKept(ctx.runId, { keptAt: new Date().toISOString(), descriptorFile, checks: checkFiles(ctx), ...(machinesFile ? { machinesFile } : {}) });
}
