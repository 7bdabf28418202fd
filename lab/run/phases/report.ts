import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateHtmlReport, markKnownBug, relabelCheckResults, writeStepResults } from '../../report/allure.js';
import { writeBundle } from '../../report/bundle.js';
import { junitXml } from '../../report/junit.js';
import { writeSummary } from '../../report/summary.js';
import type { RunContext } from '../context.js';

/** Writes summary.json, junit.xml, the Allure results and report.html, then the bundle of it all. */
export async function writeReports(ctx: RunContext): Promise<void> {
  const { summary, runDir } = ctx;
  writeSummary(join(runDir, 'summary.json'), summary);
  writeFileSync(join(runDir, 'junit.xml'), junitXml(summary));
  const resultsDir = join(runDir, 'allure-results');
  writeStepResults(resultsDir, summary, runDir);
  relabelCheckResults(resultsDir, summary.scenario.name);
  markKnownBug(resultsDir, summary);
  await generateHtmlReport(resultsDir, join(runDir, 'report.html'), `lab: ${summary.scenario.name} (${summary.runId})`);
  await writeBundle(runDir);
}
