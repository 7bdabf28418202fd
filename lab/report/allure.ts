import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../util/paths.js';
import { run } from '../util/proc.js';
import { partOfBug } from '../bugs/verdict.js';
import { restoredFrom, snapshotLine, type RunSummary } from './summary.js';

/**
 * Writes the provisioner steps as Allure results next to the ones allure-vitest wrote for the
 * checks, so the HTML report shows the whole run, each step with its output attached.
 */
export function writeStepResults(resultsDir: string, summary: RunSummary, runDir: string): void {
  mkdirSync(resultsDir, { recursive: true });
  const start = Date.parse(summary.startedAt);
  for (const step of summary.steps) {
    const uuid = randomUUID();
    const attachments = [];
    const logFile = join(runDir, step.log);
    if (step.log && existsSync(logFile)) {
      const source = `${uuid}-attachment.txt`;
      copyFileSync(logFile, join(resultsDir, source));
      attachments.push({ name: `${step.step} output on ${step.node}`, source, type: 'text/plain' });
    }
    const result = {
      uuid,
      historyId: `${summary.scenario.name}:provision:${step.step}:${step.node}`,
      name: `${step.step} on ${step.node}`,
      fullName: `${summary.scenario.name}/provision/${step.step}/${step.node}`,
      status: step.status === 'failed' ? 'failed' : step.status === 'skipped' ? 'skipped' : 'passed',
      statusDetails: step.error ? { message: step.error } : step.restored ? { message: restoredFrom(step.restored) } : {},
      stage: 'finished',
      start,
      stop: start + Math.round(step.seconds * 1000),
      labels: [
        { name: 'parentSuite', value: summary.scenario.name },
        { name: 'suite', value: 'provision' },
        { name: 'subSuite', value: step.node },
        { name: 'host', value: step.node },
      ],
      parameters: [],
      steps: [],
      attachments,
    };
    writeFileSync(join(resultsDir, `${uuid}-result.json`), JSON.stringify(result));
  }
  const environment = Object.entries(summary.scenario.axes).map(([key, value]) => `${key}=${value}`);
  const snapshot = snapshotLine(summary);
  const bug = summary.bug ? `bug=${summary.bug.url} ${summary.bug.verdict}\n` : '';
  writeFileSync(
    join(resultsDir, 'environment.properties'),
    `${environment.join('\n')}\nrun=${summary.runId}\n${snapshot ? `snapshot=${snapshot}\n` : ''}${bug}`,
  );
  if (summary.bug) writeBugResult(resultsDir, summary, start);
}

/** The bug's link, as allure's `issue()` writes it. */
const bugLink = (url: string) => ({ type: 'issue', name: url, url });

/** The verdict as a result of its own: reproduced is skipped (a known issue), never passed; anything else fails. */
function writeBugResult(resultsDir: string, summary: RunSummary, start: number): void {
  const bug = summary.bug!;
  const uuid = randomUUID();
  const result = {
    uuid,
    historyId: `${summary.scenario.name}:bug:${bug.url}`,
    name: `${bug.url}: ${bug.title}`,
    fullName: `${summary.scenario.name}/bug`,
    status: bug.verdict === 'reproduced' ? 'skipped' : bug.verdict === 'not reproduced' ? 'failed' : 'broken',
    statusDetails: { message: `${bug.verdict}: ${bug.reason}`, known: bug.verdict === 'reproduced' },
    stage: 'finished',
    start,
    stop: start,
    labels: [
      { name: 'parentSuite', value: summary.scenario.name },
      { name: 'suite', value: 'bug' },
    ],
    links: [bugLink(bug.url)],
    parameters: [],
    steps: [],
    attachments: [],
  };
  writeFileSync(join(resultsDir, `${uuid}-result.json`), JSON.stringify(result));
}

/** A reproduced bug's failed steps in allure-vitest's results: known issues, linked to the bug. */
export function markKnownBug(resultsDir: string, summary: RunSummary): void {
  const { bug } = summary;
  if (!bug) return;
  for (const file of readdirSync(resultsDir).filter((f) => f.endsWith('-result.json'))) {
    const path = join(resultsDir, file);
    const result = JSON.parse(readFileSync(path, 'utf8')) as AllureResult;
    const check = checkOf(result);
    const mine = summary.checks.find((c) => c.check === check && c.status === 'failed' && c.name.endsWith(result.name ?? '\0'));
    if (!mine || !partOfBug(bug, mine, summary.checks)) continue;
    result.links = [...(result.links ?? []), bugLink(bug.url)];
    result.statusDetails = { ...result.statusDetails, known: true };
    writeFileSync(path, JSON.stringify(result));
  }
}

interface AllureResult {
  name?: string;
  fullName?: string;
  links?: { type: string; name: string; url: string }[];
  statusDetails?: Record<string, unknown>;
  labels: ResultLabel[];
}

/** The check an allure-vitest result belongs to: its file's name, from the result's full name (`<path>/<check>.check.ts#...`). */
const checkOf = (result: AllureResult): string | undefined => /([^/#]+)\.check\.ts#/.exec(result.fullName ?? '')?.[1];

interface ResultLabel {
  name: string;
  value: string;
}

/**
 * allure-vitest names suites after the describe blocks; the report groups every result as
 * scenario > check (or "provision") > describe path, so checks sit beside the steps of their run.
 */
export function relabelCheckResults(resultsDir: string, scenario: string): void {
  for (const file of readdirSync(resultsDir).filter((f) => f.endsWith('-result.json'))) {
    const path = join(resultsDir, file);
    const result = JSON.parse(readFileSync(path, 'utf8')) as AllureResult;
    if (!result.labels.some((l) => l.name === 'framework' && l.value === 'vitest')) continue;
    const describePath = result.labels.filter((l) => ['parentSuite', 'suite', 'subSuite'].includes(l.name)).map((l) => l.value);
    const check = checkOf(result) ?? 'checks';
    result.labels = [
      ...result.labels.filter((l) => !['parentSuite', 'suite', 'subSuite'].includes(l.name)),
      { name: 'parentSuite', value: scenario },
      { name: 'suite', value: check },
      ...(describePath.length ? [{ name: 'subSuite', value: describePath.join(' > ') }] : []),
    ];
    writeFileSync(path, JSON.stringify(result));
  }
}

/** Allure's page loads an analytics script from the internet; the report must load nothing from outside. */
export function stripExternalScripts(html: string): string {
  return html
    .replace(/<script[^>]*\ssrc=["']?https?:\/\/[^>]*>\s*<\/script>\s*/gi, '')
    .replace(/<script>(?:(?!<\/script>)[\s\S])*?\bgtag\([\s\S]*?<\/script>\s*/gi, '');
}

/** True when the page would fetch a script, style, image or frame from the network. */
export function loadsExternal(html: string): boolean {
  return /<(script|link|img|iframe)\b[^>]*\s(src|href)=["']?(https?:)?\/\//i.test(html);
}

/** Generates `report.html`: Allure's single-file report, with nothing loaded from outside. */
export async function generateHtmlReport(resultsDir: string, outFile: string, title: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'lab-allure-'));
  try {
    const output = join(work, 'out');
    const config = join(work, 'allurerc.mjs');
    writeFileSync(
      config,
      `export default ${JSON.stringify({
        name: title,
        output,
        plugins: { awesome: { options: { singleFile: true, reportName: title, groupBy: ['parentSuite', 'suite', 'subSuite'] } } },
      })};\n`,
    );
    await run([join(projectRoot, 'node_modules', '.bin', 'allure'), 'generate', resultsDir, '--config', config], { cwd: work });
    const html = stripExternalScripts(readFileSync(join(output, 'index.html'), 'utf8'));
    if (loadsExternal(html)) throw new Error('the Allure report still loads something from outside after stripping');
    writeFileSync(outFile, html);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
