import { describe, expect, test } from 'vitest';
import { step, useCluster } from '../api.js';

/**
 * cluster-link: every node holds its address on the run's cluster link, and reaches every other
 * node by name over it (the name resolves to the peer's cluster address, not the management network).
 */
const lab = useCluster();
const pairs = lab.specs.flatMap((from) => lab.specs.filter((to) => to.name !== from.name).map((to) => ({ from, to })));

describe('cluster-link', () => {
  for (const spec of lab.specs) {
    test(`${spec.name} holds ${spec.address} on its cluster NIC`, async () => {
      const node = await lab.node(spec.name);
      const addresses = await step(`list ${spec.name}'s IPv4 addresses`, () => node.succeed('ip -o -4 addr show'));
      expect(addresses, `${spec.name} does not hold its cluster address ${spec.address}`).toMatch(
        new RegExp(`inet ${spec.address.replace(/\./g, '\\.')}/`),
      );
    });
  }

  for (const { from, to } of pairs) {
    test(`${from.name} -> ${to.name}`, async () => {
      const node = await lab.node(from.name);
      const resolved = await step(
        `${from.name} resolves ${to.name}`,
        async () => (await node.succeed(`getent hosts ${to.name}`)).trim().split(/\s+/)[0],
      );
      expect(resolved, `${from.name} resolves ${to.name} to ${resolved}, not its cluster address ${to.address}`).toBe(to.address);
      await step(`${from.name} pings ${to.name} (${to.address})`, async () => {
        const result = await node.exec(`ping -c 3 -i 0.2 -W 2 ${to.name}`, { timeout: 20 });
        expect(result.code, `${from.name} cannot reach ${to.name} (${to.address}) on the cluster link:\n${result.stdout.trim()}`).toBe(0);
      });
    });
  }
});
