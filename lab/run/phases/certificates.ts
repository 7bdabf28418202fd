import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLOCKER_DIR, makeFlockerCerts, userCaDir } from '../../certs/flocker-ca.js';
import { mapLimit } from '../../util/limit.js';
import type { Phase } from '../context.js';

/**
 * For scenarios with `flocker:`, what a user does by hand with flocker-ca and scp: a cluster CA of
 * the run's own, the control service's certificate for its address, one node certificate per node
 * and the API user's; then on every node /etc/flocker/cluster.crt, node.crt and node.key (0600),
 * on the control node control-service.crt/.key, and in FLOCKER_USER_CA_DIR cluster.crt and
 * <user>.crt/.key for the kubelet. The keys stay in the run's state folder, never in its report.
 */
export const certificatesPhase: Phase = {
  name: 'certificates',
  applies: (ctx) => Boolean(ctx.scenario.spec.flocker),
  async execute(ctx) {
    const flocker = ctx.scenario.spec.flocker;
    if (!flocker) return;
    const nodes = ctx.scenario.spec.nodes.map((n) => n.name);
    const controlHost = ctx.env.FLOCKER_CONTROL_SERVICE_HOST || ctx.addresses.get(flocker.control) || flocker.control;
    const certs = await ctx.log.step(`making the Flocker cluster certificates (control service ${controlHost}, user ${flocker.user})`, () =>
      makeFlockerCerts({ dir: join(ctx.stateDir, 'flocker-certs'), clusterName: ctx.runId.slice(0, 64), controlHost, nodes, user: flocker.user, signal: ctx.signal }),
    );
    const userDir = userCaDir(ctx.env);
    await mapLimit(certs.nodes, 2, async (node) => {
      const machine = ctx.machines.get(node.name);
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
  },
};
