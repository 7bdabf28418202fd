import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { QemuDriver } from '../../lab/machines/qemu/driver.js';
import { reapAbandonedRuns, reapOrphans } from '../../lab/run/registry.js';
import { isAlive } from '../../lab/util/proc.js';
import { silentLogger } from '../../lab/util/log.js';

let state: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'lab-state-'));
  process.env.LAB_STATE_DIR = state;
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  delete process.env.LAB_STATE_DIR;
  rmSync(state, { recursive: true, force: true });
});

/** A process that looks like a run's hypervisor to the lab (argv[0] qemu-system-..., a run label). */
function fakeHypervisor(runId: string, ...more: string[]): number {
  const script = `exec -a qemu-system-x86_64 python3 -c 'import time; time.sleep(60)' -name guest=n1,process=lab:${runId}:n1 ${more.join(' ')}`;
  const child = spawn('bash', ['-c', script], { stdio: 'ignore' });
  children.push(child);
  return child.pid as number;
}

/** A run folder whose lab (a PID that is not running) is gone. */
function deadRun(runId: string, extra: object = {}): string {
  const dir = join(state, 'runs', runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ runId, pid: 2 ** 22 + 1, pidStart: '1', scenario: 's', reportDir: '/nowhere', startedAt: '2026-01-01', ...extra }));
  return dir;
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('reaping what killed labs left', () => {
  test("a dead lab's run folder and hypervisor go; another state folder's hypervisor stays", async () => {
    const dir = deadRun('dead-1');
    await settle();
    const mine = fakeHypervisor('dead-1', `-drive file=${dir}/disk.qcow2`);
    const others = fakeHypervisor('elsewhere-1', '-drive file=/var/lib/other/runs/elsewhere-1/disk.qcow2');
    await settle();
    expect(isAlive(mine) && isAlive(others), 'both stand-ins run').toBe(true);
    const cleaned = await reapOrphans([new QemuDriver()], silentLogger());
    await settle();
    expect(cleaned).toEqual(['dead-1']);
    expect(existsSync(dir)).toBe(false);
    expect(isAlive(mine)).toBe(false);
    expect(isAlive(others), "a hypervisor of a run this state folder does not know is not this lab's to stop").toBe(true);
  });

  test('a kept run and a run that is just starting (no run.json yet) are left alone', async () => {
    const kept = deadRun('kept-1', { kept: { keptAt: '2026-01-01', descriptorFile: '/x', checks: [] } });
    const starting = join(state, 'runs', 'starting-1');
    mkdirSync(starting, { recursive: true });
    await reapAbandonedRuns(silentLogger());
    expect(await reapOrphans([new QemuDriver()], silentLogger())).toEqual([]);
    expect(existsSync(kept) && existsSync(starting)).toBe(true);
  });

  test('reapAbandonedRuns, run by the commands about runs, cleans a dead run up', async () => {
    const dir = deadRun('dead-2');
    await reapAbandonedRuns(silentLogger());
    expect(existsSync(dir)).toBe(false);
  });
});
