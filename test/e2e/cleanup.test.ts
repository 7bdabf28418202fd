import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { processes } from '../../lab/util/procfs.js';
import { expectNothingNew, hostResources, lab, leftovers, onlyRun, runLab, waitForOutput, type LabResult } from './helpers.js';
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

/** Runs the lab, sends it SIGINT `delayMs` after `started(output)` holds; how long it took to exit after. */
async function interrupted(args: string[], started: (text: string) => boolean, delayMs: number): Promise<LabResult & { exitSeconds: number }> {
  let interruptedAt = 0;
  const result = await runLab(args, {
    during: (child, output) => {
      void waitForOutput(output, started, 300_000).then(() =>
        setTimeout(() => {
          interruptedAt = Date.now();
          child.kill('SIGINT');
        }, delayMs),
      );
    },
  });
  return { ...result, exitSeconds: (Date.now() - interruptedAt) / 1000 };
}

describe('nothing is left behind', () => {
  test('Ctrl-C while a VM boots stops the boot, cleans up at once and exits 130; the report says interrupted', async () => {
    const before = hostResources();
    // --snapshots=off: a boot, not a restore.
    const result = await interrupted(['run', '--snapshots=off', 'scenarios/smoke'], (text) => text.includes(' • booting node1'), 3000);
    expect(result.code, result.output).toBe(130);
    expect(result.exitSeconds, 'did not wait for the boot to finish').toBeLessThan(15);
    const { runId, summary } = onlyRun(result);
    expect(summary).toMatchObject({ verdict: 'error', error: 'interrupted' });
    expect(summary.phases.find((p) => p.name === 'machines')?.status).toBe('failed');
    expect(leftovers(runId)).toEqual([]);
    expectNothingNew(before);
  });

  test('Ctrl-C during the checks stops the check that runs, keeps the results so far, cleans up at once and exits 130', async () => {
    const before = hostResources();
    const result = await interrupted(['run', 'test/scenarios/slow-check'], (text) => text.includes('✓ nodes-up node1 > clock is within'), 3000);
    expect(result.code, result.output).toBe(130);
    expect(result.exitSeconds, 'did not wait for the two-minute check').toBeLessThan(30);
    const { runId, summary } = onlyRun(result);
    expect(summary).toMatchObject({ verdict: 'error', error: 'interrupted' });
    expect(summary.checks.filter((c) => c.check === 'nodes-up').map((c) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(summary.checks.find((c) => c.check === 'slow')?.status).not.toBe('passed');
    expect(leftovers(runId)).toEqual([]);
    expectNothingNew(before);
  });

  test('the report folder removed mid-run: the run goes on, says so, writes its report again and leaves nothing', async () => {
    const before = hostResources();
    let removed = '';
    const result = await runLab(['run', 'test/scenarios/slow-check'], {
      during: (child, output, reportsDir) => {
        void waitForOutput(output, (text) => text.includes(' • checks: '), 300_000).then(() => {
          removed = join(reportsDir, runIdFrom(output()));
          rmSync(removed, { recursive: true });
          // The slow check's two minutes are not what this test is about: once nodes-up is done (its
          // last step's line, written after the removal, is the one that finds it), stop the run.
          return waitForOutput(output, (text) => text.includes('✓ nodes-up node1 > clock is within'), 300_000).then(() =>
            setTimeout(() => child.kill('SIGINT'), 1000),
          );
        });
      },
    });
    expect(result.output).toContain(`WARNING: ${removed} was removed while the run went on: made again, and what it held until now is lost`);
    expect(result.code, result.output).toBe(130);
    const { runId, dir, summary } = onlyRun(result);
    expect(dir).toBe(removed);
    expect(summary.checks.filter((c) => c.check === 'nodes-up' && c.status === 'passed')).toHaveLength(4);
    expect(existsSync(join(dir, 'report.html')) && existsSync(join(dir, 'junit.xml'))).toBe(true);
    expect(readFileSync(join(dir, 'logs/lab.log'), 'utf8')).toContain('was removed while the run went on');
    expect(leftovers(runId)).toEqual([]);
    expectNothingNew(before);
  });

  test('two labs on the same scenario at once: two runs, no collision, both pass, nothing left', async () => {
    const before = hostResources();
    const results = await Promise.all([runLab(['run', 'scenarios/smoke']), runLab(['run', 'scenarios/smoke'])]);
    const runs = results.map((result) => {
      expect(result.code, result.output).toBe(0);
      return onlyRun(result);
    });
    expect(new Set(runs.map((r) => r.runId)).size).toBe(2);
    // Each QEMU forwarded its own SSH port and joined its own run's switch.
    const wiring = runs.map(({ dir }) => {
      const args = readFileSync(join(dir, 'logs/node1/qemu.log'), 'utf8');
      return [/hostfwd=tcp:127\.0\.0\.1:(\d+)-/.exec(args)?.[1], /sock=([^,\s]+)/.exec(args)?.[1]];
    });
    expect(wiring.flat().every(Boolean), JSON.stringify(wiring)).toBe(true);
    expect(wiring[0]?.[0]).not.toBe(wiring[1]?.[0]);
    expect(wiring[0]?.[1]).not.toBe(wiring[1]?.[1]);
    for (const { runId } of runs) expect(leftovers(runId)).toEqual([]);
    expectNothingNew(before);
  });

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
