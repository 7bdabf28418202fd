import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLOCKER_DIR, makeFlockerCerts, userCaDir } from '../../certs/flocker-ca.js';
import { mapLimit } from '../../util/limit.js';
import type { StepResult } from '../../report/summary.js';
import type { LiveNode, RunContext } from '../context.js';

/** Where the run keeps its Flocker certificate set (never in its report). */
export const certsDir = (ctx: Pick<RunContext, 'stateDir'>): string => join(ctx.stateDir, 'flocker-certs');

/** The Flocker control service's host as the certificates name it. */
export const controlHost = (ctx: Pick<RunContext, 'env' | 'scenario'>, addresses: Map<string, string>): string => {
  const control = ctx.scenario.spec.flocker?.control ?? '';
  return ctx.env.FLOCKER_CONTROL_SERVICE_HOST || addresses.get(control) || control;
};

/**
 * The `certificates: flocker` step, what a user does by hand with flocker-ca and scp: a cluster CA
 * of the run's own, the control service's certificate for its address, one node certificate per
 * node and the API user's; then on every node /etc/flocker/cluster.crt, node.crt and node.key
 * (0600), on the control node control-service.crt/.key, and in FLOCKER_USER_CA_DIR cluster.crt
 * and <user>.crt/.key for the kubelet. The keys stay in the run's state folder, never in its report.
 */
export async function placeCertificates(ctx: RunContext, nodes: LiveNode[], step: string): Promise<StepResult[]> {
  const flocker = ctx.scenario.spec.flocker;
  if (!flocker) throw new Error('the certificates step needs the scenario\'s flocker:');
  const started = performance.now();
  const host = controlHost(ctx, new Map(nodes.map((n) => [n.name, n.address])));
  const certs = await ctx.log.step(`making the Flocker cluster certificates (control service ${host}, user ${flocker.user})`, () =>
    makeFlockerCerts({ dir: certsDir(ctx), clusterName: ctx.runId.slice(0, 64), controlHost: host, nodes: nodes.map((n) => n.name), user: flocker.user, signal: ctx.signal }),
  );
  const userDir = userCaDir(ctx.env);
  await mapLimit(certs.nodes, 2, async (node) => {
    const machine = nodes.find((n) => n.name === node.name)?.machine;
    if (!machine) throw new Error(`${node.name} is not connected`);
    const files: [string, string, string][] = [
      [`${FLOCKER_DIR}/cluster.crt`, certs.ca.crt, '0644'],
      [`${FLOCKER_DIR}/node.crt`, node.crt, '0644'],
      [`${FLOCKER_DIR}/node.key`, node.key, '0600'],
      [`${userDir}/cluster.crt`, certs.ca.crt, '0644'],
      [`${userDir}/${certs.user.name}.crt`, certs.user.crt, '0644'],
      [`${userDir}/${certs.user.name}.key`, certs.user.key, '0600'],
    ];
    if (node.name === flocker.control)
      files.push([`${FLOCKER_DIR}/control-service.crt`, certs.control.crt, '0644'], [`${FLOCKER_DIR}/control-service.key`, certs.control.key, '0600']);
    for (const [to, from, mode] of files) await machine.writeFile(to, readFileSync(from), mode);
    ctx.log.info(`${node.name}: Flocker node ${node.uuid}; certificates in ${FLOCKER_DIR}${userDir === FLOCKER_DIR ? '' : ` and ${userDir}`}`);
  });
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  return nodes.map((node) => ({ step, node: node.name, status: 'passed', seconds, log: '' }));
}
