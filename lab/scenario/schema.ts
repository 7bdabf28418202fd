import { z } from 'zod';
import { IMAGE_VARIANTS } from '../images/recipe.js';
import { ARCHES } from '../machines/arch.js';
import { DRIVER_NAMES } from '../machines/registry.js';

/**
 * The scenario file format. Every object is strict: an unknown key is an error, never ignored.
 * Descriptions end up in the generated JSON Schema (scenario.schema.json) that editors read.
 */

const hostname = z
  .string()
  .regex(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a hostname: lowercase letters, digits and "-", starting with a letter');

const stepName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be lowercase letters, digits, ".", "_" or "-"');

export const Arch = z.enum(ARCHES);
export type Arch = z.infer<typeof Arch>;

export const DriverName = z.enum(DRIVER_NAMES);
export type DriverName = z.infer<typeof DriverName>;

/** Values as users write them in YAML (`FLANNEL_IPMASQ: true`); the loader turns them into strings. */
const EnvValue = z.union([z.string(), z.number(), z.boolean()]);
const Env = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a shell variable name'), EnvValue);

/** An env as the shell gets it. */
export const envStrings = (env: Record<string, string | number | boolean> = {}): Record<string, string> =>
  Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));

export const NodeSpec = z.strictObject({
  name: hostname.describe('Hostname of the VM, unique in the scenario'),
  role: z.enum(['master', 'worker']).default('worker').describe('Role in the cluster'),
  arch: Arch.optional().describe('CPU architecture; defaults to the scenario arch'),
  cpus: z.int().min(1).max(8).default(2).describe('Virtual CPUs'),
  memory: z.int().min(256).max(16384).default(1024).describe('Memory in MiB'),
  address: z.ipv4().optional().describe('Static address on the cluster link; default: the next free one from .11'),
  env: Env.optional().describe(
    "Environment of every step on this node, over the scenario's (a step's own env is over both), e.g. IP_ADDRESS for scripts that would take the default route's",
  ),
});
export type NodeSpec = z.infer<typeof NodeSpec>;

const Targets = z
  .union([z.literal('all'), z.array(hostname).min(1)])
  .default('all')
  .describe('Node names the step runs on, or "all"');

export const ScriptStep = z.strictObject({
  name: stepName.describe('Step name, used in logs and reports'),
  script: z
    .string()
    .min(1)
    .describe(
      "The script: an absolute path, ./ or ../ for one beside the scenario, or a path found in the scenario's `scripts` folders, LAB_PROVISIONERS_PATH's, then the lab's provisioners/ (e.g. docker-multinode/master.sh); its whole folder goes to the node",
    ),
  args: z.array(z.string()).default([]).describe('Arguments of the script, e.g. [bootstrap] for docker-multinode/offline.sh'),
  nodes: Targets,
  env: Env.default({}).describe('Extra environment for this step only'),
  stdin: z.string().optional().describe('The script\'s standard input, e.g. the answers to its prompts ("Y\\n"); without it, /dev/null'),
  timeout: z.int().positive().default(900).describe('Seconds before the step is stopped and failed'),
  ready: z
    .string()
    .min(1)
    .optional()
    .describe(
      "After a restore from a snapshot layer that holds this step: a script (found as `script` is) that exits 0 once what the step started works again; it runs on the step's nodes, with the step's environment and timeout",
    ),
});

export const UploadStep = z.strictObject({
  name: stepName,
  upload: z.strictObject({
    from: z.string().min(1).describe('Host path, relative to the scenario folder'),
    to: z.string().startsWith('/', 'must be an absolute path in the guest').describe('Guest path'),
    mode: z
      .string()
      .regex(/^[0-7]{3,4}$/, 'must be an octal mode like 0644')
      .default('0644'),
  }),
  nodes: Targets,
});

export const CertificatesStep = z.strictObject({
  name: stepName,
  certificates: z
    .literal('flocker')
    .describe(
      "The run's Flocker cluster certificates, made as flocker-ca made them and placed as Flocker's docs say (the scenario's `flocker:` names the control node and the API user)",
    ),
  nodes: Targets,
});

export const Step = z.union([ScriptStep, UploadStep, CertificatesStep]);
export type Step = z.infer<typeof Step>;
/** What the provisioner runs over SSH (the certificates step is the run's own work). */
export type NodeStep = z.infer<typeof ScriptStep> | z.infer<typeof UploadStep>;

export const Timeouts = z.strictObject({
  boot: z.int().positive().optional().describe('Seconds from VM start to SSH login; default per arch'),
  checks: z.int().positive().default(900).describe('Seconds for all checks together'),
});

export const Network = z.strictObject({
  cidr: z.string().default('10.77.0.0/24').describe('IPv4 network of the cluster link shared by all nodes of a run'),
});

export const Flocker = z.strictObject({
  control: hostname.describe("The node that runs the Flocker control service (its certificate names this node's address)"),
  user: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, "_" or "-"')
    .default('kubernetes')
    .describe('The API user whose certificate (CN user-<name>) the kubelets and checks present'),
});
export type Flocker = z.infer<typeof Flocker>;

/** A regular expression (JavaScript's syntax) that must compile. */
const Pattern = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    try {
      new RegExp(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `is not a regular expression: ${(error as Error).message}` });
    }
  });

export const BugSignature = z.strictObject({
  check: z.string().min(1).describe("The check that fails when the bug is there: one of the scenario's checks"),
  step: Pattern.optional().describe("A regular expression over the failing step's name, e.g. 'runs on worker'"),
  message: Pattern.optional().describe("A regular expression over the step's failure message, e.g. \"KeyError: u'2\\.0'\""),
});

export const Bug = z.strictObject({
  url: z.url().describe('The bug report, e.g. https://github.com/ClusterHQ/flocker/issues/2841'),
  title: z.string().min(1).describe('What the bug is, in one line'),
  reproduces: z
    .array(BugSignature)
    .min(1, 'name at least one failure that shows the bug')
    .describe('The failure signature: every entry must fail, and nothing else may'),
});
export type BugSpec = z.infer<typeof Bug>;

const MatrixValue = z.union([z.string(), z.number(), z.boolean()]);
const MatrixEntry = z.record(z.string(), MatrixValue);

/** Axes as GitHub Actions writes `strategy.matrix`: each key an env variable, `arch` or `driver`, with its values; `include` and `exclude` as GitHub defines them. */
export const Matrix = z
  .object({
    include: z
      .array(MatrixEntry)
      .default([])
      .describe('Entries added to every cell whose axis values they keep, or cells of their own (GitHub Actions)'),
    exclude: z.array(MatrixEntry).default([]).describe('Cells to leave out: those matching every key of an entry'),
  })
  .catchall(z.array(MatrixValue).min(1, 'an axis needs at least one value'));
export type MatrixInput = z.infer<typeof Matrix>;

export const Scenario = z.strictObject({
  $schema: z.string().optional().describe('Path of the JSON Schema, for editors'),
  name: stepName.describe('Scenario name; defaults to the folder name'),
  description: z.string().optional(),
  extends: z.string().optional().describe('Folder of a scenario this one builds on, relative to this one'),
  driver: DriverName.default('qemu').describe('What makes the VMs'),
  payload: z.enum(['emulated', 'upstream']).default('emulated').describe('Where the cluster software comes from'),
  arch: Arch.default('amd64').describe('Default architecture of the nodes'),
  image: z
    .enum(IMAGE_VARIANTS)
    .default('base')
    .describe("Image of the nodes: base, or docker (Debian's Docker and the tools the multinode scripts call)"),
  env: Env.default({}).describe('Environment of every provisioner step'),
  scripts: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "Folders (relative to this file, or absolute) that steps' scripts are found in before the lab's own provisioners/, e.g. a checkout of kube-deploy",
    ),
  network: Network.default({ cidr: '10.77.0.0/24' }).describe('The cluster link'),
  nodes: z.array(NodeSpec).min(1, 'a scenario needs at least one node').describe('The VMs'),
  provision: z.array(Step).default([]).describe('Ordered provisioner steps'),
  checks: z.array(z.string().min(1)).default([]).describe('Checks to run: built-in names or paths to .check.ts files'),
  flocker: Flocker.optional().describe('The Flocker cluster a `certificates: flocker` step makes the certificates for'),
  cloud: z
    .enum(['openstack'])
    .optional()
    .describe(
      "A cloud the lab serves the run's guests: openstack (Keystone, Cinder, Nova; Nova's volume attach hot-plugs the disk into the VM). Each node finds its credentials in /etc/lab/openstack.env",
    ),
  timeouts: Timeouts.default({ checks: 900 }),
  matrix: Matrix.optional().describe(
    '`lab matrix` runs the scenario once per cell: the product of these axes (env variables, arch, driver), with include and exclude as GitHub Actions defines them',
  ),
  bug: Bug.optional().describe(
    'The bug this scenario reproduces: the run passes (exit 0) when its signature fails and nothing else does; when everything passes or something else fails, it fails (exit 1). `lab run --expect=pass` runs it as a plain scenario',
  ),
});

/** The scenario as written (before defaults): what each file may contain. */
export type ScenarioInput = z.input<typeof Scenario>;
/** The scenario after parsing and defaults. */
export type ScenarioSpec = z.infer<typeof Scenario>;

/** JSON Schema for editors (yaml-language-server). Generated from the zod schema, never by hand. */
export function scenarioJsonSchema(): object {
  const schema = z.toJSONSchema(Scenario, { io: 'input', target: 'draft-2020-12' }) as { required?: string[] };
  // The loader names a scenario after its folder when the file does not.
  schema.required = schema.required?.filter((key) => key !== 'name');
  return schema;
}
