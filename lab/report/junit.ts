import { partOfBug } from '../bugs/verdict.js';
import { restoredFrom, type RunSummary } from './summary.js';

/** A JUnit XML test case: what CI systems show per line, and the suite it belongs to. */
export interface Case {
  suite?: string;
  classname: string;
  name: string;
  seconds: number;
  status: 'passed' | 'failed' | 'skipped';
  message?: string;
  output?: string;
}

const escapeXml = (text: string): string =>
  text
    // Characters XML 1.0 cannot carry at all (console output has them).
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

/**
 * `junit.xml`: one suite for the provisioner steps and one per check, so a CI system shows a
 * failed provision step the same way as a failed check.
 */
export function junitXml(summary: RunSummary): string {
  const suites = new Map<string, Case[]>();
  for (const c of junitCases(summary)) suites.set(c.suite ?? '', [...(suites.get(c.suite ?? '') ?? []), c]);
  return junitDocument(
    summary.runId,
    [...suites].map(([name, cases]) => ({ name, timestamp: summary.startedAt, cases })),
  );
}

/** A run's test cases, each with its suite: the lab's failed phases, the provision steps, the checks and the bug. */
export function junitCases(summary: RunSummary): Case[] {
  const cases: Case[] = [];
  const add = (suite: string, testCase: Case) => cases.push({ suite, ...testCase });

  for (const phase of summary.phases.filter((p) => p.status === 'failed' && p.name !== 'provision' && p.name !== 'checks')) {
    add('lab', {
      classname: `${summary.scenario.name}.lab`,
      name: phase.name,
      seconds: phase.seconds,
      status: 'failed',
      message: phase.error,
    });
  }
  for (const step of summary.steps) {
    add('provision', {
      classname: `${summary.scenario.name}.provision`,
      name: `${step.step} on ${step.node}`,
      seconds: step.seconds,
      status: step.status,
      message: step.error,
      output: step.restored ? restoredFrom(step.restored) : `log: ${step.log}`,
    });
  }
  const { bug } = summary;
  for (const check of summary.checks) {
    // A reproduced bug's failures are expected failures: skipped, with the bug and the message (never a pass).
    const expected = partOfBug(bug, check, summary.checks);
    add(check.check, {
      classname: `${summary.scenario.name}.${check.check}`,
      name: check.name,
      seconds: check.seconds,
      status: expected ? 'skipped' : check.status,
      message: expected ? `expected failure, bug ${bug?.url}: ${check.message ?? ''}` : check.message,
    });
  }
  if (bug)
    add('bug', {
      classname: `${summary.scenario.name}.bug`,
      name: `${bug.url}: ${bug.title}`,
      seconds: 0,
      status: bug.verdict === 'reproduced' ? 'skipped' : 'failed',
      message: `${bug.verdict}: ${bug.reason}`,
    });
  return cases;
}

/** The XML of named suites of cases. */
export function junitDocument(name: string, suites: { name: string; timestamp: string; cases: Case[] }[]): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = suites.flatMap((suite) => suite.cases);
  lines.push(
    `<testsuites name="${escapeXml(name)}" tests="${all.length}" failures="${count(all, 'failed')}" skipped="${count(all, 'skipped')}" time="${total(all)}">`,
  );
  for (const { name: suite, timestamp, cases } of suites) {
    lines.push(
      `  <testsuite name="${escapeXml(suite)}" tests="${cases.length}" failures="${count(cases, 'failed')}" skipped="${count(cases, 'skipped')}" time="${total(cases)}" timestamp="${timestamp}">`,
    );
    for (const c of cases) {
      const open = `    <testcase classname="${escapeXml(c.classname)}" name="${escapeXml(c.name)}" time="${c.seconds.toFixed(3)}"`;
      const body: string[] = [];
      if (c.status === 'failed') {
        const message = c.message ?? 'failed';
        body.push(`      <failure message="${escapeXml(message.split('\n')[0] ?? '')}">${escapeXml(message)}</failure>`);
      }
      if (c.status === 'skipped') body.push(c.message ? `      <skipped message="${escapeXml(c.message)}"/>` : '      <skipped/>');
      if (c.output) body.push(`      <system-out>${escapeXml(c.output)}</system-out>`);
      lines.push(body.length ? `${open}>\n${body.join('\n')}\n    </testcase>` : `${open}/>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}

const count = (cases: Case[], status: Case['status']) => cases.filter((c) => c.status === status).length;
const total = (cases: Case[]) => cases.reduce((sum, c) => sum + c.seconds, 0).toFixed(3);
