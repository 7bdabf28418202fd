import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FOLDER_VARIABLE, scriptCandidates, scriptFolders } from '../provision/scripts.js';
import { resolveCheck } from '../checks/catalog.js';
import { checkName } from '../checks/runner.js';
import { DRIVERS } from '../machines/registry.js';
import { formatIp, hostCount, isHostIn, parseCidr, parseIp, planAddresses } from '../net/addressing.js';
import { ARCHES } from '../machines/arch.js';
import type { MatrixInput, ScenarioSpec } from './schema.js';
import type { Path } from './locate.js';

/** Rules that need the whole scenario: names that must be unique or must exist. */
export function semanticProblems(spec: ScenarioSpec, dir: string): { path: Path; message: string }[] {
  const problems: { path: Path; message: string }[] = [];
  const nodeNames = new Set<string>();
  spec.nodes.forEach((node, i) => {
    if (nodeNames.has(node.name)) problems.push({ path: ['nodes', i, 'name'], message: `duplicate node name "${node.name}"` });
    nodeNames.add(node.name);
  });

  const cidr = parseCidr(spec.network.cidr);
  if (!cidr)
    problems.push({
      path: ['network', 'cidr'],
      message: `"${spec.network.cidr}" is not an IPv4 network like 10.77.0.0/24 (prefix 8 to 30)`,
    });
  const addresses = new Map<string, string>();
  spec.nodes.forEach((node, i) => {
    if (!node.address) return;
    const ip = parseIp(node.address);
    if (cidr && ip !== undefined && !isHostIn(ip, cidr)) {
      problems.push({
        path: ['nodes', i, 'address'],
        message: `${node.address} is not a host address in the cluster network ${spec.network.cidr}`,
      });
    }
    const other = addresses.get(node.address);
    if (other) problems.push({ path: ['nodes', i, 'address'], message: `${node.address} is already the address of ${other}` });
    addresses.set(node.address, node.name);
  });

  if (cidr) problems.push(...networkSizeProblems(spec, cidr));

  if (spec.flocker && !nodeNames.has(spec.flocker.control))
    problems.push({ path: ['flocker', 'control'], message: `no node named "${spec.flocker.control}" in this scenario` });
  const certificates = spec.provision.findIndex((step) => 'certificates' in step);
  if (spec.flocker && certificates < 0)
    problems.push({
      path: ['flocker'],
      message: 'no step places the certificates: add a step `certificates: flocker` before the Flocker steps',
    });
  if (!spec.flocker && certificates >= 0)
    problems.push({
      path: ['provision', certificates, 'certificates'],
      message: "needs the scenario's `flocker:` (the node that runs the control service, and the API user)",
    });

  if (spec.matrix) problems.push(...matrixProblems(spec.matrix));

  const arm64 = spec.nodes.findIndex((node) => (node.arch ?? spec.arch) === 'arm64');
  if (spec.cloud && arm64 >= 0)
    problems.push({
      path: spec.nodes[arm64]?.arch ? ['nodes', arm64, 'arch'] : ['arch'],
      message: `${spec.nodes[arm64]?.name} is arm64: the lab's arm64 VMs (QEMU's virt machine) have no hot-pluggable PCIe slot, so the cloud's Nova could not plug a volume into it; give a scenario with \`cloud:\` amd64 nodes`,
    });
  if (spec.cloud && !DRIVERS[spec.driver].hotplug)
    problems.push({
      path: ['cloud'],
      message: `the ${spec.driver} driver cannot plug disks into running VMs, which the emulated Nova's volume attach does: use qemu or libvirt`,
    });

  spec.scripts.forEach((folder, i) => {
    const variable = FOLDER_VARIABLE.exec(folder);
    if (variable)
      problems.push({
        path: ['scripts', i],
        message: `${variable[1] ?? variable[2]} is not set: export it as the folder to find scripts in (e.g. your kube-deploy checkout)`,
      });
    else if (!existsSync(folder)) problems.push({ path: ['scripts', i], message: `no folder ${folder}` });
  });
  const folders = scriptFolders(spec.scripts);
  const stepNames = new Set<string>();
  spec.provision.forEach((step, i) => {
    if (stepNames.has(step.name)) problems.push({ path: ['provision', i, 'name'], message: `duplicate step name "${step.name}"` });
    stepNames.add(step.name);
    if (step.nodes !== 'all') {
      step.nodes.forEach((name, j) => {
        if (!nodeNames.has(name))
          problems.push({ path: ['provision', i, 'nodes', j], message: `no node named "${name}" in this scenario` });
      });
    }
    for (const key of ['script', 'ready'] as const) {
      const script = 'script' in step ? step[key] : undefined;
      const looked = script === undefined ? [] : scriptCandidates(script, dir, folders);
      if (script !== undefined && !looked.some((path) => existsSync(path)))
        problems.push({ path: ['provision', i, key], message: `no script ${script} (looked for ${looked.join(', ')})` });
    }
    if ('upload' in step && !existsSync(resolve(dir, step.upload.from))) {
      problems.push({ path: ['provision', i, 'upload', 'from'], message: `no file ${step.upload.from} next to the scenario` });
    }
  });

  spec.checks.forEach((check, i) => {
    if (!resolveCheck(check, dir))
      problems.push({ path: ['checks', i], message: `unknown check "${check}" (not built in, and no such .check.ts file)` });
  });
  const checkNames = spec.checks.map(checkName);
  spec.bug?.reproduces.forEach((signature, i) => {
    if (!checkNames.includes(signature.check))
      problems.push({
        path: ['bug', 'reproduces', i, 'check'],
        message: `"${signature.check}" is not one of the scenario's checks (${checkNames.join(', ') || 'it has none'})`,
      });
  });
  return problems;
}

/**
 * A network too small for the scenario: more nodes than it has host addresses, or a node without
 * `address:` whose default (network + 11, + 12, ... in node order) lies outside it.
 */
function networkSizeProblems(spec: ScenarioSpec, cidr: NonNullable<ReturnType<typeof parseCidr>>): { path: Path; message: string }[] {
  const hosts = hostCount(cidr);
  const range = `${formatIp(cidr.network + 1)} to ${formatIp(cidr.network + hosts)}`;
  if (spec.nodes.length > hosts)
    return [
      {
        path: ['network', 'cidr'],
        message: `${spec.network.cidr} has ${hosts} host addresses (${range}); the scenario has ${spec.nodes.length} nodes`,
      },
    ];
  return planAddresses(spec.nodes, cidr).flatMap((planned, i) =>
    planned.given || planned.inNetwork
      ? []
      : [
          {
            path: ['nodes', i, 'name'],
            message: `${planned.name} has no \`address\`, and its default ${planned.address} (the lab counts from network + 11) is outside ${spec.network.cidr} (hosts ${range}): give it an \`address\` or use a larger network`,
          },
        ],
  );
}

/** A matrix's axes must be variable names, `arch` or `driver` with values they can take; exclude names only axes. */
function matrixProblems(matrix: MatrixInput): { path: Path; message: string }[] {
  const problems: { path: Path; message: string }[] = [];
  const { include, exclude, ...axes } = matrix;
  const allowed: Record<string, readonly string[]> = { arch: ARCHES, driver: Object.keys(DRIVERS) };
  const valueProblems = (key: string, value: unknown, path: Path) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      problems.push({ path, message: `"${key}" is not an axis: an env variable name, arch or driver` });
    else if (allowed[key] && !allowed[key].includes(String(value)))
      problems.push({ path, message: `${key} must be one of ${allowed[key].join(', ')}, not "${value}"` });
  };
  for (const [key, values] of Object.entries(axes))
    (values as unknown[]).forEach((value, i) => valueProblems(key, value, ['matrix', key, i]));
  include.forEach((entry, i) => Object.entries(entry).forEach(([key, value]) => valueProblems(key, value, ['matrix', 'include', i, key])));
  exclude.forEach((entry, i) =>
    Object.keys(entry).forEach((key) => {
      if (!(key in axes))
        problems.push({
          path: ['matrix', 'exclude', i, key],
          message: `"${key}" is not one of the matrix's axes (${Object.keys(axes).join(', ') || 'none'})`,
        });
    }),
  );
  return problems;
}
