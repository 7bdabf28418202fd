import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { processes } from '../../lab/util/procfs.js';
import { FAULT_VERBS_PASSED, faultVerbs, leftovers, onlyRun, runLab, waitForOutput } from './helpers.js';

/** libvirtd processes the lab started for a run (the run's state folder is on their command line). */
const runDaemons = (runId: string) =>
  processes().filter(({ args }) => args[0]?.endsWith('libvirtd') && args.some((a) => a.includes(`/runs/${runId}/`)));

/** QEMUs running a domain of the run (libvirt names the guest after the domain). */
const domainQemus = (runId: string) =>
  processes().filter(({ args }) => args[0]?.includes('qemu-system') && args.some((a) => a.includes(`guest=lab-${runId}-`)));

/** The state of the run's one domain as its private libvirtd reports it ('' while it has none). */
const domainState = (runId: string) => {
  const socket = join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', 'runs', runId, 'libvirt', 'run', 'libvirt-sock');
  if (!existsSync(socket)) return '';
  const virsh = spawnSync('virsh', ['-c', `qemu:///system?socket=${socket}`, 'domstate', `lab-${runId}-node1`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return virsh.stdout.trim();
};

describe('libvirt driver', () => {
  test("two VMs run through libvirt, the checks' fault verbs work on them, and no domain, daemon, process or overlay is left", async () => {
    // test/scenarios/faults is two-vms with a check that blocks, pauses, reboots and crashes the worker.
    const result = await runLab(['run', '--driver', 'libvirt', 'test/scenarios/faults']);
    expect(result.code, result.output).toBe(0);
    const { runId, summary } = onlyRun(result);
    expect(summary.scenario.axes.driver).toBe('libvirt');
    expect(result.output).toContain("✓ starting the run's libvirtd");
    expect(summary.checks.filter((c) => c.check === 'cluster-link').map((c) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(faultVerbs(summary.checks)).toEqual(FAULT_VERBS_PASSED);
    expect(summary.checks.every((c) => c.status === 'passed')).toBe(true);
    // The private libvirtd held every domain: with it and its state folder gone, so are they.
    expect(runDaemons(runId)).toEqual([]);
    expect(leftovers(runId)).toEqual([]);
  });

  test('a lab killed mid-boot leaves libvirt QEMUs that the next lab stops', async () => {
    let runId = '';
    const killed = await runLab(['run', '--fresh', '--driver', 'libvirt', 'scenarios/smoke'], {
      during: (child, output) => {
        void waitForOutput(output, (text) => /• booting node1/.test(text), 120_000).then(async () => {
          runId = /run (smoke-\S+):/.exec(output())?.[1] ?? '';
          // libvirt daemonizes its QEMUs: unlike the qemu driver's, they survive the lab's death.
          // Kill the lab once libvirt has the domain running: a QEMU killed sooner may not have
          // opened the run's switch yet, which dies with the lab, and then exits by itself
          // ("Could not open vde: Connection refused"; CI saw it on a loaded host).
          await waitForOutput(
            () => domainState(runId),
            (state) => state === 'running',
            60_000,
          );
          expect(domainQemus(runId)).toHaveLength(1);
          child.kill('SIGKILL');
        });
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(runId).not.toBe('');
    expect(domainQemus(runId)).toHaveLength(1);

    const gc = await runLab(['gc']);
    expect(gc.code, gc.output).toBe(0);
    expect(gc.output).toContain(`cleaned up after run ${runId}`);
    await waitForOutput(
      () => leftovers(runId).join('\n'),
      (text) => text === '',
      10_000,
    );
  });

  test('a libvirtd the user names but that does not answer is reported, not assumed', async () => {
    const socket = '/nonexistent/libvirt-sock';
    const result = await runLab(['run', '--driver', 'libvirt', 'scenarios/smoke'], {
      env: { LAB_LIBVIRT_URI: `qemu:///system?socket=${socket}` },
    });
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(`cannot reach libvirtd at qemu:///system?socket=${socket}`);
    expect(result.output).toContain('unset LAB_LIBVIRT_URI');
    const { runId } = onlyRun(result);
    expect(leftovers(runId)).toEqual([]);
    expect(existsSync(socket)).toBe(false);
  });
});
