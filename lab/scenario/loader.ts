import { existsSync, readFileSync, statSync } from 'node:fs';
import { FOLDER_VARIABLE } from '../provision/scripts.js';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { LineCounter, parseDocument, visit, type Document } from 'yaml';
import { InputError } from '../util/errors.js';
import { Scenario, type ScenarioSpec } from './schema.js';
import { dotPath, locate, type Path, type SourceDoc } from './locate.js';
import { semanticProblems } from './rules.js';

/**
 * Loads a scenario in three stages (changesets' config): parse every file of the `extends`
 * chain, merge and validate the shape with zod, then apply the semantic rules. All problems are
 * reported together, each as `file:line:col: field: message`, and nothing has started yet.
 */

export interface LoadedScenario {
  spec: ScenarioSpec;
  /** Folder of the scenario that was asked for. */
  dir: string;
  /** Files of the extends chain, the scenario asked for first. */
  files: string[];
  /** The env values the caller changed (its environment, `--set`): what a run's verdict is "with". */
  changedEnv: Record<string, string>;
}

export interface Problem {
  file: string;
  line?: number;
  column?: number;
  path: string;
  message: string;
}

export const formatProblem = (p: Problem): string =>
  `${p.file}${p.line ? `:${p.line}:${p.column ?? 1}` : ''}: ${p.path ? `${p.path}: ` : ''}${p.message}`;

export function scenarioFile(target: string): string {
  const path = resolve(target);
  if (existsSync(path) && statSync(path).isDirectory()) return join(path, 'scenario.yaml');
  return /\.ya?ml$/.test(path) ? path : join(path, 'scenario.yaml');
}

const display = (file: string) => relative(process.cwd(), file) || file;

/** What the command line may change in a scenario, as a user would expect (`lab run --arch arm64`). */
export interface Overrides {
  /** Every node runs this architecture. */
  arch?: string;
  /** The VMs are made by this driver (`lab run --driver libvirt`). */
  driver?: string;
  /**
   * The caller's environment: a variable the scenario's `env` names takes its value from here, as
   * exporting K8S_VERSION before running master.sh would (`K8S_VERSION=v1.3.0 lab run ...`).
   */
  hostEnv?: Record<string, string | undefined>;
  /** `--set KEY=VALUE`: sets (or adds) a variable of the scenario's `env`, over everything else. */
  set?: Record<string, string>;
}

export function loadScenario(target: string, overrides: Overrides = {}): LoadedScenario {
  const file = scenarioFile(target);
  const problems: Problem[] = [];
  const sources: SourceDoc[] = [];
  const raws: Record<string, unknown>[] = [];

  // Stage 1: read and parse the chain, child first.
  let current: string | undefined = file;
  const seen = new Set<string>();
  while (current) {
    if (seen.has(current)) {
      problems.push({
        file: display(current),
        path: 'extends',
        message: `extends cycle: ${[...seen].map(display).join(' -> ')} -> ${display(current)}`,
      });
      break;
    }
    seen.add(current);
    if (!existsSync(current)) {
      const from = sources.at(-1);
      problems.push({
        file: from ? from.file : display(current),
        ...(from ? locate([from], ['extends']) : {}),
        path: from ? 'extends' : '',
        message: `no scenario file at ${display(current)}`,
      });
      break;
    }
    let text: string;
    try {
      text = readFileSync(current, 'utf8');
    } catch (error) {
      problems.push({ file: display(current), path: '', message: `cannot be read: ${(error as Error).message}` });
      break;
    }
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const source: SourceDoc = { file: display(current), doc, lines };
    for (const error of doc.errors) {
      const { line, col } = lines.linePos(error.pos[0]);
      problems.push({ file: source.file, line, column: col, path: '', message: `YAML: ${error.message.split('\n')[0]}` });
    }
    if (doc.errors.length) break;
    const raw = toJS(doc, source, problems);
    if (problems.length) break;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push({ file: source.file, path: '', message: 'a scenario file must be a YAML mapping' });
      break;
    }
    sources.push(source);
    raws.push(anchorPaths(raw as Record<string, unknown>, dirname(current), dirname(file), overrides.hostEnv ?? {}));
    const parent = (raw as { extends?: unknown }).extends;
    current = typeof parent === 'string' ? scenarioFile(resolve(dirname(current), parent)) : undefined;
  }
  if (problems.length) throw invalid(file, problems);

  // Stage 2: merge (parents first) and check the shape.
  // A scenario without a name is named after its own folder, not after the one it extends.
  const own = raws[0] as Record<string, unknown>;
  own.name ??= basename(dirname(file));
  const merged = raws.reduceRight<Record<string, unknown>>((base, layer) => mergeLayer(base, layer), {});
  delete merged.extends;
  if (overrides.arch !== undefined) applyArch(merged, overrides.arch);
  if (overrides.driver !== undefined) merged.driver = overrides.driver;
  const changedEnv = applyEnv(merged, overrides);
  const parsed = Scenario.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
      for (const key of keys) {
        const path: Path = key === undefined ? (issue.path as Path) : [...(issue.path as Path), key];
        // A record's bad key: zod's own words ("Invalid key in record") hide the rule it broke.
        const inner = issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined;
        const message = key === undefined ? (inner ?? issue.message) : `unknown key "${key}"`;
        problems.push({ ...locate(sources, path), path: dotPath(path), message });
      }
    }
    throw invalid(file, problems);
  }

  // Stage 3: rules that need the whole scenario and the file system.
  const dir = dirname(file);
  for (const { path, message } of semanticProblems(parsed.data, dir)) {
    problems.push({ ...locate(sources, path), path: dotPath(path), message });
  }
  if (problems.length) throw invalid(file, problems);
  return { spec: parsed.data, dir, files: sources.map((s) => s.file), changedEnv };
}

/**
 * The document as plain values. The parser refuses to expand aliases past a limit (a "billion
 * laughs" file would take the host's memory): that is bad input, at the first alias.
 */
function toJS(doc: Document, source: SourceDoc, problems: Problem[]): unknown {
  try {
    return doc.toJS();
  } catch (error) {
    let at: number | undefined;
    visit(doc, { Alias: (_key, node) => ((at = node.range?.[0]), visit.BREAK) });
    const { line, col } = at === undefined ? { line: undefined, col: undefined } : source.lines.linePos(at);
    const reason = error instanceof Error ? error.message : String(error);
    problems.push({
      file: source.file,
      line,
      column: col,
      path: '',
      message: `YAML: ${reason} (its aliases expand to too much; write the values out)`,
    });
    return undefined;
  }
}

/**
 * Paths in a file of the chain mean what they say in that file: its `scripts` folders become
 * absolute (one that starts with `$NAME` takes the caller's variable: `$KUBE_DEPLOY_DIR`, the
 * user's checkout; unset, it stays as written for validation to name), and a parent's `./`
 * scripts and uploads are rewritten relative to the scenario asked for (whose folder the run
 * resolves them against). Shapes zod would refuse are left to it.
 */
function anchorPaths(
  raw: Record<string, unknown>,
  fileDir: string,
  askedDir: string,
  hostEnv: Record<string, string | undefined>,
): Record<string, unknown> {
  const folderOf = (folder: string) => {
    const variable = FOLDER_VARIABLE.exec(folder);
    if (!variable) return resolve(fileDir, folder);
    const value = hostEnv[variable[1] ?? variable[2] ?? ''];
    return value ? resolve(fileDir, value + folder.slice(variable[0].length)) : folder;
  };
  if (Array.isArray(raw.scripts)) raw.scripts = raw.scripts.map((folder) => (typeof folder === 'string' ? folderOf(folder) : folder));
  if (fileDir === askedDir || !Array.isArray(raw.provision)) return raw;
  const rebased = (path: string) => {
    const rel = relative(askedDir, resolve(fileDir, path));
    return rel.startsWith('../') ? rel : `./${rel}`;
  };
  const besideScenario = (value: unknown): value is string =>
    typeof value === 'string' && (value.startsWith('./') || value.startsWith('../'));
  raw.provision = raw.provision.map((step: unknown) => {
    if (!isPlain(step)) return step;
    const out = { ...step };
    for (const key of ['script', 'ready'] as const) if (besideScenario(out[key])) out[key] = rebased(out[key]);
    if (isPlain(out.upload) && typeof out.upload.from === 'string') out.upload = { ...out.upload, from: rebased(out.upload.from) };
    return out;
  });
  return raw;
}

/** Scenario env < the caller's environment (for the names the scenario declares) < `--set`. Returns the values that changed. */
function applyEnv(merged: Record<string, unknown>, overrides: Overrides): Record<string, string> {
  const written: Record<string, unknown> = isPlain(merged.env) ? merged.env : {};
  const env = { ...written };
  for (const key of Object.keys(env)) {
    const value = overrides.hostEnv?.[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, overrides.set);
  if (Object.keys(env).length) merged.env = env;
  return Object.fromEntries(
    Object.entries(env).filter(([key, value]) => typeof value === 'string' && String(written[key]) !== value),
  ) as Record<string, string>;
}

/** `--arch` replaces the scenario's arch and every node's. */
function applyArch(merged: Record<string, unknown>, arch: string): void {
  merged.arch = arch;
  if (Array.isArray(merged.nodes)) merged.nodes = merged.nodes.map((node: unknown) => (isPlain(node) ? { ...node, arch } : node));
}

function invalid(file: string, problems: Problem[]): InputError {
  const ordered = [...problems].sort(
    (a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
  return new InputError(`invalid scenario ${display(file)}`, ordered.map(formatProblem));
}

/** A child layer over its parent: mappings merge key by key, lists and scalars replace. */
function mergeLayer(base: Record<string, unknown>, layer: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(layer)) {
    const old = out[key];
    out[key] = isPlain(old) && isPlain(value) ? mergeLayer(old, value) : value;
  }
  return out;
}

const isPlain = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
