import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { root, runLab } from './helpers.js';

/**
 * `lab bisect --git` over a small repository made here: a user's provisioner checkout (one node,
 * scenarios/smoke's machine) whose third of five commits breaks its install script. git bisect run
 * judges the commits between through `lab bisect --point`; the commits that leave the script
 * alone restore its step's layer.
 */
const work = mkdtempSync(join(tmpdir(), 'lab-bisect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const repo = join(work, 'provisioners');
const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'lab',
      GIT_AUTHOR_EMAIL: 'lab@example.org',
      GIT_COMMITTER_NAME: 'lab',
      GIT_COMMITTER_EMAIL: 'lab@example.org',
    },
  }).trim();

function commit(message: string, files: Record<string, string>): string {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(repo, file, '..'), { recursive: true });
    writeFileSync(join(repo, file), text, { mode: 0o755 });
  }
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return git('rev-parse', '--short=12', 'HEAD');
}

describe('lab bisect --axis', () => {
  test('names the first value of a variable that breaks a provisioner, and what each value tried did', async () => {
    const dir = join(work, 'axis');
    mkdirSync(join(dir, 'scripts'), { recursive: true });
    writeFileSync(
      join(dir, 'scenario.yaml'),
      [
        `extends: ${join(root, 'scenarios', 'smoke')}`,
        'name: bisect-axis',
        'scripts: [./scripts]',
        'env:',
        '  TOOL_VERSION: 1',
        'provision:',
        '  - name: hello',
        '    script: install.sh',
        '',
      ].join('\n'),
    );
    // From TOOL_VERSION 4 on, the install wants a flag nobody sets.
    writeFileSync(
      join(dir, 'scripts', 'install.sh'),
      '#!/bin/sh\n[ "$TOOL_VERSION" -lt 4 ] || { echo "tool $TOOL_VERSION: --flag is required" >&2; exit 3; }\necho "tool $TOOL_VERSION installed"\n',
      { mode: 0o755 },
    );
    const result = await runLab(['bisect', dir, '--axis', 'TOOL_VERSION=1,2,3,4,5,6']);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('bisect: first bad: TOOL_VERSION=4 (TOOL_VERSION=3 is good)');
    const report = JSON.parse(readFileSync(/report: (\S+bisect\.json)/.exec(result.output)?.[1] ?? '', 'utf8')) as {
      points: { value: string; outcome: string; runs: { detail: string }[] }[];
    };
    // The ends first, then halves: 1, 6, then the middle; never a value twice.
    expect(report.points.slice(0, 2).map((p) => [p.value, p.outcome])).toEqual([
      ['1', 'good'],
      ['6', 'bad'],
    ]);
    expect(new Set(report.points.map((p) => p.value)).size).toBe(report.points.length);
    expect(report.points.length).toBeLessThanOrEqual(5);
    expect(report.points.find((p) => p.value === '4')?.runs[0]?.detail).toBe('failed: step hello on node1');
  });

  test('a value the scenario refuses is bad input before any run', async () => {
    const result = await runLab(['bisect', 'scenarios/smoke', '--axis', 'GREETING=a,b', '--arch', 'sparc']);
    expect(result.code, result.output).toBe(2);
    expect(result.output).toContain('--arch must be one of');
    const one = await runLab(['bisect', 'scenarios/smoke', '--axis', 'GREETING=only']);
    expect(one.code).toBe(2);
    expect(one.output).toContain('--axis GREETING needs two or more values');
  });
});

describe('lab bisect --git', () => {
  test("names the commit that broke the checkout's provisioner, and gives the checkout back as it was", async () => {
    mkdirSync(repo);
    git('init', '-q', '-b', 'main');
    const scenario = [
      `extends: ${join(root, 'scenarios', 'smoke')}`,
      'name: bisect-provisioner',
      'scripts: [./scripts]',
      'provision:',
      '  - name: hello',
      '    script: install.sh',
    ].join('\n');
    const good = commit('a provisioner that installs', {
      'scenario.yaml': `${scenario}\n`,
      'scripts/install.sh': '#!/bin/sh\necho installed on "$(hostname)"\n',
    });
    commit('notes', { 'NOTES.md': 'one\n' });
    const culprit = commit('install: insist on a flag nobody sets', {
      'scripts/install.sh':
        '#!/bin/sh\n[ -n "$INSTALL_FLAG" ] || { echo "install: INSTALL_FLAG is not set" >&2; exit 3; }\necho installed\n',
    });
    commit('more notes', { 'NOTES.md': 'one\ntwo\n' });
    const bad = commit('even more notes', { 'NOTES.md': 'one\ntwo\nthree\n' });

    const result = await runLab(['bisect', repo, '--git', repo, good, bad]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`bisect: first bad: commit ${culprit} install: insist on a flag nobody sets`);
    // Each commit git asked about was judged by a whole run: the broken one failed at its step.
    const folder = /report: (\S+bisect\.json)/.exec(result.output)?.[1] ?? '';
    const report = JSON.parse(readFileSync(folder, 'utf8')) as {
      points: { value: string; outcome: string; runs: { detail: string }[] }[];
      git: { log: string };
    };
    const outcomes = Object.fromEntries(report.points.map((p) => [p.value, p.outcome]));
    expect(outcomes[culprit]).toBe('bad');
    expect(report.points.find((p) => p.value === culprit)?.runs[0]?.detail).toMatch(/^failed: step hello on node1/);
    expect(Object.values(outcomes).filter((o) => o === 'good').length).toBeGreaterThan(0);
    expect(report.git.log).toContain(`# first bad commit: [${git('rev-parse', culprit)}]`);
    // The checkout is back on its branch, clean, with no bisect under way.
    expect(git('rev-parse', '--abbrev-ref', 'HEAD')).toBe('main');
    expect(git('rev-parse', '--short=12', 'HEAD')).toBe(bad);
    expect(git('status', '--porcelain')).toBe('');
    expect(existsSync(join(repo, '.git', 'BISECT_START'))).toBe(false);
  });

  test('a checkout with uncommitted changes is bad input: nothing checked out, nothing run', async () => {
    writeFileSync(join(repo, 'NOTES.md'), 'changed\n');
    const head = git('rev-parse', 'HEAD');
    const result = await runLab(['bisect', repo, '--git', repo, 'HEAD~4', 'HEAD']);
    expect(result.code, result.output).toBe(2);
    expect(result.output).toContain('has uncommitted changes: bisect checks out other commits there; commit or stash them first');
    expect(git('rev-parse', 'HEAD')).toBe(head);
    git('checkout', '-q', '--', 'NOTES.md');
  });
});
