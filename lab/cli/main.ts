import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cac } from 'cac';
import type { Overrides } from '../scenario/loader.js';
import { Logger } from '../util/log.js';
import { describeError, InputError } from '../util/errors.js';

/**
 * The `lab` command. Each command is a few lines that call into the engine; heavy modules load
 * lazily. One handler at the end turns errors into exit codes: 2 for bad input (nothing started),
 * 1 for a failed run or a lab error, 130 when interrupted.
 */
const log = new Logger();
const cli = cac('lab');
cli.option('-v, --verbose', 'Show details and stack traces');

/** One run-level controller: the first Ctrl-C cancels the run (which then cleans up), the third exits at once. */
function interruptible(): AbortSignal {
  const controller = new AbortController();
  let presses = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    presses++;
    if (presses === 1) {
      log.info(`\n${signal}: stopping the run and cleaning up (Ctrl-C twice more to quit at once)`);
      controller.abort(new Error(`interrupted by ${signal}`));
    } else if (presses >= 3) {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

interface ScenarioFlags {
  arch?: string;
  driver?: string;
  set?: string | string[];
}

/** `--set KEY=VALUE` (repeatable) as a map; a malformed one is bad input. */
function parseSets(set: string | string[] | undefined): Record<string, string> {
  const sets: Record<string, string> = {};
  for (const item of [set ?? []].flat()) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(String(item));
    if (!match) throw new InputError(`--set takes KEY=VALUE with KEY a shell variable name, not "${item}"`);
    sets[match[1] as string] = match[2] as string;
  }
  return sets;
}

/** Every value of `--flag` as typed (`--flag v` or `--flag=v`), before cac reads numbers into them. */
function typedValues(flag: string): string[] {
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  const values: string[] = [];
  (end === -1 ? args : args.slice(0, end)).forEach((arg, index, all) => {
    if (arg === flag && index + 1 < all.length) values.push(all[index + 1] as string);
    else if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
  });
  return values;
}

/** Command-line overrides, checked before anything else so a typo never reaches the scenario's errors. */
async function overrides(flags: ScenarioFlags): Promise<Overrides> {
  const { Arch, DriverName } = await import('../scenario/schema.js');
  if (flags.arch !== undefined && !Arch.safeParse(flags.arch).success)
    throw new InputError(`--arch must be one of ${Arch.options.join(', ')}, not "${flags.arch}"`);
  if (flags.driver !== undefined && !DriverName.safeParse(flags.driver).success)
    throw new InputError(`--driver must be one of ${DriverName.options.join(', ')}, not "${flags.driver}"`);
  return { arch: flags.arch, driver: flags.driver, set: parseSets(flags.set), hostEnv: process.env };
}

cli
  .command('run <scenario>', 'Boot, provision, check, report and destroy a scenario')
  .option('--arch <arch>', 'Run every node as this architecture (amd64, arm64)')
  .option('--driver <driver>', 'Make the VMs with this driver (qemu, libvirt, vagrant)')
  .option(
    '--set <KEY=VALUE>',
    "Set a variable of the scenario's env (repeatable); the caller's environment also overrides the names it declares",
  )
  .option('--keep <when>', 'Keep the VMs after the run: never, failed or always', { default: 'never' })
  .option('--isolate', 'Run the whole lab in a fresh network namespace (the vagrant driver always does)')
  .option('--fresh', 'Restore no snapshot layer: do every step, and save every layer anew')
  .option('--snapshots <on|off>', 'on (default): restore the deepest cached layer and save the rest; off: neither read nor write layers', {
    default: 'on',
  })
  .option(
    '--expect <bug|pass>',
    'bug (default): a scenario with a `bug:` exits 0 only when its signature fails and nothing else does; pass: run it as a plain scenario',
    { default: 'bug' },
  )
  .example('lab run scenarios/smoke')
  .example('lab run --arch arm64 scenarios/smoke')
  .example('lab run --keep=failed scenarios/two-node')
  .example('lab run --driver libvirt scenarios/two-node')
  .example('K8S_VERSION=v1.3.0 lab run --set FLANNEL_BACKEND=vxlan scenarios/two-node')
  .example('lab run --set FLOCKER_VERSION=1.14.0 scenarios/flocker-2841')
  .action(
    async (
      scenario: string,
      flags: ScenarioFlags & { keep: string; isolate?: boolean; fresh?: boolean; snapshots: string; expect: string },
    ) => {
      const { runScenario } = await import('../run/orchestrator.js');
      const { loadScenario } = await import('../scenario/loader.js');
      const isolation = await import('../net/isolate.js');
      if (!['never', 'failed', 'always'].includes(flags.keep))
        throw new InputError(`--keep must be never, failed or always, not "${flags.keep}"`);
      const keep = flags.keep as 'never' | 'failed' | 'always';
      if (!['on', 'off'].includes(String(flags.snapshots))) throw new InputError(`--snapshots must be on or off, not "${flags.snapshots}"`);
      if (flags.fresh && flags.snapshots === 'off')
        throw new InputError('--fresh saves every layer anew; it cannot be combined with --snapshots=off');
      const snapshots = flags.snapshots === 'off' ? 'off' : flags.fresh ? 'fresh' : 'on';
      if (flags.expect !== 'bug' && flags.expect !== 'pass') throw new InputError(`--expect must be bug or pass, not "${flags.expect}"`);
      const scenarioOverrides = await overrides(flags);
      // Validated here, before any namespace: bad input exits 2 with nothing started.
      const { spec } = loadScenario(scenario, scenarioOverrides);
      if ((flags.isolate || spec.driver === 'vagrant') && !isolation.isIsolated()) {
        if (keep !== 'never')
          throw new InputError(
            `--keep=${keep} cannot be used with ${flags.isolate ? '--isolate' : 'the vagrant driver (which runs isolated)'}: the namespace, and every way into the VMs, ends with the run`,
          );
        if (!flags.isolate) log.info('the vagrant driver runs the lab in a fresh network namespace (--isolate), for its libvirt network');
        process.exitCode = await isolation.runIsolated(process.argv.slice(1));
        return;
      }
      if (isolation.isIsolated()) log.info(await isolation.enterIsolation());
      const outcome = await runScenario({
        scenario,
        overrides: scenarioOverrides,
        keep,
        snapshots,
        expect: flags.expect,
        log,
        signal: interruptible(),
      });
      process.exitCode = outcome.exitCode;
    },
  );

cli
  .command(
    'bisect <scenario> [...commits]',
    "Find where a scenario's outcome changes: over a variable's values, or over a checkout's commits",
  )
  .option('--axis <NAME=v1,v2,...>', 'The ordered values of one variable of the scenario to search (FLOCKER_VERSION, K8S_VERSION, ...)')
  .option('--git <checkout>', 'A git checkout the scenario runs scripts from: give the good and the bad commit after the scenario')
  .option('--repeat <n>', 'Run each point this many times; runs that disagree make the point flaky (stepped around)', { default: '1' })
  .option('--point', 'Judge the scenario as it is now and exit as git bisect run expects: 0 good, 1 bad, 125 skip')
  .option('--set <KEY=VALUE>', "Set a variable of the scenario's env for every point (repeatable)")
  .option('--arch <arch>', 'Run every node as this architecture (amd64, arm64)')
  .option('--driver <driver>', 'Make the VMs with this driver (qemu, libvirt)')
  .option('--expect <bug|pass>', 'bug (default): a bug scenario is bad where it reproduces; pass: judge it as a plain scenario', {
    default: 'bug',
  })
  .example('lab bisect scenarios/flocker-2841 --axis FLOCKER_VERSION=1.13.0,1.14.0')
  .example('KUBE_DEPLOY_DIR=~/src/kube-deploy lab bisect scenarios/byo-docker-multinode --git ~/src/kube-deploy v1.0 main')
  .example('git bisect run lab bisect ~/lab/scenarios/byo-docker-multinode --point')
  .action(
    async (
      scenario: string,
      commits: string[],
      flags: ScenarioFlags & { axis?: string; git?: string; repeat: string; point?: boolean; expect: string; verbose?: boolean },
    ) => {
      const bisect = await import('../bisect/bisect.js');
      const modes = [flags.axis !== undefined, flags.git !== undefined, Boolean(flags.point)].filter(Boolean).length;
      if (modes !== 1) throw new InputError('lab bisect takes one of --axis NAME=v1,v2,..., --git <checkout> <good> <bad>, or --point');
      const repeat = Number(typedValues('--repeat').at(-1) ?? flags.repeat);
      if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)
        throw new InputError(`--repeat must be a whole number from 1 to 20, not "${flags.repeat}"`);
      if (flags.expect !== 'bug' && flags.expect !== 'pass') throw new InputError(`--expect must be bug or pass, not "${flags.expect}"`);
      if (flags.git !== undefined && commits.length !== 2)
        throw new InputError(
          `--git ${flags.git} needs the good and the bad commit after the scenario (got ${commits.length ? commits.join(' ') : 'none'})`,
        );
      if (flags.git === undefined && commits.length) throw new InputError(`unexpected arguments after the scenario: ${commits.join(' ')}`);
      const axis = flags.axis === undefined ? undefined : (await import('../scenario/axis.js')).parseAxis(String(flags.axis));
      const scenarioOverrides = await overrides(flags);
      const { loadScenario } = await import('../scenario/loader.js');
      if (loadScenario(scenario, scenarioOverrides).spec.driver === 'vagrant')
        throw new InputError(
          'lab bisect runs its points in this network namespace; the vagrant driver runs only isolated (use qemu or libvirt)',
        );
      const signal = interruptible();
      const options = {
        scenario,
        overrides: scenarioOverrides,
        repeat,
        expect: flags.expect,
        log,
        signal,
        verbose: Boolean(flags.verbose),
      } as const;
      try {
        process.exitCode = axis
          ? await bisect.bisectAxis(options, axis)
          : flags.git !== undefined
            ? await bisect.bisectGit(options, flags.git, commits[0] as string, commits[1] as string)
            : await bisect.bisectPoint(options);
      } catch (error) {
        if (!signal.aborted || error instanceof InputError) throw error;
        process.exitCode = 130;
      }
    },
  );

cli
  .command(
    'matrix <scenario> [...folders]',
    'Run the scenario once per cell of its matrix (or list the cells); `lab matrix merge <folder>...` joins shards',
  )
  .option('--axis <NAME=v1,v2,...>', "Change or add an axis of the scenario's matrix (repeatable): an env variable, arch or driver")
  .option('--list', 'Print the cells, one per line, and run nothing')
  .option('--json', "Print the cells as JSON for a CI matrix (GitHub Actions' strategy.matrix: fromJSON), and run nothing")
  .option('--shard <i/n>', 'Only the i-th of n shares of the cells (deterministic: every n-th cell)')
  .option('--parallel <n>', "Cells side by side, at most n, as far as the host's memory and cores allow (default 1)", { default: '1' })
  .option('--set <KEY=VALUE>', "Set a variable of the scenario's env in every cell (a cell's own values win)")
  .option('--keep <when>', "Keep each cell's VMs after its run: never, failed or always", { default: 'never' })
  .option(
    '--expect <bug|pass>',
    "bug (default): a bug scenario's cell meets its expectation when the bug reproduces; pass: when it passes",
    {
      default: 'bug',
    },
  )
  .example('lab matrix scenarios/two-node-flocker --list')
  .example('lab matrix scenarios/smoke --axis arch=amd64,arm64')
  .example('lab matrix scenarios/two-node-flocker --shard 2/4')
  .example('lab matrix merge shard-1/matrix-two-node-flocker-* shard-2/matrix-two-node-flocker-*')
  .action(
    async (
      scenario: string,
      folders: string[],
      flags: ScenarioFlags & {
        axis?: string | string[];
        list?: boolean;
        json?: boolean;
        shard?: string;
        parallel: string;
        keep: string;
        expect: string;
        verbose?: boolean;
      },
    ) => {
      if (scenario === 'merge') {
        if (!folders.length) throw new InputError("lab matrix merge needs the shards' matrix folders (reports/matrix-...)");
        const missing = folders.filter((dir) => !existsSync(join(dir, 'summary.json')));
        if (missing.length) throw new InputError(`not a matrix folder (no summary.json): ${missing.join(', ')}`);
        const { mergeMatrices } = await import('../matrix/report.js');
        const { folderStamp, reportsDir } = await import('../util/paths.js');
        const into = join(reportsDir(), `matrix-merged-${folderStamp()}`);
        const { summary, problems } = mergeMatrices(folders, into);
        if (problems.length) throw new InputError('the folders are not shards of one matrix', problems);
        const met = summary.cells.filter((c) => c.met).length;
        log.info(`matrix ${summary.scenario}: ${met} of ${summary.cells.length} cell(s) met their expectation`);
        log.info(`report: ${join(into, 'index.html')}  junit: ${join(into, 'junit.xml')}  summary: ${join(into, 'summary.json')}`);
        process.exitCode = met === summary.cells.length ? 0 : 1;
        return;
      }
      if (folders.length) throw new InputError(`unexpected arguments after the scenario: ${folders.join(' ')}`);
      const { parseAxis } = await import('../scenario/axis.js');
      const { loadScenario } = await import('../scenario/loader.js');
      const matrix = await import('../matrix/expand.js');
      const { runMatrix, validateCells } = await import('../matrix/run.js');
      const axes = [flags.axis ?? []].flat().map((text) => parseAxis(String(text), 1));
      const shard = flags.shard === undefined ? undefined : matrix.parseShard(String(flags.shard));
      if (flags.shard !== undefined && !shard) throw new InputError(`--shard takes i/n with 1 <= i <= n, not "${flags.shard}"`);
      const parallel = Number(typedValues('--parallel').at(-1) ?? flags.parallel);
      if (!Number.isInteger(parallel) || parallel < 1 || parallel > 16)
        throw new InputError(`--parallel must be a whole number from 1 to 16, not "${flags.parallel}"`);
      if (!['never', 'failed', 'always'].includes(flags.keep))
        throw new InputError(`--keep must be never, failed or always, not "${flags.keep}"`);
      if (flags.expect !== 'bug' && flags.expect !== 'pass') throw new InputError(`--expect must be bug or pass, not "${flags.expect}"`);
      const base = await overrides(flags);
      const { spec } = loadScenario(scenario, base);
      const matrixSpec = matrix.matrixSpec(spec.matrix, axes);
      const all = matrix.expandMatrix(matrixSpec);
      if (!all.length) throw new InputError(`${scenario} has no matrix: give it \`matrix:\` axes, or --axis NAME=v1,v2`);
      const indexed = all.map((cell, index) => ({ cell, index }));
      const chosen = shard ? matrix.shardCells(indexed, shard) : indexed;
      const cells = chosen.map((c) => c.cell);
      validateCells(scenario, base, cells);
      if (flags.json) {
        // Each cell with the one-cell shard that runs it alone on a CI runner: --shard <its place>/<all cells>.
        const include = chosen.map(({ cell, index }) => ({ cell: matrix.cellLabel(cell), shard: `${index + 1}/${all.length}`, ...cell }));
        process.stdout.write(`${JSON.stringify({ include })}\n`);
        return;
      }
      if (flags.list) {
        for (const cell of cells) process.stdout.write(`${matrix.cellLabel(cell)}\n`);
        return;
      }
      if (spec.driver === 'vagrant' || cells.some((cell) => cell.driver === 'vagrant'))
        throw new InputError(
          'lab matrix runs its cells in this network namespace; the vagrant driver runs only isolated (use qemu or libvirt)',
        );
      const outcome = await runMatrix({
        scenario,
        overrides: base,
        spec: matrixSpec,
        cells: chosen,
        ...(flags.shard ? { shard: String(flags.shard) } : {}),
        keep: flags.keep as 'never' | 'failed' | 'always',
        parallel,
        expect: flags.expect,
        log,
        signal: interruptible(),
        verbose: Boolean(flags.verbose),
      });
      process.exitCode = outcome.exitCode;
    },
  );

cli.command('list', 'List the kept runs and how to reach their nodes').action(async () => {
  (await import('./kept.js')).listCommand(log);
});

cli
  .command('ssh <node> [...command]', 'Open a shell (or run a command) on a node of a kept run')
  .option('--run <id>', 'The kept run (needed when several are kept)')
  .example('lab ssh master -- ip -4 addr show eth1')
  .action(async (node: string, command: string[], flags: { run?: string; '--'?: string[] }) => {
    // `lab ssh node -- cmd --flag`: what follows `--` is the command, untouched by option parsing.
    process.exitCode = (await import('./kept.js')).sshCommand(node, [...command, ...(flags['--'] ?? [])], flags.run);
  });

cli
  .command('verify', 'Run the checks again against a kept run, without provisioning')
  .option('--run <id>', 'The kept run (needed when several are kept)')
  .option('--check <name>', 'Only this check (repeatable), e.g. --check dns')
  .option('--set <KEY=VALUE>', "Set a variable the checks read (repeatable), over the run's env")
  .option('--reset', 'First bring the kept cluster back to its last snapshot layer (undoing whatever was done to it since)')
  .option('--fail-fast', 'Each check stops at its first step that fails (the others go on)')
  .example('lab verify --check dns')
  .example('lab verify --reset --check flocker-attach')
  .example('lab verify --check flocker-attach --set FLOCKER_ATTACH_UNNAMED=true')
  .action(async (flags: { run?: string; check?: string | string[]; set?: string | string[]; reset?: boolean; failFast?: boolean }) => {
    const only = flags.check === undefined ? [] : [flags.check].flat().map(String);
    const options = { sets: parseSets(flags.set), reset: Boolean(flags.reset), failFast: Boolean(flags.failFast), signal: interruptible() };
    process.exitCode = await (await import('./kept.js')).verifyCommand(flags.run, only, log, options);
  });

cli
  .command('reset', 'Bring a kept run back to its last snapshot layer (undoing whatever was done to it since)')
  .option('--run <id>', 'The kept run (needed when several are kept)')
  .action(async (flags: { run?: string }) => {
    await (await import('./kept.js')).resetCommand(flags.run, log, interruptible());
  });

cli
  .command('down [run]', 'Destroy a kept run (or every kept run with --all)')
  .option('--all', 'Destroy every kept run')
  .action(async (run: string | undefined, flags: { all?: boolean }) => {
    await (await import('./kept.js')).downCommand(run, Boolean(flags.all), log);
  });

cli
  .command('validate <scenario>', 'Check a scenario file and report every problem with its line, and whether this host can hold it')
  .option('--arch <arch>', 'Validate with every node as this architecture')
  .option('--driver <driver>', 'Validate as made by this driver')
  .option('--set <KEY=VALUE>', "Validate with this variable set in the scenario's env")
  .action(async (scenario: string, flags: ScenarioFlags) => {
    const { loadScenario } = await import('../scenario/loader.js');
    const loaded = loadScenario(scenario, await overrides(flags));
    (await import('../run/capacity.js')).ensureCapacity(loaded.spec, log);
    log.info(
      `${loaded.files.join(' <- ')}: valid (${loaded.spec.nodes.length} node(s), ${loaded.spec.provision.length} step(s), ${loaded.spec.checks.length} check(s))`,
    );
  });

cli
  .command('images [action]', 'List, build, box or prune cached images (action: list | build | box | prune)')
  .option('--arch <arch>', 'Architecture to build (or to make a Vagrant box of)', { default: 'amd64' })
  .option('--variant <variant>', "Image variant: base, or docker (Debian's Docker and the multinode scripts' tools)", { default: 'base' })
  .option('--rebuild', 'Build even if the image is cached')
  .example('lab images box --arch amd64')
  .action(async (action: string | undefined, options: { arch: string; variant: string; rebuild?: boolean }) => {
    const images = await import('./images.js');
    await images.imagesCommand(action ?? 'list', options, log, interruptible());
  });

cli
  .command('snapshot [action] [...keys]', 'List, remove or prune cached snapshot layers (action: list | rm <key>... | prune)')
  .option('--older-than <age>', 'prune: layers not made or restored for this long (30m, 12h, 7d)')
  .option('--max-size <size>', 'prune: the least recently used layers until the cache holds at most this much (500M, 20G)')
  .example('lab snapshot list')
  .example('lab snapshot prune --older-than 7d --max-size 40G')
  .action(async (action: string | undefined, keys: string[], flags: { olderThan?: unknown; maxSize?: unknown }) => {
    const text = (value: unknown) => (value === undefined ? undefined : String(value));
    await (
      await import('./snapshots.js')
    ).snapshotCommand(action ?? 'list', keys.map(String), { olderThan: text(flags.olderThan), maxSize: text(flags.maxSize) }, log);
  });

cli
  .command('certs <dir>', 'Make the Flocker cluster certificates in a new folder, as flocker-ca did')
  .option('--control-host <host>', "The Flocker control service's hostname or IP address (named in its certificate)")
  .option('--node <name>', 'A node to make a certificate for, by hostname (repeatable); each gets a new node UUID')
  .option('--user <name>', 'The API user (the kubelet) to make a certificate for', { default: 'kubernetes' })
  .option('--cluster-name <name>', "The cluster CA's common name", { default: 'lab' })
  .option('--key-bits <bits>', 'RSA key size (flocker-ca: 4096; 2048 makes keys several times faster)', { default: '4096' })
  .example('lab certs ./flocker-certs --control-host 10.77.0.11 --node master --node worker')
  .action(async (dir: string, flags: { controlHost?: unknown; node?: unknown; user: unknown; clusterName: unknown; keyBits: unknown }) => {
    // cac gives an array for a repeated flag, and a number for a value that looks like one ("007" -> 7): take that one as typed.
    const once = (name: string, value: unknown) => {
      if (Array.isArray(value)) throw new InputError(`${name} is given once, not ${value.length} times`);
      return typeof value === 'number' ? (typedValues(name).at(-1) ?? String(value)) : value === undefined ? undefined : String(value);
    };
    const controlHost = once('--control-host', flags.controlHost);
    if (controlHost === undefined)
      throw new InputError('--control-host is required: the hostname or IP address of the Flocker control service');
    const given = [flags.node ?? []].flat();
    const nodes = given.some((name) => typeof name === 'number') ? typedValues('--node') : given.map(String);
    if (nodes.length === 0) throw new InputError('--node is required: one for each node of the cluster (e.g. --node master --node worker)');
    const keyBits = once('--key-bits', flags.keyBits);
    if (!/^\d+$/.test(keyBits ?? '')) throw new InputError(`--key-bits takes a number of bits, not "${keyBits}"`);
    const { makeFlockerCerts, describeFlockerCerts } = await import('../certs/flocker-ca.js');
    const options = {
      dir: String(dir),
      controlHost,
      nodes,
      user: once('--user', flags.user),
      clusterName: once('--cluster-name', flags.clusterName),
      keyBits: Number(keyBits),
    };
    // Bad input fails at once with its one ERROR line; only key making, which takes seconds, says so.
    const slow = setTimeout(() => log.info(` • making ${nodes.length + 3} RSA ${keyBits}-bit keys, 2 at a time ...`), 300);
    const certs = await makeFlockerCerts({ ...options, signal: interruptible() }).finally(() => clearTimeout(slow));
    process.stdout.write(describeFlockerCerts(certs));
  });

cli.command('schema', 'Print the JSON Schema of scenario.yaml').action(async () => {
  const { scenarioJsonSchema } = await import('../scenario/schema.js');
  process.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
});

cli.command('gc', 'Stop and remove what killed lab processes left behind').action(async () => {
  const { reapOrphans } = await import('../run/registry.js');
  const { allDrivers } = await import('../machines/registry.js');
  const cleaned = await reapOrphans(await allDrivers(), log);
  log.info(cleaned.length ? `cleaned ${cleaned.length} leftover(s)` : 'nothing to clean');
});

cli.command('doctor', 'Show what this host offers the lab (drivers, acceleration)').action(async () => {
  const { allDrivers } = await import('../machines/registry.js');
  const { listImages } = await import('../images/cache.js');
  const { detectAccel } = await import('../machines/accel.js');
  for (const driver of await allDrivers()) {
    const info = await driver.info();
    log.info(`${info.name}: ${info.problems.length ? info.problems.join('; ') : 'ready'}`);
  }
  const { qemuBinary } = await import('../machines/guest.js');
  // One line per architecture (the probe boots a cached image's kernel).
  const byArch = new Map(listImages().map((image) => [image.recipe.arch, image]));
  for (const [arch, image] of byArch) {
    const accel = await detectAccel(arch, qemuBinary(arch), image.kernel);
    log.info(`${arch} guests: ${accel.kind} (${accel.why})`);
  }
});

cli.help();
cli.version('0.1.0');

async function main(): Promise<void> {
  const parsed = cli.parse(process.argv, { run: false });
  log.setVerbose(Boolean(parsed.options.verbose));
  if (!cli.matchedCommand) {
    if (parsed.options.help || parsed.options.version) return;
    throw new InputError(cli.args.length ? `unknown command: ${cli.args.join(' ')} (see lab --help)` : 'no command given (see lab --help)');
  }
  // A killed lab's run is cleaned up by the next command about runs (lab run does it itself).
  if (['list', 'ssh', 'verify', 'reset', 'down'].includes(cli.matchedCommand.name))
    await (await import('../run/registry.js')).reapAbandonedRuns(log);
  await cli.runMatchedCommand();
}

main().catch((error: unknown) => {
  // cac's own errors (a missing argument, an option without its value, an unknown option) are bad input too.
  if (error instanceof InputError || (error instanceof Error && error.name === 'CACError')) {
    log.info(`ERROR: ${error.message}`);
    process.exitCode = 2;
    return;
  }
  log.info(`ERROR: ${describeError(error)}`);
  if (process.argv.includes('-v') || process.argv.includes('--verbose')) log.info(error instanceof Error ? (error.stack ?? '') : '');
  process.exitCode = 1;
});
