import { describe, expect, test } from 'vitest';
import { junitXml } from '../../lab/report/junit.js';
import { verdictOf, type RunSummary } from '../../lab/report/summary.js';

function summary(overrides: Partial<RunSummary> = {}): RunSummary {
  return {
    runId: 'smoke-20260101-000000-abcd',
    scenario: { name: 'smoke', file: 'scenarios/smoke/scenario.yaml', axes: { arch: 'amd64' } },
    nodes: [{ name: 'node1', role: 'master', arch: 'amd64' }],
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    seconds: 60,
    verdict: 'failed',
    phases: [{ name: 'images', status: 'passed', seconds: 1 }],
    steps: [
      { step: 'hello', node: 'node1', status: 'passed', seconds: 1.5, log: 'logs/hello-node1.log' },
      { step: 'hello', node: 'node2', status: 'failed', seconds: 2, log: 'logs/hello-node2.log', error: 'exited with 3\nline two' },
      { step: 'later', node: 'node1', status: 'skipped', seconds: 0, log: 'logs/later-node1.log' },
    ],
    checks: [{ check: 'nodes-up', name: 'nodes-up > node1 is up', status: 'passed', seconds: 0.25 }],
    ...overrides,
  };
}

/** The opening tag of the suite named `name`. */
const suiteTag = (xml: string, name: string) => xml.split('\n').find((line) => line.includes(`<testsuite name="${name}"`));

describe('junitXml', () => {
  test('counts tests, failures and skips overall and per suite', () => {
    const xml = junitXml(summary());
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(xml).toContain('<testsuites name="smoke-20260101-000000-abcd" tests="4" failures="1" skipped="1" time="3.750">');
    expect(suiteTag(xml, 'provision')).toContain('tests="3" failures="1" skipped="1" time="3.500" timestamp="2026-01-01T00:00:00.000Z"');
    expect(suiteTag(xml, 'nodes-up')).toContain('tests="1" failures="0" skipped="0" time="0.250"');
    expect(xml.match(/<testsuite /g)).toHaveLength(2);
    expect(xml.trimEnd().endsWith('</testsuites>')).toBe(true);
  });

  test('provision steps are "<step> on <node>" cases; a failure has its first line as message, all of it as body', () => {
    const xml = junitXml(summary());
    expect(xml).toContain('<testcase classname="smoke.provision" name="hello on node1" time="1.500">');
    expect(xml).toContain(
      [
        '    <testcase classname="smoke.provision" name="hello on node2" time="2.000">',
        '      <failure message="exited with 3">exited with 3\nline two</failure>',
        '      <system-out>log: logs/hello-node2.log</system-out>',
        '    </testcase>',
      ].join('\n'),
    );
    expect(xml).toMatch(/name="later on node1" time="0.000">\n {6}<skipped\/>/);
    expect(xml).toContain('<testcase classname="smoke.nodes-up" name="nodes-up &gt; node1 is up" time="0.250"/>');
  });

  test("a check step skipped on purpose carries its reason as the skip's message", () => {
    const checks = [{ check: 'flocker-attach', name: 'the dataset moves', status: 'skipped' as const, seconds: 0, message: 'the loopback backend cannot move a dataset' }];
    const xml = junitXml(summary({ steps: [], checks }));
    expect(xml).toMatch(/name="the dataset moves" time="0.000">\n {6}<skipped message="the loopback backend cannot move a dataset"\/>/);
  });

  test('escapes XML special characters and drops control characters', () => {
    const checks = [{ check: 'c', name: 'a & b', status: 'failed' as const, seconds: 0, message: 'got <"x"> \x1b[31mred\x1b[0m & more' }];
    const xml = junitXml(summary({ steps: [], checks }));
    expect(xml).toContain('name="a &amp; b"');
    expect(xml).toContain(
      '<failure message="got &lt;&quot;x&quot;&gt; [31mred[0m &amp; more">got &lt;&quot;x&quot;&gt; [31mred[0m &amp; more</failure>',
    );
    expect(xml).not.toContain('\x1b');
  });

  test('keeps characters outside the Basic Multilingual Plane', () => {
    const checks = [{ check: 'c', name: 'rocket 🚀', status: 'passed' as const, seconds: 0 }];
    expect(junitXml(summary({ steps: [], checks }))).toContain('name="rocket 🚀"');
  });

  test('a failed phase other than provision and checks appears in suite "lab"', () => {
    const phases = [
      { name: 'images', status: 'passed' as const, seconds: 1 },
      { name: 'machines', status: 'failed' as const, seconds: 4, error: 'node1 did not boot\nconsole: ...' },
      { name: 'provision', status: 'failed' as const, seconds: 2, error: 'step failed' },
    ];
    const xml = junitXml(summary({ phases, steps: [], checks: [] }));
    expect(suiteTag(xml, 'lab')).toContain('tests="1" failures="1" skipped="0" time="4.000"');
    expect(xml).toContain('<testcase classname="smoke.lab" name="machines" time="4.000">');
    expect(xml).toContain('<failure message="node1 did not boot">node1 did not boot\nconsole: ...</failure>');
    expect(xml).not.toContain('name="provision"');
    expect(xml).toMatch(/<testsuites [^>]*tests="1" failures="1" skipped="0"/);
  });

  test('a failed case without a message says "failed"', () => {
    const steps = [{ step: 's', node: 'n', status: 'failed' as const, seconds: 0, log: 'l' }];
    expect(junitXml(summary({ steps, checks: [] }))).toContain('<failure message="failed">failed</failure>');
  });
});

describe('verdictOf', () => {
  const base = summary();
  test('failed when any phase, step or check failed', () => {
    expect(verdictOf(base)).toBe('failed');
    expect(verdictOf({ phases: [{ name: 'machines', status: 'failed', seconds: 0 }], steps: [], checks: [] })).toBe('failed');
    expect(verdictOf({ phases: [], steps: [], checks: [{ ...base.checks[0]!, status: 'failed' }] })).toBe('failed');
  });

  test('passed when nothing failed, skipped entries included', () => {
    expect(verdictOf({ ...base, steps: base.steps.filter((s) => s.status !== 'failed') })).toBe('passed');
  });
});
