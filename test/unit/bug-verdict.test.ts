import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bugExitCode, bugLine, bugVerdict } from '../../lab/bugs/verdict.js';
import type { CheckResult } from '../../lab/checks/runner.js';
import { markKnownBug, writeStepResults } from '../../lab/report/allure.js';
import { junitXml } from '../../lab/report/junit.js';
import type { RunSummary } from '../../lab/report/summary.js';
import { loadScenario } from '../../lab/scenario/loader.js';
import type { BugSpec } from '../../lab/scenario/schema.js';
import { InputError } from '../../lab/util/errors.js';

const BUG: BugSpec = {
  url: 'https://github.com/ClusterHQ/flocker/issues/2841',
  title: 'KeyError in the cinder backend',
  reproduces: [{ check: 'flocker-attach', step: 'runs on worker', message: "KeyError: u'2\\.0'" }],
};

const passed = (check: string, name: string): CheckResult => ({ check, name: `${check} > ${name}`, status: 'passed', seconds: 1 });
const failed = (check: string, name: string, message: string): CheckResult => ({ ...passed(check, name), status: 'failed', message });

const NODES_UP = passed('nodes-up', 'worker answers over SSH');
const LISTED = passed('flocker-attach', 'every node is listed in /v1/state/nodes');
const POD_KEYERROR = failed(
  'flocker-attach',
  'a pod with flocker: {datasetName: lab-flocker-attach} runs on worker',
  "pod lab-flocker-attach is Pending on worker after 60 s; the dataset agent on worker says: main function encountered error: KeyError: u'2.0'",
);
const AFTER = failed(
  'flocker-attach',
  'the dataset is a file system on a Cinder volume',
  'pod lab-flocker-attach never ran (the test above says why)',
);

const run = (checks: CheckResult[], over: Partial<RunSummary> = {}): RunSummary => ({
  runId: 'flocker-2841-1',
  scenario: { name: 'flocker-2841', file: 'scenarios/flocker-2841/scenario.yaml', axes: { arch: 'amd64', driver: 'qemu' } },
  nodes: [],
  startedAt: '2026-12-05T22:00:00.000Z',
  finishedAt: '2026-12-05T22:10:00.000Z',
  seconds: 600,
  verdict: checks.some((c) => c.status === 'failed') ? 'failed' : 'passed',
  phases: [{ name: 'checks', status: 'passed', seconds: 100 }],
  steps: [{ step: 'flocker-agent', node: 'worker', status: 'passed', seconds: 10, log: 'logs/steps/flocker-agent.worker.log' }],
  checks,
  ...over,
});

describe('bugVerdict', () => {
  test('the signature failed and nothing else: reproduced, exit 0', () => {
    const verdict = bugVerdict(BUG, run([NODES_UP, LISTED, POD_KEYERROR]));
    expect(verdict).toMatchObject({ verdict: 'reproduced', matched: [{ check: 'flocker-attach', name: POD_KEYERROR.name, signature: 0 }] });
    expect(bugExitCode(verdict)).toBe(0);
    expect(bugLine(verdict)).toBe(
      `bug ${BUG.url} (${BUG.title}): REPRODUCED: ${POD_KEYERROR.name}: pod lab-flocker-attach is Pending on worker after 60 s; the dataset agent on worker says: main function encountered error: KeyError: u'2.0'`,
    );
  });

  test("the check's later steps, which fail because of it, are part of the bug", () => {
    expect(bugVerdict(BUG, run([NODES_UP, POD_KEYERROR, AFTER])).verdict).toBe('reproduced');
  });

  test('the signature matched, and another check failed too: failed differently, naming it', () => {
    const other = failed('dns', 'nslookup kubernetes.default in the pod on worker', 'no answer within 120 s');
    const verdict = bugVerdict(BUG, run([NODES_UP, POD_KEYERROR, other]));
    expect(verdict.verdict).toBe('failed differently');
    expect(verdict.reason).toBe(`the signature matched, but ${other.name} failed too: no answer within 120 s`);
    expect(bugExitCode(verdict)).toBe(1);
  });

  test('a step of the same check before the signature failed: failed differently', () => {
    const earlier = failed('flocker-attach', 'every node is listed in /v1/state/nodes', 'the control service does not list worker');
    expect(bugVerdict(BUG, run([earlier, POD_KEYERROR])).verdict).toBe('failed differently');
  });

  test('the declared step failed with another message: failed differently, with the message it had', () => {
    const unauthorized = { ...POD_KEYERROR, message: 'the dataset agent on worker says: keystoneauth1.exceptions.http.Unauthorized' };
    const verdict = bugVerdict(BUG, run([NODES_UP, unauthorized, AFTER]));
    expect(verdict.verdict).toBe('failed differently');
    expect(verdict.reason).toBe(
      `${POD_KEYERROR.name} failed, but its message does not match /KeyError: u'2\\.0'/: the dataset agent on worker says: keystoneauth1.exceptions.http.Unauthorized`,
    );
  });

  test('something else failed and the signature did not: failed differently, listing what failed', () => {
    const other = failed('nodes-up', 'worker answers over SSH', 'no answer');
    const verdict = bugVerdict(BUG, run([other, LISTED]));
    expect(verdict.verdict).toBe('failed differently');
    expect(verdict.reason).toBe(`flocker-attach (a step matching /runs on worker/) did not fail; what failed: ${other.name}`);
  });

  test('every entry of the signature must fail', () => {
    const two: BugSpec = { ...BUG, reproduces: [...BUG.reproduces, { check: 'flocker-attach', step: 'moves to master' }] };
    expect(bugVerdict(two, run([POD_KEYERROR])).verdict).toBe('failed differently');
  });

  test('everything passed: not reproduced, exit 1, saying the bug no longer shows', () => {
    const verdict = bugVerdict(BUG, run([NODES_UP, LISTED]));
    expect(verdict).toMatchObject({ verdict: 'not reproduced', reason: 'every step and check passed: the bug no longer shows here' });
    expect(bugExitCode(verdict)).toBe(1);
    // With values the caller changed, it names them: the bug no longer shows *with* them.
    expect(bugVerdict(BUG, run([NODES_UP, LISTED]), { FLOCKER_VERSION: '1.14.0' }).reason).toBe(
      'every step and check passed: the bug no longer shows with FLOCKER_VERSION=1.14.0',
    );
  });

  test('a provision step failed, or the lab could not do its job: failed differently, the bug never tried', () => {
    const step = { step: 'flocker-agent', node: 'worker', status: 'failed' as const, seconds: 3, log: 'x', error: 'exit code 1' };
    expect(bugVerdict(BUG, run([], { steps: [step], verdict: 'failed' }))).toMatchObject({
      verdict: 'failed differently',
      reason: 'provision step flocker-agent failed on worker before the checks: exit code 1',
    });
    expect(
      bugVerdict(BUG, run([], { verdict: 'error', error: 'the VM of worker did not answer over SSH within 120 s', phases: [] })),
    ).toMatchObject({
      verdict: 'failed differently',
      reason: 'the run could not get as far as the bug: the VM of worker did not answer over SSH within 120 s',
    });
  });
});

describe('the reports of a bug scenario', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  test('JUnit: a reproduced bug is expected failures, skipped with the bug and the message, never a pass; its own case too', () => {
    const summary = run([NODES_UP, POD_KEYERROR, AFTER]);
    summary.bug = bugVerdict(BUG, summary);
    const xml = junitXml(summary);
    expect(xml).toContain('failures="0" skipped="3"');
    expect(xml).toContain(`<skipped message="expected failure, bug ${BUG.url}: pod lab-flocker-attach is Pending on worker after 60 s;`);
    expect(xml).toMatch(/<testsuite name="bug" tests="1" failures="0" skipped="1"/);
    expect(xml).toContain(`name="${BUG.url}: ${BUG.title}"`);
    expect(xml).toContain('<skipped message="reproduced: ');
  });

  test('JUnit: a bug that did not reproduce fails loudly; one that failed differently keeps its failures', () => {
    const clean = run([NODES_UP, LISTED]);
    clean.bug = bugVerdict(BUG, clean);
    expect(junitXml(clean)).toContain('<failure message="not reproduced: every step and check passed: the bug no longer shows here">');
    const other = failed('dns', 'nslookup kubernetes.default in the pod on worker', 'no answer within 120 s');
    const different = run([POD_KEYERROR, other]);
    different.bug = bugVerdict(BUG, different);
    const xml = junitXml(different);
    expect(xml).toContain('failures="3" skipped="0"');
    expect(xml).toContain('<failure message="failed differently: the signature matched, but ');
  });

  test('Allure: the failed steps of a reproduced bug are known issues linked to it; the verdict is a result; the environment names it', () => {
    const results = mkdtempSync(join(tmpdir(), 'lab-bug-allure-'));
    dirs.push(results);
    const result = (name: string) => ({
      name,
      fullName: `lab/checks/builtin/flocker-attach.check.ts#flocker-attach ${name}`,
      status: 'failed',
      statusDetails: { message: 'x' },
      labels: [{ name: 'framework', value: 'vitest' }],
    });
    writeFileSync(join(results, 'pod-result.json'), JSON.stringify(result(POD_KEYERROR.name.replace('flocker-attach > ', ''))));
    writeFileSync(
      join(results, 'other-result.json'),
      JSON.stringify({ ...result('the control service refuses a client'), status: 'passed' }),
    );
    const summary = run([NODES_UP, POD_KEYERROR]);
    summary.bug = bugVerdict(BUG, summary);
    writeStepResults(results, summary, results);
    markKnownBug(results, summary);
    const pod = JSON.parse(readFileSync(join(results, 'pod-result.json'), 'utf8'));
    expect(pod.links).toEqual([{ type: 'issue', name: BUG.url, url: BUG.url }]);
    expect(pod.statusDetails).toEqual({ message: 'x', known: true });
    expect(JSON.parse(readFileSync(join(results, 'other-result.json'), 'utf8')).links).toBeUndefined();
    const verdict = readdirSync(results)
      .map((f) => (f.endsWith('-result.json') ? JSON.parse(readFileSync(join(results, f), 'utf8')) : undefined))
      .find((r) => r?.labels?.some((l: { value: string }) => l.value === 'bug'));
    expect(verdict).toMatchObject({ status: 'skipped', statusDetails: { known: true }, links: [{ url: BUG.url }] });
    expect(readFileSync(join(results, 'environment.properties'), 'utf8')).toContain(`bug=${BUG.url} reproduced\n`);
  });
});

describe("a scenario's bug block is checked like the rest of it", () => {
  const root = mkdtempSync(join(tmpdir(), 'lab-bug-scenario-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (folder: string, ...lines: string[]) => {
    const file = join(root, folder, 'scenario.yaml');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${lines.join('\n')}\n`);
    return dirname(file);
  };
  const problems = (dir: string): readonly string[] => {
    try {
      loadScenario(dir);
    } catch (error) {
      expect(error).toBeInstanceOf(InputError);
      return (error as InputError).problems;
    }
    throw new Error('the scenario loaded');
  };

  test('a regex that does not compile, a check the scenario does not run, a missing url: each with its line', () => {
    const dir = write(
      'bad',
      'nodes: [{name: node1}]',
      'checks: [nodes-up]',
      'bug:',
      '  title: a bug',
      '  reproduces:',
      '    - check: flocker-attach',
      '      message: "KeyError: (u\'2"',
    );
    const shown = relative(process.cwd(), join(dir, 'scenario.yaml'));
    expect(problems(dir)).toEqual([
      `${shown}:3:1: bug.url: Invalid input: expected string, received undefined`,
      `${shown}:7:7: bug.reproduces[0].message: is not a regular expression: Invalid regular expression: /KeyError: (u'2/: Unterminated group`,
    ]);
    const unknown = write(
      'unknown',
      'nodes: [{name: node1}]',
      'checks: [nodes-up]',
      'bug:',
      '  url: https://example.org/1',
      '  title: t',
      '  reproduces: [{check: dns}]',
    );
    expect(problems(unknown)).toEqual([
      `${relative(process.cwd(), join(unknown, 'scenario.yaml'))}:6:17: bug.reproduces[0].check: "dns" is not one of the scenario's checks (nodes-up)`,
    ]);
  });
});
