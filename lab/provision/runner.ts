import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Machine } from '../remote/machine.js';
import { shellQuote } from '../remote/ssh.js';
import type { StepResult } from '../report/summary.js';
import type { LoadedScenario } from '../scenario/loader.js';
import { envStrings, type NodeStep, type Step } from '../scenario/schema.js';
import { RunFailed, tail } from '../util/errors.js';
import { settleAll } from '../util/limit.js';
import type { Logger } from '../util/log.js';
import { provisionersDir } from '../util/paths.js';
import { resolveScript, scriptFolders } from './scripts.js';

/** A node as the provisioner runner sees it. */
export interface ProvisionNode {
  name: string;
  role: string;
  arch: string;
  /** Address on the cluster link. */
  address: string;
  machine: Machine;
}

export const GUEST_PROVISION_DIR = '/opt/lab/provision';

export interface ProvisionOptions {
  nodes: ProvisionNode[];
  env: Record<string, string>;
  /** Where the steps' scripts and uploads are found, and the nodes' own variables. */
  scenario: LoadedScenario;
  runId: string;
  logsDir: string;
  runDir: string;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * Runs the scenario's steps, one at a time as the run asks; a step runs on its nodes in parallel.
 * A script step copies its whole folder (so it can source siblings like common.sh) and runs with
 * the scenario's environment, its node's and its own over it, reading its `stdin` (or nothing). A failing step throws RunFailed naming the step, node, exit code
 * and the tail of its output, after its results are returned through `results`.
 */
export class Provisioner {
  /** Script folders already copied to a node: once per run is enough. */
  private readonly copied = new Set<string>();

  constructor(private readonly options: ProvisionOptions) {}

  /** Runs one step on its nodes; every node's result is appended to `results` as the step ends. */
  async run(step: NodeStep, results: StepResult[]): Promise<void> {
    this.options.signal?.throwIfAborted();
    const targets = this.targets(step);
    // A bare script path found in the user's own folders (not the lab's provisioners/) is named,
    // so nobody takes the lab's docker-multinode/master.sh for theirs or theirs for the lab's.
    const bare = 'script' in step && !/^\.{0,2}\//.test(step.script) ? step.script : undefined;
    const local = bare && resolveScript(bare, this.options.scenario.dir, scriptFolders(this.options.scenario.spec.scripts));
    const from = local && relative(provisionersDir, local).startsWith('..') ? ` (${local})` : '';
    await this.options.log.step(`provision ${step.name} on ${targets.map((t) => t.name).join(', ')}${from}`, async () => {
      const outcome = await Promise.all(targets.map((node) => runOnNode(step, node, this.options, this.copied)));
      results.push(...outcome);
      const failed = outcome.find((r) => r.status === 'failed');
      if (failed) throw new RunFailed(`provision step "${failed.step}" failed on ${failed.node}: ${failed.error ?? ''}`);
    });
  }

  /**
   * After a restore: the `ready` scripts of the restored steps, side by side on each step's nodes;
   * each must exit 0 once what its step started works again, within the step's timeout.
   * LAB_RESTORED_AT tells them when the cluster came back (epoch seconds, on the guests' clocks
   * as the restore moved them on): what happened since then is news.
   */
  async ready(steps: Step[], restoredAt: number, results: StepResult[]): Promise<void> {
    const scripts = steps.filter((step): step is Extract<Step, { script: string }> => 'script' in step && Boolean(step.ready));
    await settleAll(
      scripts.map((step) =>
        this.run(
          {
            ...step,
            name: `${step.name}-ready`,
            script: step.ready as string,
            args: [],
            stdin: undefined,
            env: { ...step.env, LAB_RESTORED_AT: String(restoredAt) },
          },
          results,
        ),
      ),
    );
  }

  /** The nodes a step names (or all of them). */
  targets(step: { nodes: 'all' | string[] }): ProvisionNode[] {
    return step.nodes === 'all' ? this.options.nodes : this.options.nodes.filter((n) => (step.nodes as string[]).includes(n.name));
  }
}

async function runOnNode(step: NodeStep, node: ProvisionNode, options: ProvisionOptions, copied: Set<string>): Promise<StepResult> {
  const nodeLogDir = join(options.logsDir, node.name);
  mkdirSync(nodeLogDir, { recursive: true });
  const logFile = join(nodeLogDir, `provision-${step.name}.log`);
  const logRel = relative(options.runDir, logFile);
  const out = createWriteStream(logFile);
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  try {
    if ('upload' in step) {
      await node.machine.writeFile(step.upload.to, readFileSync(resolve(options.scenario.dir, step.upload.from)), step.upload.mode);
      out.write(`uploaded ${step.upload.from} to ${step.upload.to} (mode ${step.upload.mode})\n`);
      return { step: step.name, node: node.name, status: 'passed', seconds: seconds(), exitCode: 0, log: logRel };
    }
    const local = resolveScript(step.script, options.scenario.dir, scriptFolders(options.scenario.spec.scripts));
    const folder = dirname(local);
    const guestFolder = `${GUEST_PROVISION_DIR}/${relative(dirname(provisionersDir), folder).replace(/\.\.\//g, '')}`;
    const copyKey = `${node.name}:${folder}`;
    if (!copied.has(copyKey) && existsSync(folder)) {
      await node.machine.copyDirTo(folder, guestFolder);
      copied.add(copyKey);
    }
    const env = {
      ...options.env,
      ...envStrings(options.scenario.spec.nodes.find((n) => n.name === node.name)?.env),
      ...envStrings(step.env),
      LAB_RUN_ID: options.runId,
      LAB_NODE: node.name,
      LAB_ROLE: node.role,
      LAB_ARCH: node.arch,
      LAB_ADDRESS: node.address,
      LAB_NODES: options.nodes.map((n) => n.name).join(' '),
    };
    const exports = Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('; ');
    const argv = [basename(local), ...step.args].map(shellQuote).join(' ');
    const input = 'stdin' in step && step.stdin !== undefined ? `printf %s ${shellQuote(step.stdin)} | ` : '';
    const command = `${exports}; cd ${shellQuote(guestFolder)} && ${input}bash ${argv} ${input ? '' : '</dev/null '}2>&1`;
    out.write(`# ${step.name} on ${node.name}: bash ${[local, ...step.args].join(' ')} (${step.script})\n`);
    let output = '';
    let pending = '';
    const result = await node.machine.exec(command, {
      timeout: step.timeout,
      signal: options.signal,
      onStdout: (chunk) => {
        output += chunk;
        out.write(chunk);
        // The guide's own progress lines (+++ / !!!) show on the terminal as the step goes.
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (/^(\+\+\+|!!!) /.test(line)) options.log.info(`    ${node.name}: ${line}`);
      },
    });
    const status = result.code === 0 ? 'passed' : 'failed';
    const why = result.timedOut ? `timed out after ${step.timeout} s` : `exit code ${result.code}`;
    out.write(`# ${why}, ${seconds()} s\n`);
    return {
      step: step.name,
      node: node.name,
      status,
      seconds: seconds(),
      exitCode: result.code,
      log: logRel,
      ...(status === 'failed' ? { error: `${why}; last output:\n${tail(output, 15)}` } : {}),
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    out.write(`# lab error: ${message}\n`);
    return { step: step.name, node: node.name, status: 'failed', seconds: seconds(), log: logRel, error: message };
  } finally {
    await new Promise((r) => out.end(r));
  }
}
