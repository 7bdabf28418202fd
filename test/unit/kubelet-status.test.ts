import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { nodeStatus, RUNTIME_GRACE_MS, RuntimeState } from '../../payloads/hyperkube/kubelet.js';

/** The kubelet stand-in's node status as 1.2/1.3 posted it: Ready from the runtime's state, node info read from the system. */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lab-kubelet-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env.LAB_KUBE_VERSION_FILE;
});
const version = (v: string) => {
  writeFileSync(join(dir, 'version'), `${v}\n`);
  process.env.LAB_KUBE_VERSION_FILE = join(dir, 'version');
};
const ready = (status: Record<string, unknown>) => (status.conditions as Record<string, string>[]).find((c) => c.type === 'Ready');

describe('kubelet: the runtime and the Ready condition', () => {
  test('Docker failing its checks keeps the node Ready for 5 minutes, then "container runtime is down", until it answers again', async () => {
    let up = true;
    const runtime = new RuntimeState({ version: async () => (up ? '20.10.24+dfsg1' : Promise.reject(new Error('connect ENOENT'))) });
    const t0 = Date.now();
    await runtime.check(t0);
    expect(runtime.errors(t0)).toEqual([]);
    up = false;
    await runtime.check(t0 + 60_000);
    expect(runtime.errors(t0 + RUNTIME_GRACE_MS - 1000)).toEqual([]);
    expect(runtime.errors(t0 + RUNTIME_GRACE_MS + 1000)).toEqual(['container runtime is down']);
    up = true;
    await runtime.check(t0 + RUNTIME_GRACE_MS + 5000);
    expect(runtime.errors(t0 + RUNTIME_GRACE_MS + 6000)).toEqual([]);
    expect(runtime.version).toBe('20.10.24+dfsg1');
  });

  test('the posted status: KubeletNotReady with the runtime error, the transition time kept while the status holds', () => {
    version('v1.3.0');
    const down = { errors: () => ['container runtime is down'], version: '' };
    const first = nodeStatus('10.77.0.12', undefined, down);
    expect(ready(first)).toMatchObject({ status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' });
    const again = nodeStatus('10.77.0.12', first, down);
    expect(ready(again)?.lastTransitionTime).toBe(ready(first)?.lastTransitionTime);
    const up = nodeStatus('10.77.0.12', again, { errors: () => [], version: '20.10.24+dfsg1' });
    expect(ready(up)).toMatchObject({ status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' });
    expect((up.nodeInfo as Record<string, string>).containerRuntimeVersion).toBe('docker://20.10.24+dfsg1');
    expect((first.nodeInfo as Record<string, string>).containerRuntimeVersion).toBe('docker://Unknown');
  });

  test('node info is read from the system; 1.3 adds the platform, 1.2 does not have it; no kubelet port is advertised', async () => {
    const { release } = await import('node:os');
    version('v1.3.0');
    const v13 = nodeStatus('10.77.0.12', undefined, { errors: () => [], version: '20.10.24' });
    expect(v13.nodeInfo).toMatchObject({ kernelVersion: release(), kubeletVersion: 'v1.3.0', kubeProxyVersion: 'v1.3.0', operatingSystem: 'linux' });
    expect(v13.daemonEndpoints).toBeUndefined();
    version('v1.2.4');
    const v12 = nodeStatus('10.77.0.12', undefined, { errors: () => [], version: '20.10.24' }).nodeInfo as Record<string, string>;
    expect(v12.kubeletVersion).toBe('v1.2.4');
    expect(v12).not.toHaveProperty('operatingSystem');
    expect(v12).not.toHaveProperty('architecture');
  });
});
