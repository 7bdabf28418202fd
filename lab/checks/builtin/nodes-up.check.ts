import { describe, expect, test } from 'vitest';
import { step, useCluster } from '../api.js';

/**
 * nodes-up: every node answers over SSH, calls itself by the scenario's name, runs the scenario's
 * architecture, and keeps a clock within 5 s of the host's.
 */
const lab = useCluster();
const MAX_SKEW_MS = 5000;
const UNAME_M = { amd64: 'x86_64', arm64: 'aarch64' } as const;

for (const spec of lab.specs) {
  describe(`nodes-up ${spec.name}`, () => {
    test('answers over SSH', async () => {
      const node = await step(`log in to ${spec.name} over SSH (${spec.ssh.host}:${spec.ssh.port})`, () =>
        lab.node(spec.name).catch((error: Error) => {
          throw new Error(`${spec.name} does not answer over SSH at ${spec.ssh.host}:${spec.ssh.port}: ${error.message}`);
        }),
      );
      await step('run a command', () => node.succeed('true'));
    });

    test(`hostname is ${spec.name}`, async () => {
      const node = await lab.node(spec.name);
      const hostname = await step('read the hostname', async () => (await node.succeed('hostname')).trim());
      expect(hostname, `${spec.name} reports hostname "${hostname}"`).toBe(spec.name);
    });

    test(`architecture is ${spec.arch}`, async () => {
      const node = await lab.node(spec.name);
      const machine = await step('read uname -m', async () => (await node.succeed('uname -m')).trim());
      expect(machine, `${spec.name} runs ${machine}, the scenario wants ${spec.arch}`).toBe(UNAME_M[spec.arch]);
    });

    test('clock is within 5 s of the host', async () => {
      const node = await lab.node(spec.name);
      const { guestMs, hostMs } = await step('read the guest clock', async () => {
        const before = Date.now();
        const out = await node.succeed('date +%s%3N');
        const after = Date.now();
        return { guestMs: Number(out.trim()), hostMs: (before + after) / 2 };
      });
      const skew = guestMs - hostMs;
      expect(Math.abs(skew), `${spec.name}'s clock is ${(skew / 1000).toFixed(1)} s off the host's`).toBeLessThanOrEqual(MAX_SKEW_MS);
    });
  });
}
