import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { loadsExternal, relabelCheckResults, stripExternalScripts, writeStepResults } from '../../lab/report/allure.js';
import type { RunSummary } from '../../lab/report/summary.js';

const GTAG = [
  '<script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>',
  '<script>',
  '  window.dataLayer = window.dataLayer || [];',
  '  function gtag(){dataLayer.push(arguments);}',
  "  gtag('js', new Date());",
  "  gtag('config', 'G-X');",
  '</script>',
].join('\n');
const APP = '<script>window.app = { start() {} };</script>';
const DATA = '<script src="data:text/javascript;base64,YWxlcnQoMSk="></script>';

describe('stripExternalScripts', () => {
  test('removes the analytics loader and its gtag inline script, keeps the rest', () => {
    const html = `<html><head>${APP}\n${GTAG}\n${DATA}</head><body><p>report</p></body></html>`;
    const stripped = stripExternalScripts(html);
    expect(stripped).toBe(`<html><head>${APP}\n${DATA}</head><body><p>report</p></body></html>`);
    expect(loadsExternal(html)).toBe(true);
    expect(loadsExternal(stripped)).toBe(false);
  });
});

describe('loadsExternal', () => {
  test.each([
    '<script src="https://cdn.example/x.js"></script>',
    "<script type='module' src='http://cdn.example/x.js'></script>",
    '<link rel="stylesheet" href="//fonts.example/a.css">',
    '<img alt="" src=https://img.example/a.png>',
    '<iframe src="https://example.org"></iframe>',
  ])('true for %s', (html) => {
    expect(loadsExternal(html)).toBe(true);
  });

  test.each([
    DATA,
    '<img src="data:image/png;base64,AAAA">',
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0"/></svg>',
    '<a href="https://allurereport.org">Allure</a>',
    APP,
  ])('false for %s', (html) => {
    expect(loadsExternal(html)).toBe(false);
  });
});

describe('writeStepResults', () => {
  let work: string;
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'lab-allure-test-'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  test('writes one result per step with its log attached, and environment.properties', () => {
    const runDir = join(work, 'run');
    const results = join(work, 'allure-results');
    mkdirSync(join(runDir, 'logs'), { recursive: true });
    writeFileSync(join(runDir, 'logs', 'hello-node1.log'), 'hello from node1\n');
    const summary = {
      runId: 'smoke-1',
      scenario: { name: 'smoke', file: 'scenario.yaml', axes: { arch: 'amd64', driver: 'qemu' } },
      startedAt: '2026-01-01T00:00:00.000Z',
      steps: [
        { step: 'hello', node: 'node1', status: 'passed', seconds: 1.5, log: 'logs/hello-node1.log' },
        { step: 'hello', node: 'node2', status: 'failed', seconds: 2, log: 'logs/missing.log', error: 'exited with 3' },
      ],
    } as unknown as RunSummary;

    writeStepResults(results, summary, runDir);

    const files = readdirSync(results);
    const resultFiles = files.filter((f) => f.endsWith('-result.json'));
    expect(resultFiles).toHaveLength(2);
    const byHost = new Map(
      resultFiles.map((f) => {
        const r = JSON.parse(readFileSync(join(results, f), 'utf8'));
        return [r.labels.find((l: { name: string }) => l.name === 'host').value as string, r];
      }),
    );
    const ok = byHost.get('node1');
    expect(ok).toMatchObject({ name: 'hello on node1', status: 'passed', stage: 'finished', statusDetails: {} });
    expect(ok.labels).toEqual([
      { name: 'parentSuite', value: 'smoke' },
      { name: 'suite', value: 'provision' },
      { name: 'subSuite', value: 'node1' },
      { name: 'host', value: 'node1' },
    ]);
    expect(ok.stop - ok.start).toBe(1500);
    expect(ok.attachments).toEqual([{ name: 'hello output on node1', source: `${ok.uuid}-attachment.txt`, type: 'text/plain' }]);
    expect(readFileSync(join(results, ok.attachments[0].source), 'utf8')).toBe('hello from node1\n');

    const failed = byHost.get('node2');
    expect(failed).toMatchObject({
      name: 'hello on node2',
      status: 'failed',
      statusDetails: { message: 'exited with 3' },
      attachments: [],
    });

    expect(files.filter((f) => f.endsWith('-attachment.txt'))).toHaveLength(1);
    expect(readFileSync(join(results, 'environment.properties'), 'utf8')).toBe('arch=amd64\ndriver=qemu\nrun=smoke-1\n');
  });
});

describe('relabelCheckResults', () => {
  test('groups vitest results as scenario > check > describe path and leaves other results alone', () => {
    const results = mkdtempSync(join(tmpdir(), 'lab-relabel-'));
    const check = {
      fullName: 'lab/checks/builtin/nodes-up.check.ts#nodes-up node1 hostname is node1',
      labels: [
        { name: 'framework', value: 'vitest' },
        { name: 'parentSuite', value: 'nodes-up node1' },
        { name: 'host', value: 'ci' },
      ],
    };
    const step = { fullName: 'smoke/provision/hello/node1', labels: [{ name: 'suite', value: 'provision' }] };
    writeFileSync(join(results, 'a-result.json'), JSON.stringify(check));
    writeFileSync(join(results, 'b-result.json'), JSON.stringify(step));
    relabelCheckResults(results, 'smoke');
    expect(JSON.parse(readFileSync(join(results, 'a-result.json'), 'utf8')).labels).toEqual([
      { name: 'framework', value: 'vitest' },
      { name: 'host', value: 'ci' },
      { name: 'parentSuite', value: 'smoke' },
      { name: 'suite', value: 'nodes-up' },
      { name: 'subSuite', value: 'nodes-up node1' },
    ]);
    expect(JSON.parse(readFileSync(join(results, 'b-result.json'), 'utf8'))).toEqual(step);
    rmSync(results, { recursive: true, force: true });
  });
});
