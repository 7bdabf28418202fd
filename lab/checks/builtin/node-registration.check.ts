import { describe, expect, test } from 'vitest';
import { waitFor, notYet } from '../../util/wait.js';
import { attach, step, useCluster } from '../api.js';
import { API, apiserverHealthy, getJson, isReady, masterOf, readiness, setting, type Json } from './kube.js';

/**
 * node-registration: the apiserver on the master is healthy and reports the K8S_VERSION the
 * scenario installed; every node of the scenario is registered under its cluster IP (the guide's
 * --hostname-override) and Ready within NODE_READY_TIMEOUT seconds (default 60).
 */
const lab = useCluster();
const readyWithinMs = Number(setting(lab, 'NODE_READY_TIMEOUT', '60')) * 1000;

describe('node-registration', () => {
  test('apiserver is healthy', async () => {
    const master = await masterOf(lab);
    await step(`GET ${API}/healthz on ${master.name} answers ok`, () => apiserverHealthy(master));
  });

  test(`version is ${lab.descriptor.env.K8S_VERSION ?? '(K8S_VERSION)'}`, async () => {
    const master = await masterOf(lab);
    const version = await step(`GET ${API}/version`, () => getJson(master, `${API}/version`));
    await attach('version', JSON.stringify(version, null, 2));
    expect(
      version?.gitVersion,
      `the apiserver reports ${version?.gitVersion}, the scenario installed ${lab.descriptor.env.K8S_VERSION}`,
    ).toBe(lab.descriptor.env.K8S_VERSION);
  });

  for (const spec of lab.specs) {
    test(`${spec.name} is registered as ${spec.address} and Ready`, async () => {
      const master = await masterOf(lab);
      let last: Json | undefined;
      await step(`wait up to ${readyWithinMs / 1000} s for node ${spec.address} to be Ready`, async () => {
        try {
          await waitFor({ what: `node ${spec.address}`, timeoutMs: readyWithinMs, intervalMs: 2000 }, async () => {
            last = await getJson(master, `${API}/api/v1/nodes/${spec.address}`);
            return isReady(last) ? true : notYet(readiness(last));
          });
        } catch {
          const nodes = await getJson(master, `${API}/api/v1/nodes`);
          await attach('nodes', JSON.stringify(nodes, null, 2));
          const names = ((nodes?.items ?? []) as Json[]).map((n) => n.metadata?.name).join(', ') || 'none';
          throw new Error(
            `node ${spec.name} (${spec.address}) is not Ready after ${readyWithinMs / 1000} s: ${readiness(last)}; registered nodes: ${names}`,
          );
        }
      });
      expect(last?.metadata?.name).toBe(spec.address);
    });
  }
});
