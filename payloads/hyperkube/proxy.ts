import { execFile } from 'node:child_process';
import { fatal, glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, Changes, parseDuration, type Json } from './client.js';
import {
  cleanupRules,
  jumpRules,
  proxyRules,
  savedChains,
  servicePorts,
  type RuleOptions,
  type ServicePort,
  type Table,
} from './proxy-rules.js';

/**
 * proxy: kube-proxy 1.2/1.3's iptables Proxier. It lists services and endpoints every 2 s and,
 * when the rules they make change (or every --iptables-sync-period), rewrites its nat and filter
 * chains with one `iptables-restore --noflush`. It leaves the rules in place when it stops, as
 * kube-proxy does: traffic keeps flowing while it restarts. --cleanup-iptables removes them.
 */

const WHERE = 'proxier.go';
// A safety net only: every write to services or endpoints wakes the proxy at once.
const RESYNC_MS = 30_000;

/** Runs a command with `input` on stdin: its stdout, or an error carrying its stderr. */
export type Runner = (command: string, args: readonly string[], input?: string) => Promise<string>;

export const runCommand: Runner = (command, args, input = '') =>
  new Promise((resolve, reject) => {
    const child = execFile(command, [...args], (error, stdout, stderr) =>
      error ? reject(new Error(`${[command, ...args].join(' ')}: ${stderr.trim() || error.message}`)) : resolve(stdout),
    );
    // A command that exits before reading its input is reported by the callback, not as an EPIPE crash.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });

const iptables = (run: Runner, table: Table, ...args: string[]): Promise<string> => run('iptables', ['-w', '-t', table, ...args]);
const succeeds = (promise: Promise<unknown>): Promise<boolean> =>
  promise.then(
    () => true,
    () => false,
  );
// Debian 12's iptables-restore (nft) takes -w though its --help does not list it: legacy iptables
// waits for the xtables lock, nft ignores it (its transactions are atomic).
const restore = (run: Runner, text: string): Promise<string> => run('iptables-restore', ['-w', '--noflush'], text);
const saved = async (run: Runner, table: Table): Promise<string[]> => savedChains(await run('iptables-save', ['-t', table]), table);

/** kube-proxy's EnsureChain and EnsureRule(Prepend) for each jump rule: created when missing, never twice. */
export async function ensureJumpRules(run: Runner): Promise<void> {
  for (const { table, chain, target, args } of jumpRules()) {
    await iptables(run, table, '-N', target).catch((error: Error) => {
      if (!/already exists/i.test(error.message)) throw error;
    });
    if (!(await succeeds(iptables(run, table, '-C', chain, ...args)))) await iptables(run, table, '-I', chain, ...args);
  }
}

/** --cleanup-iptables: the jump rules, then every kube-proxy chain. Returns the errors met (none: all gone). */
export async function cleanupIptables(run: Runner): Promise<string[]> {
  const errors: string[] = [];
  const attempt = (promise: Promise<unknown>) => promise.catch((error: Error) => void errors.push(error.message));
  for (const { table, chain, args } of jumpRules()) {
    // -C fails when the rule or either chain is missing: nothing to delete then.
    if (await succeeds(iptables(run, table, '-C', chain, ...args))) await attempt(iptables(run, table, '-D', chain, ...args));
  }
  try {
    const text = cleanupRules({ nat: await saved(run, 'nat'), filter: await saved(run, 'filter') });
    if (text) await attempt(restore(run, text));
  } catch (error) {
    errors.push((error as Error).message);
  }
  return errors;
}

export interface ProxierOptions extends Pick<RuleOptions, 'masqueradeAll' | 'clusterCidr'> {
  /** --iptables-sync-period: unchanged rules are still rewritten this often, repairing what others changed. */
  syncPeriodMs: number;
}

/** The sync half of the Proxier: from listed objects to the node's iptables. */
export class IptablesProxier {
  private applied: string | undefined;
  private appliedAt = 0;
  private known = new Map<string, ServicePort>();

  constructor(
    private readonly run: Runner,
    private readonly options: ProxierOptions,
  ) {}

  /** Logs what changed since the last call, then applies the rules if they changed or are due; true when it applied them. */
  async sync(services: readonly Json[], endpoints: readonly Json[]): Promise<boolean> {
    this.logChanges(servicePorts(services, endpoints));
    const ruleOptions: RuleOptions = { masqueradeAll: this.options.masqueradeAll, clusterCidr: this.options.clusterCidr };
    const wanted = proxyRules(services, endpoints, ruleOptions);
    if (wanted === this.applied && Date.now() - this.appliedAt < this.options.syncPeriodMs) return false;
    await ensureJumpRules(this.run);
    // The chains now present decide which stale KUBE-SVC-/KUBE-SEP- chains go.
    const existingChains = await saved(this.run, 'nat');
    await restore(this.run, proxyRules(services, endpoints, { ...ruleOptions, existingChains }));
    this.applied = wanted;
    this.appliedAt = Date.now();
    return true;
  }

  /** kube-proxy's OnServiceUpdate and OnEndpointsUpdate lines. */
  private logChanges(ports: ServicePort[]): void {
    const current = new Map(ports.map((port) => [port.name, port]));
    for (const [name, port] of current) {
      const before = this.known.get(name);
      if (!before || before.clusterIp !== port.clusterIp || before.port !== port.port || before.protocol !== port.protocol)
        glog('I', WHERE, `Adding new service "${name}" at ${port.clusterIp}:${port.port}/${port.protocol.toUpperCase()}`);
      if (port.endpoints.join(' ') !== (before?.endpoints.join(' ') ?? ''))
        glog('I', WHERE, `Setting endpoints for "${name}" to [${port.endpoints.join(' ')}]`);
    }
    for (const name of this.known.keys()) if (!current.has(name)) glog('I', WHERE, `Removing service "${name}"`);
    this.known = current;
  }
}

/** /hyperkube proxy [flags]. */
export async function proxy(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube proxy', argv, {
    master: '',
    kubeconfig: '',
    'proxy-mode': '',
    'cluster-cidr': '',
    'hostname-override': '',
    'bind-address': '0.0.0.0',
    'masquerade-all': false,
    'iptables-sync-period': '30s',
    'cleanup-iptables': false,
    v: '0',
    logtostderr: true,
  });
  // As 1.3: cleanup needs no master; any error makes the exit status 1.
  if (flags['cleanup-iptables']) {
    const errors = await cleanupIptables(runCommand);
    for (const error of errors) glog('E', WHERE, error);
    if (errors.length) process.stderr.write('Encountered an error while tearing down rules.\n');
    process.exit(errors.length ? 1 : 0);
  }
  if (!flags.master)
    fatal(
      'server.go',
      flags.kubeconfig ? '--kubeconfig without --master is not emulated' : 'Neither --kubeconfig nor --master was specified',
    );
  let syncPeriodMs: number;
  try {
    syncPeriodMs = parseDuration(flags['iptables-sync-period']);
  } catch (error) {
    fatal('server.go', `invalid --iptables-sync-period: ${(error as Error).message}`);
  }
  if (!['', 'iptables'].includes(flags['proxy-mode']))
    glog('W', 'server.go', `proxy-mode "${flags['proxy-mode']}" is not emulated; using the iptables proxier`);
  glog('I', 'server.go', 'Using iptables Proxier.');

  const api = new ApiClient(flags.master);
  const proxier = new IptablesProxier(runCommand, {
    masqueradeAll: flags['masquerade-all'],
    clusterCidr: flags['cluster-cidr'],
    syncPeriodMs,
  });
  const changes = new Changes(api, ['services', 'endpoints']);
  for (;;) {
    // A sync when services or endpoints change, and every 30 s at the latest (the rules may have gone).
    await changes.wait(RESYNC_MS);
    let listed: [Json, Json] | undefined;
    try {
      listed = await Promise.all([api.get('/api/v1/services'), api.get('/api/v1/endpoints')]);
    } catch (error) {
      glog('E', 'reflector.go', `Failed to list services and endpoints: ${(error as Error).message}`);
    }
    if (listed) {
      const [services, endpoints] = listed;
      await proxier
        .sync((services.items ?? []) as Json[], (endpoints.items ?? []) as Json[])
        .catch((error: Error) => glog('E', WHERE, `Failed to sync iptables rules: ${error.message}`));
    }
  }
}
