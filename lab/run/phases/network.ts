import { assignAddresses, clusterMac, parseCidr, type Cidr } from '../../net/addressing.js';
import { ClusterSwitch } from '../../net/switch.js';
import type { RunContext } from '../context.js';

/** The run's cluster link: a virtual switch of its own, and every node's address and MAC on it. */
export interface ClusterNetwork {
  cidr: Cidr;
  /** vde_switch socket folder the nodes plug into. */
  switchDir: string;
  addresses: Map<string, string>;
  macs: Map<string, string>;
}

/** The addresses the scenario's nodes get (theirs, or the next free ones from .11), before anything starts. */
export function clusterAddresses(ctx: Pick<RunContext, 'scenario'>): { cidr: Cidr; addresses: Map<string, string>; macs: Map<string, string> } {
  const cidr = parseCidr(ctx.scenario.spec.network.cidr);
  if (!cidr) throw new Error(`invalid cluster network ${ctx.scenario.spec.network.cidr}`);
  const nodes = ctx.scenario.spec.nodes;
  return { cidr, addresses: assignAddresses(nodes, cidr), macs: new Map(nodes.map((node, index) => [node.name, clusterMac(index)])) };
}

/** Starts the run's switch; it goes with the run (or stays with a kept one). */
export async function startNetwork(ctx: RunContext): Promise<ClusterNetwork> {
  const plan = clusterAddresses(ctx);
  const link = new ClusterSwitch(ctx.stateDir, ctx.persistent);
  await link.start();
  ctx.scope.defer('cluster switch', () => link.stop());
  return { ...plan, switchDir: link.socketDir };
}
