import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { lab, leftovers, onlyRun, runLab } from './helpers.js';

// A state folder of this file's own: `lab down --all` and `lab list` see only its runs, never a
// run someone keeps on this host meanwhile.
const LAB_STATE_DIR = mkdtempSync(join(tmpdir(), 'lab-state-'));
afterAll(() => rmSync(LAB_STATE_DIR, { recursive: true, force: true }));

const labSync = (...args: string[]) => {
  const result = spawnSync(lab, args, { env: { ...process.env, LAB_SKIP_SETUP: '1', LAB_STATE_DIR }, encoding: 'utf8', timeout: 600_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
};

describe('kept runs', () => {
  test('--keep=always leaves the VMs up to be listed, entered, re-verified and destroyed', async () => {
    const result = await runLab(['run', '--keep=always', 'scenarios/smoke'], { env: { LAB_STATE_DIR } });
    expect(result.code, result.output).toBe(0);
    const { runId, summary } = onlyRun(result);
    expect(summary.phases.map((p) => p.name)).toContain('keep');
    expect(result.output).toContain(`lab ssh node1 --run ${runId}`);
    try {
      // The VM outlives the lab process that started it.
      expect(leftovers(runId, LAB_STATE_DIR).some((l) => l.startsWith('process'))).toBe(true);
      expect(labSync('list').err).toMatch(
        new RegExp(`${runId} {2}kept \\d+ min ago {2}node1 \\(amd64, 10\\.77\\.0\\.11, ssh 127\\.0\\.0\\.1:\\d+\\)`),
      );

      const ssh = labSync('ssh', 'node1', '--run', runId, 'hostname');
      expect(ssh.code, ssh.err).toBe(0);
      expect(ssh.out.trim()).toBe('node1');
      // After `--`, the command keeps its own options.
      const dashed = labSync('ssh', 'node1', '--run', runId, '--', 'uname', '-m');
      expect(dashed.out.trim(), dashed.err).toBe('x86_64');

      expect(labSync('verify', '--run', runId).code).toBe(0);
      // Break the kept node: verify sees it, without any provisioning.
      expect(labSync('ssh', 'node1', '--run', runId, 'hostname', 'impostor').code).toBe(0);
      const verify = labSync('verify', '--run', runId);
      expect(verify.code).toBe(1);
      expect(verify.err).toContain('node1 reports hostname "impostor"');
    } finally {
      const down = labSync('down', '--all');
      expect(down.err).toContain(`destroyed ${runId}`);
    }
    expect(leftovers(runId, LAB_STATE_DIR)).toEqual([]);
    expect(labSync('list').err).toContain('no kept runs');
  });

  test('--keep=failed destroys a run that passed', async () => {
    const result = await runLab(['run', '--keep=failed', 'scenarios/smoke'], { env: { LAB_STATE_DIR } });
    expect(result.code, result.output).toBe(0);
    const { runId, summary } = onlyRun(result);
    expect(summary.phases.map((p) => p.name)).toContain('destroy');
    expect(leftovers(runId, LAB_STATE_DIR)).toEqual([]);
  });
});
