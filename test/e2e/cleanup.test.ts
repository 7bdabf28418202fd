import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { processes } from '../../lab/util/procfs.js';
import { lab, leftovers, onlyRun, runLab, waitForOutput } from './helpers.js';
import { spawnSync } from 'node:child_process';

/** The QEMU process of a run's node, found by the label in its command line. */
function qemuPid(runId: string, node: string): number | undefined {
  return processes().find(({ args }) => args.some((arg) => arg.includes(`lab:${runId}:${node}`)))?.pid;
}

const runIdFrom = (output: string): string => /run (\S+): \d+ node/.exec(output)?.[1] ?? '';
const slowStepStarted = (text: string) => text.includes('provision slow on node1 ...');

/** True once the slow step's script itself runs in the guest (its output reached the step log). */
const slowScriptRunning = (reportsDir: string) => () => {
  const run = readdirSync(reportsDir)[0];
  try {
    return run ? readFileSync(join(reportsDir, run, 'logs/node1/provision-slow.log'), 'utf8') : '';
  } catch {
    return '';
  }
};

describe('nothing is left behind', () => {
  test('Ctrl-C in the middle of a step stops the run, cleans up and exits 130', async () => {
    let interruptedAt = 0;
    const result = await runLab(['run', 'test/scenarios/slow-step'], {
      during: (child, output) => {
        void waitForOutput(output, slowStepStarted, 300_000).then(() =>
          setTimeout(() => {
            interruptedAt = Date.now();
            child.kill('SIGINT');
          }, 2000),
        );
      },
    });
    expect(result.code, result.output).toBe(130);
    expect(Date.now() - interruptedAt, 'stopped without waiting for the 120 s step').toBeLessThan(60_000);
    expect(result.output).toContain('SIGINT: stopping the run and cleaning up');
    const { runId, summary } = onlyRun(result);
    expect(summary.verdict).toBe('error');
    expect(summary.error).toBe('interrupted');
    expect(leftovers(runId)).toEqual([]);
  });

  test('kill -9 of the lab takes its VMs down with it, and the next lab command (lab list) removes the rest', async () => {
    let runId = '';
    let qemu: number | undefined;
    const result = await runLab(['run', 'test/scenarios/slow-step'], {
      during: (child, output) => {
        void waitForOutput(output, slowStepStarted, 300_000).then(() => {
          runId = runIdFrom(output());
          qemu = qemuPid(runId, 'node1');
          child.kill('SIGKILL');
        });
      },
    });
    expect(result.signal).toBe('SIGKILL');
    expect(qemu, 'the QEMU of node1 was running before the kill').toBeGreaterThan(0);
    // QEMU runs under PR_SET_PDEATHSIG: it is gone as soon as its lab is.
    await new Promise((r) => setTimeout(r, 1000));
    expect(leftovers(runId).filter((l) => l.startsWith('process'))).toEqual([]);
    expect(
      leftovers(runId).some((l) => l.startsWith('state folder')),
      'the killed lab could not remove its state',
    ).toBe(true);
    const list = spawnSync(lab, ['list'], { env: { ...process.env, LAB_SKIP_SETUP: '1' } });
    expect(list.stderr.toString()).toContain(`cleaned up after run ${runId}: its lab process is gone`);
    expect(leftovers(runId)).toEqual([]);
  });

  test('a VM killed mid-step fails the run at once, naming the node, and the run still cleans up', async () => {
    const started = Date.now();
    const result = await runLab(['run', 'test/scenarios/slow-step'], {
      during: (_child, output, reportsDir) => {
        void waitForOutput(slowScriptRunning(reportsDir), (log) => log.includes('slow step started'), 300_000).then(() => {
          const pid = qemuPid(runIdFrom(output()), 'node1');
          if (pid) process.kill(pid, 'SIGKILL');
        });
      },
    });
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain('the VM of node1 stopped during the run: QEMU was killed by SIGKILL');
    expect(Date.now() - started, 'did not wait for the 120 s step').toBeLessThan(110_000);
    const { runId, summary } = onlyRun(result);
    expect(summary.verdict).toBe('failed');
    expect(summary.steps[0]).toMatchObject({ step: 'slow', node: 'node1', status: 'failed' });
    expect(leftovers(runId)).toEqual([]);
  });
});
