import { existsSync, readFileSync } from 'node:fs';
import * as allure from 'allure-js-commons';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { Machine } from '../remote/machine.js';
import { SshSession } from '../remote/ssh.js';
import { tail } from '../util/errors.js';
import { CLUSTER_ENV, FAIL_FAST_ENV, type ClusterDescriptor, type NodeDescriptor } from './descriptor.js';

/**
 * The handle a check file gets on the live cluster. Checks never learn which driver made the
 * nodes: they see names, roles, arches and `Machine` verbs over SSH.
 *
 *     const lab = useCluster();
 *     test('...', async () => { await lab.node('master').succeed('true'); });
 */

export class ClusterNode extends Machine {
  constructor(
    readonly spec: NodeDescriptor,
    session: SshSession,
  ) {
    super(spec.name, session);
  }
  get role(): NodeDescriptor['role'] {
    return this.spec.role;
  }
  get arch(): NodeDescriptor['arch'] {
    return this.spec.arch;
  }
}

export interface Cluster {
  descriptor: ClusterDescriptor;
  /** Node specs, available synchronously so tests can be declared per node. */
  specs: NodeDescriptor[];
  /** A connected node (connects on first use). */
  node(name: string): Promise<ClusterNode>;
  nodes(): Promise<ClusterNode[]>;
}

export function readDescriptor(): ClusterDescriptor {
  const file = process.env[CLUSTER_ENV];
  if (!file || !existsSync(file))
    throw new Error(`${CLUSTER_ENV} does not name a cluster descriptor; checks run through \`lab run\` or \`lab verify\``);
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterDescriptor;
}

/**
 * Declares the cluster for this check file: connections are opened on demand and closed after
 * the file; a failing test gets the tail of every node's console log attached.
 */
export function useCluster(): Cluster {
  const descriptor = readDescriptor();
  const connections = new Map<string, Promise<ClusterNode>>();
  const node = (name: string): Promise<ClusterNode> => {
    const spec = descriptor.nodes.find((n) => n.name === name);
    if (!spec) throw new Error(`no node named ${name} in run ${descriptor.runId}`);
    let connection = connections.get(name);
    if (!connection) {
      connection = SshSession.connect(spec.ssh).then((session) => new ClusterNode(spec, session));
      connections.set(name, connection);
    }
    return connection;
  };
  // --fail-fast: a check stops at its first failed step (its later steps are skipped); other checks go on.
  let failed = false;
  beforeEach((context) => {
    if (failed && process.env[FAIL_FAST_ENV] === '1') context.skip();
  });
  afterEach(async (context) => {
    if (context.task.result?.state !== 'fail') return;
    failed = true;
    for (const spec of descriptor.nodes) {
      if (existsSync(spec.consoleLog)) {
        await allure.attachment(`${spec.name} console (tail)`, tail(readFileSync(spec.consoleLog, 'utf8'), 60), 'text/plain');
      }
    }
  });
  afterAll(async () => {
    for (const connection of connections.values()) (await connection.catch(() => undefined))?.close();
  });
  return {
    descriptor,
    specs: descriptor.nodes,
    node,
    nodes: () => Promise.all(descriptor.nodes.map((n) => node(n.name))),
  };
}

/** A named step: shows in Allure and in the failure message, so a failure says which step broke. */
export async function step<T>(name: string, body: () => Promise<T>): Promise<T> {
  try {
    return await allure.step(name, body);
  } catch (error) {
    if (error instanceof Error && !error.message.startsWith('step "')) error.message = `step "${name}" failed: ${error.message}`;
    throw error;
  }
}

/** Attaches text (a command's output, a config file) to the current test or step. */
export const attach = async (name: string, content: string): Promise<void> => {
  await allure.attachment(name, content, 'text/plain');
};
