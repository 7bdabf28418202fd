/**
 * Command-line flags the way the 2016 Go binaries took them (`--name=value`, `--name value`,
 * `-name`, bare booleans), so the stand-ins accept exactly the flags the guide's scripts pass and
 * refuse others as Go did: the error on stderr, the usage, exit code 2.
 */

export interface FlagSpec {
  /** Default value; booleans are flags that may stand alone. */
  [name: string]: string | boolean;
}

export type Flags<T extends FlagSpec> = { [K in keyof T]: T[K] extends boolean ? boolean : string };

export class FlagError extends Error {}

export function parseFlags<T extends FlagSpec>(argv: readonly string[], spec: T): { flags: Flags<T>; args: string[] } {
  const flags: Record<string, string | boolean> = { ...spec };
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      args.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    // Go's flag package and pflag treat - and _ alike in glog's flags (log_dir, log-dir).
    const key = Object.keys(spec).find((k) => k === name || k.replace(/_/g, '-') === name.replace(/_/g, '-'));
    if (key === undefined) throw new FlagError(`unknown flag: --${name}`);
    if (typeof spec[key] === 'boolean') {
      const value = eq < 0 ? 'true' : body.slice(eq + 1);
      if (!['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE'].includes(value))
        throw new FlagError(`invalid argument "${value}" for --${name}: strconv.ParseBool: parsing "${value}": invalid syntax`);
      flags[key] = ['true', '1', 't', 'TRUE'].includes(value);
    } else if (eq >= 0) {
      flags[key] = body.slice(eq + 1);
    } else {
      const value = argv[++i];
      if (value === undefined) throw new FlagError(`flag needs an argument: --${name}`);
      flags[key] = value;
    }
  }
  return { flags: flags as Flags<T>, args };
}

/** Parses or exits as a Go program does on a bad flag: message, usage, status 2. */
export function parseFlagsOrExit<T extends FlagSpec>(
  program: string,
  argv: readonly string[],
  spec: T,
): { flags: Flags<T>; args: string[] } {
  try {
    return parseFlags(argv, spec);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    const usage = Object.entries(spec)
      .map(([name, value]) => `      --${name}${typeof value === 'boolean' ? '' : ` string`}   (default ${JSON.stringify(value)})`)
      .join('\n');
    process.stderr.write(`Error: ${error.message}\nUsage of ${program}:\n${usage}\n`);
    process.exit(2);
  }
}

/** glog's line format: I1122 17:05:01.123456   42 file] message. */
export function glog(level: 'I' | 'W' | 'E' | 'F', where: string, message: string): void {
  const now = new Date();
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const stamp = `${pad(now.getMonth() + 1)}${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds() * 1000, 6)}`;
  process.stderr.write(`${level}${stamp} ${String(process.pid).padStart(7)} ${where}] ${message}\n`);
}

/** glog.Fatalf: the message, then exit 255. */
export function fatal(where: string, message: string): never {
  glog('F', where, message);
  process.exit(255);
}
