import { spawnSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { RunSummary } from '../../lab/report/summary.js';
import { lab, leftovers, onlyRun, runLab, waitForOutput } from './helpers.js';

/**
 * Snapshot layers on the smoke scenario (one node, two layers: machines and the hello step), where
 * a restore takes seconds: a cached run, a damaged layer, two restores at once, a lab killed while
 * it saves, and a kept run reset after it was broken. Each leaves nothing behind.
 */
const cache = join(process.env.LAB_CACHE_DIR ?? '/var/cache/lab', 'snapshots');
const labSync = (...args: string[]) => {
  const result = spawnSync(lab, args, { env: { ...process.env, LAB_SKIP_SETUP: '1' }, encoding: 'utf8', timeout: 600_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
};
/** Unfinished layer folders and locks in the cache: none may outlive the lab that made them. */
const halfMade = () => (existsSync(cache) ? readdirSync(cache).filter((name) => name.startsWith('.build-') || name.endsWith('.lock')) : []);
const restoredOf = (summary: RunSummary) => summary.snapshot?.restored;

describe('snapshot layers', () => {
  test('a run after a fresh one restores its last layer, passes every check, and its reports name the snapshot', async () => {
    const fresh = await runLab(['run', '--fresh', 'scenarios/smoke']);
    expect(fresh.code, fresh.output).toBe(0);
    const made = onlyRun(fresh).summary.snapshot;
    expect(made?.saved.map((l) => l.name)).toEqual(['machines', 'step hello']);

    const cached = await runLab(['run', 'scenarios/smoke']);
    expect(cached.code, cached.output).toBe(0);
    const { runId, dir, summary } = onlyRun(cached);
    const top = made?.saved.at(-1)?.layer ?? '';
    expect(restoredOf(summary)).toMatchObject({ layer: top, depth: 2, name: 'step hello', madeBy: onlyRun(fresh).runId });
    expect(cached.output).toContain(`snapshots: restored 2 of 2 layers (snapshot ${top.slice(0, 12)}`);
    expect(summary.steps).toMatchObject([{ step: 'hello', node: 'node1', status: 'passed', restored: { layer: top } }]);
    expect(summary.checks.map((c) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    // The restored guest's clock was moved on over the time the layer lay in the cache.
    expect(summary.checks.find((c) => c.name.endsWith('clock is within 5 s of the host'))?.status).toBe('passed');
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain(`restored from snapshot layer ${top}`);
    expect(readFileSync(join(dir, 'allure-results', 'environment.properties'), 'utf8')).toContain(`snapshot=restored 2 of 2 layers (snapshot ${top.slice(0, 12)}`);
    expect(leftovers(runId)).toEqual([]);
    expect(halfMade()).toEqual([]);
  });

  test('a damaged layer file is found before use, removed, and the layer made again', async () => {
    const first = await runLab(['run', 'scenarios/smoke']);
    expect(first.code, first.output).toBe(0);
    const top = restoredOf(onlyRun(first).summary)?.layer ?? onlyRun(first).summary.snapshot?.saved.at(-1)?.layer ?? '';
    // One flipped byte in the middle of the saved RAM.
    const state = join(cache, top, 'node1.state');
    const fd = openSync(state, 'r+');
    writeSync(fd, Buffer.from([0x5a]), 0, 1, 4096);
    closeSync(fd);

    const result = await runLab(['run', 'scenarios/smoke']);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`snapshot layer ${top} (step hello) is damaged: node1.state does not match its checksum; removed, it will be made again`);
    const { runId, summary } = onlyRun(result);
    expect(restoredOf(summary)).toMatchObject({ depth: 1, name: 'machines' });
    expect(summary.steps).toMatchObject([{ step: 'hello', status: 'passed' }]);
    expect(summary.steps[0]?.restored).toBeUndefined();
    expect(summary.snapshot?.saved.map((l) => l.layer)).toEqual([top]);
    expect(existsSync(join(cache, top, 'layer.json'))).toBe(true);
    expect(leftovers(runId)).toEqual([]);
  });

  test('two runs restore the same layer at the same time, each on its own overlays and link', async () => {
    const [one, two] = await Promise.all([runLab(['run', 'scenarios/smoke']), runLab(['run', 'scenarios/smoke'])]);
    for (const result of [one, two]) {
      expect(result.code, result.output).toBe(0);
      expect(restoredOf(onlyRun(result).summary)?.depth).toBe(2);
    }
    expect(onlyRun(one).runId).not.toBe(onlyRun(two).runId);
    expect(leftovers(onlyRun(one).runId)).toEqual([]);
    expect(leftovers(onlyRun(two).runId)).toEqual([]);
  });

  test('a lab killed with -9 while it saves a layer leaves nothing a later run takes', async () => {
    let killedAt = '';
    const killed = await runLab(['run', '--fresh', 'scenarios/smoke'], {
      during: (child, output) => {
        void waitForOutput(output, (text) => text.includes('• saving snapshot layer 1/2 (machines) ...'), 300_000).then(() => {
          killedAt = new Date().toISOString();
          child.kill('SIGKILL');
        });
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).not.toBe('');
    const runId = /run (\S+): \d+ node/.exec(killed.output)?.[1] ?? '';
    // The next lab command reaps the half-made layer, and its lock.
    const gc = labSync('gc');
    expect(gc.code, gc.err).toBe(0);
    expect(halfMade()).toEqual([]);
    expect(leftovers(runId)).toEqual([]);
    // Whatever the cache holds now is whole: the next run restores it or makes it, and passes.
    const after = await runLab(['run', 'scenarios/smoke']);
    expect(after.code, after.output).toBe(0);
    expect(after.output).not.toContain('is damaged');
    expect(leftovers(onlyRun(after).runId)).toEqual([]);
  });

  test('lab verify --reset brings a broken kept run back to its last layer, and the checks pass again', async () => {
    const result = await runLab(['run', '--keep=always', 'scenarios/smoke']);
    expect(result.code, result.output).toBe(0);
    const { runId } = onlyRun(result);
    try {
      expect(labSync('ssh', 'node1', '--run', runId, 'hostname impostor && touch /root/broken').code).toBe(0);
      const broken = labSync('verify', '--run', runId);
      expect(broken.code).toBe(1);
      expect(broken.err).toContain('node1 reports hostname "impostor"');
      const reset = labSync('verify', '--run', runId, '--reset');
      expect(reset.code, reset.err).toBe(0);
      expect(reset.err).toMatch(new RegExp(`resetting run ${runId} to snapshot layer 2 \\(step hello, [0-9a-f]{24}\\)`));
      expect(reset.err).toContain('4/4 checks passed');
      // The same SSH port as before, and nothing of what was done since the layer.
      const after = labSync('ssh', 'node1', '--run', runId, 'hostname; test -e /root/broken && echo still-broken || echo clean');
      expect(after.out.trim().split('\n')).toEqual(['node1', 'clean']);
    } finally {
      labSync('down', runId);
    }
    expect(leftovers(runId)).toEqual([]);
  });

  test('--snapshots=off neither restores nor saves; --fresh with it is bad input', async () => {
    const off = await runLab(['run', '--snapshots=off', 'scenarios/smoke']);
    expect(off.code, off.output).toBe(0);
    const { runId, summary } = onlyRun(off);
    expect(summary.snapshot).toMatchObject({ mode: 'off', saved: [] });
    expect(restoredOf(summary)).toBeUndefined();
    expect(off.output).toContain('booting node1');
    expect(leftovers(runId)).toEqual([]);
    const both = await runLab(['run', '--fresh', '--snapshots=off', 'scenarios/smoke']);
    expect(both.code).toBe(2);
    expect(both.output).toContain('--fresh saves every layer anew; it cannot be combined with --snapshots=off');
  });
});
