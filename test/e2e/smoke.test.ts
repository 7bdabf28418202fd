import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadsExternal } from '../../lab/report/allure.js';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe('lab run scenarios/smoke', () => {
  test('boots a real VM, provisions it, passes nodes-up, reports, and leaves nothing behind', async () => {
    // --fresh: a boot, whatever the snapshot cache holds (it saves the layers anew).
    const result = await runLab(['run', '--fresh', 'scenarios/smoke']);
    expect(result.code, result.output).toBe(0);
    const { runId, dir, summary } = onlyRun(result);

    expect(summary.verdict).toBe('passed');
    expect(summary.phases.map((p) => `${p.name}:${p.status}`)).toEqual([
      'images:passed',
      'network:passed',
      'machines:passed',
      // No Kubernetes in this scenario: no payload to bring to the node.
      'payload:skipped',
      'provision:passed',
      'checks:passed',
      'destroy:passed',
      'report:passed',
    ]);
    expect(summary.steps).toMatchObject([{ step: 'hello', node: 'node1', status: 'passed', exitCode: 0 }]);
    expect(summary.checks.map((c) => c.name)).toEqual([
      'nodes-up node1 > answers over SSH',
      'nodes-up node1 > hostname is node1',
      'nodes-up node1 > architecture is amd64',
      'nodes-up node1 > clock is within 5 s of the host',
    ]);
    expect(summary.checks.every((c) => c.status === 'passed')).toBe(true);

    // The provisioner saw the scenario's environment and ran as root on the right node.
    const provisionLog = readFileSync(join(dir, 'logs/node1/provision-hello.log'), 'utf8');
    expect(provisionLog).toContain('hello from the lab on node1 (amd64, role master');
    // Console, journal and the reports a person and a CI system read.
    expect(readFileSync(join(dir, 'logs/node1/console.log'), 'utf8')).toMatch(/node1 login:/);
    expect(readFileSync(join(dir, 'logs/node1/journal.log'), 'utf8')).toMatch(/sshd/);
    const junit = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testsuites name="[^"]+" tests="5" failures="0"/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<html');
    expect(loadsExternal(html)).toBe(false);
    expect(html).not.toContain('googletagmanager');
    expect(existsSync(join(dir, `lab-${runId}.tar.gz`))).toBe(true);

    expect(leftovers(runId)).toEqual([]);
  });
});
