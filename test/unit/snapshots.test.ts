import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { stepInputs } from '../../lab/run/layers.js';
import { loadScenario } from '../../lab/scenario/loader.js';
import type { NodeStep } from '../../lab/scenario/schema.js';
import { deepestIntact } from '../../lab/snapshots/chain.js';
import { folderHash, layerKey, namedVariables } from '../../lab/snapshots/keys.js';
import {
  buildDirName,
  descendants,
  listLayers,
  readLayer,
  snapshotsDir,
  writeLayer,
  type LayerManifest,
} from '../../lab/snapshots/store.js';
import { silentLogger } from '../../lab/util/log.js';

let root: string;
const saved = process.env.LAB_CACHE_DIR;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lab-snapshots-'));
  process.env.LAB_CACHE_DIR = root;
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  if (saved === undefined) delete process.env.LAB_CACHE_DIR;
  else process.env.LAB_CACHE_DIR = saved;
});

const image = (node: string) => join(root, 'images', `${node}.qcow2`);

/** A layer of fake files for nodes a and b, standing on `parent` (or on the fake image disks). */
async function makeLayer(key: string, parent?: string, name = `layer ${key}`) {
  const below = parent ? readLayer(parent) : undefined;
  return writeLayer(key, {}, async (dir): Promise<Omit<LayerManifest, 'key' | 'files'>> => {
    for (const node of ['a', 'b']) {
      writeFileSync(join(dir, `${node}.state`), `state of ${node} in ${key}`);
      writeFileSync(join(dir, `${node}.qcow2`), `disk of ${node} in ${key}`);
    }
    return {
      parent,
      depth: (below?.depth ?? 0) + 1,
      name,
      scenario: 'test',
      driver: 'qemu',
      madeAt: new Date().toISOString(),
      madeBy: 'run-1',
      pausedAt: Date.now(),
      seconds: 1,
      saveSeconds: 1,
      nodes: ['a', 'b'].map((node) => ({
        name: node,
        state: `${node}.state`,
        disk: `${node}.qcow2`,
        diskBase: below ? join(below.dir, `${node}.qcow2`) : image(node),
        baseSha256: below?.files[`${node}.qcow2`]?.sha256,
        cmdline: 'console=ttyS0',
      })),
      env: {},
      steps: [],
      secrets: [],
    };
  });
}

const images = () => new Map(['a', 'b'].map((node) => [node, image(node)]));

describe('snapshot layers', () => {
  test('a layer appears whole, private, with every file summed, and is not made twice', async () => {
    const layer = await makeLayer('k1');
    expect(layer?.depth).toBe(1);
    expect(Object.keys(layer?.files ?? {}).sort()).toEqual(['a.qcow2', 'a.state', 'b.qcow2', 'b.state']);
    expect(layer?.files['a.state']?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(layer?.dir ?? '').mode & 0o777).toBe(0o700);
    for (const file of readdirSync(layer?.dir ?? '')) expect(statSync(join(layer?.dir ?? '', file)).mode & 0o777, file).toBe(0o600);
    // Another run that would make the same layer finds it there, and leaves it.
    expect(await makeLayer('k1')).toBeUndefined();
    expect(readdirSync(snapshotsDir()).filter((n) => n.startsWith('.build-'))).toEqual([]);
  });

  test('a fill that fails leaves no layer and no temporary folder', async () => {
    await expect(
      writeLayer('broken', {}, async (dir) => {
        writeFileSync(join(dir, 'a.state'), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(readLayer('broken')).toBeUndefined();
    expect(readdirSync(snapshotsDir()).filter((n) => !n.startsWith('.') || n.startsWith('.build-'))).toEqual([]);
  });

  test('the deepest intact layer of a chain is found; a damaged state file costs only its own layer', async () => {
    await makeLayer('k1');
    await makeLayer('k2', 'k1');
    await makeLayer('k3', 'k2');
    expect((await deepestIntact(['k1', 'k2', 'k3'], images(), silentLogger()))?.key).toBe('k3');
    writeFileSync(join(snapshotsDir(), 'k3', 'b.state'), 'state of b in k3, with a flipped bit');
    expect((await deepestIntact(['k1', 'k2', 'k3'], images(), silentLogger()))?.key).toBe('k2');
    expect(readLayer('k3')).toBeUndefined();
    expect(readLayer('k2')).toBeDefined();
  });

  test('a damaged disk takes every layer standing on it along, in any chain', async () => {
    await makeLayer('k1');
    await makeLayer('k2', 'k1');
    await makeLayer('k3', 'k2');
    await makeLayer('other', 'k2');
    writeFileSync(join(snapshotsDir(), 'k2', 'a.qcow2'), 'disk of a in k2, changed');
    expect((await deepestIntact(['k1', 'k2', 'k3'], images(), silentLogger()))?.key).toBe('k1');
    expect(listLayers().map((l) => l.key)).toEqual(['k1']);
  });

  test('a missing or cut file, and a layer without the ones below it, are not used', async () => {
    await makeLayer('k1');
    await makeLayer('k2', 'k1');
    rmSync(join(snapshotsDir(), 'k2', 'a.state'));
    expect((await deepestIntact(['k1', 'k2'], images(), silentLogger()))?.key).toBe('k1');
    await makeLayer('k2', 'k1');
    writeFileSync(join(snapshotsDir(), 'k2', 'a.state'), 'cut');
    expect((await deepestIntact(['k1', 'k2'], images(), silentLogger()))?.key).toBe('k1');
    await makeLayer('k2', 'k1');
    rmSync(join(snapshotsDir(), 'k1'), { recursive: true });
    expect(await deepestIntact(['k1', 'k2'], images(), silentLogger())).toBeUndefined();
    expect(readLayer('k2')).toBeUndefined();
  });

  test('a layer made anew below is another disk: the layers that stood on the old one are not used', async () => {
    await makeLayer('k1');
    await makeLayer('k2', 'k1');
    await writeLayer('k1', { replace: true }, async (dir) => {
      for (const node of ['a', 'b']) {
        writeFileSync(join(dir, `${node}.state`), 'new');
        writeFileSync(join(dir, `${node}.qcow2`), 'new disk');
      }
      return { ...(readLayer('k1') as LayerManifest), parent: undefined };
    });
    // Replacing k1 removed what stood on it.
    expect(readLayer('k2')).toBeUndefined();
    // And a layer that claims a base with other contents is refused even if it survived.
    await makeLayer('k2', 'k1');
    const k2 = readLayer('k2') as LayerManifest;
    writeFileSync(
      join(snapshotsDir(), 'k2', 'layer.json'),
      JSON.stringify({ ...k2, nodes: k2.nodes.map((n) => ({ ...n, baseSha256: '0'.repeat(64) })) }),
    );
    expect((await deepestIntact(['k1', 'k2'], images(), silentLogger()))?.key).toBe('k1');
  });

  test('descendants are the layers standing on a layer, directly or further up', async () => {
    await makeLayer('k1');
    await makeLayer('k2', 'k1');
    await makeLayer('k3', 'k2');
    await makeLayer('x', 'k1');
    expect(descendants('k1').sort()).toEqual(['k2', 'k3', 'x']);
    expect(descendants('k3')).toEqual([]);
  });

  test('the build folder of a killed builder is removed by the next save', async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((resolve) => child.once('spawn', resolve));
    mkdirSync(snapshotsDir(), { recursive: true });
    const live = join(snapshotsDir(), buildDirName('other', child.pid as number));
    mkdirSync(live);
    const dead = join(snapshotsDir(), buildDirName('k9', 999_999_999));
    mkdirSync(dead);
    writeFileSync(join(dead, 'a.state'), 'half written');
    await makeLayer('k1');
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    child.kill('SIGKILL');
  });
});

describe('layer keys', () => {
  test('a key changes with its parent and with any input, and with nothing else', () => {
    const base = layerKey(undefined, { step: 'master', env: { K8S_VERSION: 'v1.3.0' } });
    expect(layerKey(undefined, { step: 'master', env: { K8S_VERSION: 'v1.3.0' } })).toBe(base);
    expect(layerKey('parent', { step: 'master', env: { K8S_VERSION: 'v1.3.0' } })).not.toBe(base);
    expect(layerKey(undefined, { step: 'master', env: { K8S_VERSION: 'v1.2.4' } })).not.toBe(base);
  });

  test('a step counts the variables its folder names, as whole words only', () => {
    const dir = join(root, 'multinode');
    mkdirSync(join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'master.sh'), 'echo "${K8S_VERSION}"\nMASTER_IP=${MASTER_IP:-localhost}\n');
    writeFileSync(join(dir, 'lib', 'common.sh'), 'docker run -e FLANNEL_BACKEND=$FLANNEL_BACKEND\n');
    const named = namedVariables(dir, ['K8S_VERSION', 'MASTER_IP', 'FLANNEL_BACKEND', 'FLOCKER_VERSION', 'MASTER']);
    expect([...named].sort()).toEqual(['FLANNEL_BACKEND', 'K8S_VERSION', 'MASTER_IP']);
  });

  test("a step's inputs hold the nodes' own variables its folder names, for the nodes it runs on, and nothing when there are none", () => {
    const scripts = join(root, 'scenario', 'own');
    mkdirSync(scripts, { recursive: true });
    writeFileSync(join(scripts, 'master.sh'), 'echo "${IP_ADDRESS} ${K8S_VERSION}"\n');
    const write = (nodes: string) =>
      writeFileSync(
        join(root, 'scenario', 'scenario.yaml'),
        `nodes: ${nodes}\nprovision:\n  - { name: master, script: ./own/master.sh }\n  - { name: worker, script: ./own/master.sh, nodes: [b] }\n`,
      );
    const inputs = (i: number) => {
      const scenario = loadScenario(join(root, 'scenario'));
      const step = scenario.spec.provision[i] as NodeStep;
      return stepInputs(step, scenario, { K8S_VERSION: 'v1.3.0', FLOCKER_VERSION: '1.14.0' });
    };
    write('[{ name: a }, { name: b }]');
    const plain = inputs(0);
    expect(plain).toMatchObject({ script: './own/master.sh', env: { K8S_VERSION: 'v1.3.0' } });
    expect(plain).not.toHaveProperty('nodeEnv');
    // A variable the folder never names changes nothing.
    write('[{ name: a, env: { UNUSED: x } }, { name: b }]');
    expect(inputs(0)).toEqual(plain);
    write('[{ name: a, env: { IP_ADDRESS: 10.77.0.11, UNUSED: x } }, { name: b }]');
    expect(inputs(0)).toEqual({ ...(plain as object), nodeEnv: { a: { IP_ADDRESS: '10.77.0.11' } } });
    // The worker step runs on b only: a's variables are not its business.
    expect(inputs(1)).not.toHaveProperty('nodeEnv');
  });

  test("a folder's hash follows every file's content, name and mode", () => {
    const dir = join(root, 'scripts');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'master.sh'), 'echo master\n');
    writeFileSync(join(dir, 'sub', 'common.sh'), 'x=1\n');
    const first = folderHash(dir);
    expect(folderHash(dir)).toBe(first);
    writeFileSync(join(dir, 'sub', 'common.sh'), 'x=2\n');
    const second = folderHash(dir);
    expect(second).not.toBe(first);
    writeFileSync(join(dir, 'sub', 'common.sh'), 'x=1\n');
    expect(folderHash(dir)).toBe(first);
    // The mode counts: a script that loses its x bit is another step.
    chmodSync(join(dir, 'master.sh'), 0o600);
    expect(folderHash(dir)).not.toBe(first);
  });
});
