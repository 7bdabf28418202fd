import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { resolveScript, scriptFolders } from '../../lab/provision/scripts.js';
import { loadScenario } from '../../lab/scenario/loader.js';
import { projectRoot, provisionersDir } from '../../lab/util/paths.js';
import { InputError } from '../../lab/util/errors.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lab-loader-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes `lines` (line 1 first) to `rel` under the temp folder; returns the folder. */
function write(rel: string, ...lines: string[]): string {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${lines.join('\n')}\n`);
  return dirname(file);
}

/** How the loader shows a file: relative to the working directory. */
const shown = (folder: string) => relative(process.cwd(), join(root, folder, 'scenario.yaml'));

function problemsOf(folder: string): readonly string[] {
  let error: unknown;
  try {
    loadScenario(join(root, folder));
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(InputError);
  expect((error as InputError).message).toMatch(/^invalid scenario /);
  return (error as InputError).problems;
}

describe('loadScenario: shape', () => {
  test('a minimal scenario gets every default and the folder name', () => {
    const dir = write('minimal/scenario.yaml', 'nodes:', '  - name: node1');
    const loaded = loadScenario(dir);
    expect(loaded.spec).toEqual({
      name: 'minimal',
      driver: 'qemu',
      payload: 'emulated',
      arch: 'amd64',
      image: 'base',
      env: {},
      scripts: [],
      nodes: [{ name: 'node1', role: 'worker', cpus: 2, memory: 1024 }],
      provision: [],
      checks: [],
      timeouts: { checks: 900 },
      network: { cidr: '10.77.0.0/24' },
    });
    expect(loaded.dir).toBe(dir);
    expect(loaded.files).toEqual([shown('minimal')]);
  });

  test('a YAML syntax error is reported at file:line:col', () => {
    write('syntax/scenario.yaml', 'nodes:', '  - name: node1', 'nodes: []');
    expect(problemsOf('syntax')).toEqual([`${shown('syntax')}:3:1: YAML: Map keys must be unique`]);
  });

  test('a YAML alias bomb is refused at its first alias, not expanded', () => {
    const laughs = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (const [name, below] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
    ])
      laughs.push(`${name}: &${name} [${Array(9).fill(`*${below}`).join(', ')}]`);
    write('bomb/scenario.yaml', ...laughs, 'nodes:', '  - name: node1');
    expect(problemsOf('bomb')).toEqual([
      `${shown('bomb')}:2:8: YAML: Excessive alias count indicates a resource exhaustion attack (its aliases expand to too much; write the values out)`,
    ]);
  });

  test('a scenario.yaml that cannot be read (a folder) is bad input naming it', () => {
    mkdirSync(join(root, 'folder', 'scenario.yaml'), { recursive: true });
    expect(problemsOf('folder')).toEqual([`${shown('folder')}: cannot be read: EISDIR: illegal operation on a directory, read`]);
  });

  test('unknown keys, at the top and in nodes[], name the key and its line', () => {
    write('unknown/scenario.yaml', 'nodes:', '  - name: node1', '    colour: blue', 'x: 1');
    expect(problemsOf('unknown')).toEqual([
      `${shown('unknown')}:3:5: nodes[0].colour: unknown key "colour"`,
      `${shown('unknown')}:4:1: x: unknown key "x"`,
    ]);
  });

  test('every shape problem is reported at once, in line order, with its dot path', () => {
    write(
      'types/scenario.yaml',
      'timeouts:',
      '  checks: -1',
      'nodes:',
      '  - name: node1',
      '    cpus: two',
      '  - name: Node_2',
      '    memory: 100',
      'arch: sparc',
    );
    const file = shown('types');
    expect(problemsOf('types')).toEqual([
      `${file}:2:3: timeouts.checks: Too small: expected number to be >0`,
      `${file}:5:5: nodes[0].cpus: Invalid input: expected number, received string`,
      `${file}:6:5: nodes[1].name: must be a hostname: lowercase letters, digits and "-", starting with a letter`,
      `${file}:7:5: nodes[1].memory: Too small: expected number to be >=256`,
      `${file}:8:1: arch: Invalid option: expected one of "amd64"|"arm64"`,
    ]);
  });
});

describe('loadScenario: extends', () => {
  test('child scalars and lists replace the parent, env merges key by key', () => {
    write('base/scenario.yaml', 'arch: arm64', 'env:', '  A: a', '  B: b', 'nodes:', '  - name: p1', '  - name: p2', 'checks: [nodes-up]');
    const dir = write(
      'child/scenario.yaml',
      'name: child',
      'extends: ../base',
      'arch: amd64',
      'env:',
      '  B: B2',
      '  C: c',
      'nodes:',
      '  - name: c1',
    );
    const { spec, files } = loadScenario(dir);
    expect(spec.name).toBe('child');
    expect(spec.arch).toBe('amd64');
    expect(spec.env).toEqual({ A: 'a', B: 'B2', C: 'c' });
    expect(spec.nodes.map((n) => n.name)).toEqual(['c1']);
    expect(spec.checks).toEqual(['nodes-up']);
    expect(spec).not.toHaveProperty('extends');
    expect(files).toEqual([shown('child'), shown('base')]);
  });

  test('a problem that comes from the parent names the parent file and line', () => {
    write('base/scenario.yaml', 'nodes:', '  - name: node1', '    cpus: 99');
    write('child/scenario.yaml', 'extends: ../base', 'shape: round');
    expect(problemsOf('child')).toEqual([
      `${shown('base')}:3:5: nodes[0].cpus: Too big: expected number to be <=8`,
      `${shown('child')}:2:1: shape: unknown key "shape"`,
    ]);
  });

  test('an extends cycle is reported', () => {
    write('a/scenario.yaml', 'extends: ../b', 'nodes: [{ name: node1 }]');
    write('b/scenario.yaml', 'extends: ../a');
    expect(problemsOf('a')).toEqual([`${shown('a')}: extends: extends cycle: ${shown('a')} -> ${shown('b')} -> ${shown('a')}`]);
  });

  test('extends to a missing folder is reported at the extends line of the child', () => {
    write('orphan/scenario.yaml', 'nodes: [{ name: node1 }]', 'extends: ../nowhere');
    expect(problemsOf('orphan')).toEqual([`${shown('orphan')}:2:1: extends: no scenario file at ${shown('nowhere')}`]);
  });

  test('a required key missing from a list the child replaced is reported in the child', () => {
    write('base/scenario.yaml', 'nodes:', '  - name: p1');
    write('child/scenario.yaml', 'extends: ../base', 'nodes:', '  - cpus: 4');
    expect(problemsOf('child')).toEqual([`${shown('child')}:3:5: nodes[0].name: Invalid input: expected string, received undefined`]);
  });

  test('a child without a name is named after its own folder', () => {
    write('base/scenario.yaml', 'name: base', 'nodes: [{ name: node1 }]');
    const dir = write('child/scenario.yaml', 'extends: ../base');
    expect(loadScenario(dir).spec.name).toBe('child');
  });
});

describe('loadScenario: rules', () => {
  test('scripts resolve under provisioners/ or, with ./, next to the scenario; nodes-up is built in', () => {
    write('ok/local.sh', 'true');
    const dir = write(
      'ok/scenario.yaml',
      'nodes:',
      '  - name: node1',
      'provision:',
      '  - name: hello',
      '    script: smoke/hello.sh',
      '    nodes: [node1]',
      '  - name: local',
      '    script: ./local.sh',
      'checks: [nodes-up]',
    );
    const { spec } = loadScenario(dir);
    expect(spec.provision.map((s) => ('script' in s ? s.script : ''))).toEqual(['smoke/hello.sh', './local.sh']);
    expect(spec.checks).toEqual(['nodes-up']);
  });

  test('duplicate nodes, unknown nodes, missing scripts and unknown checks are reported together', () => {
    write(
      'rules/scenario.yaml',
      'nodes:',
      '  - name: node1',
      '  - name: node1',
      'provision:',
      '  - name: hello',
      '    script: smoke/nope.sh',
      '    nodes: [node9]',
      '  - name: local',
      '    script: ./local.sh',
      'checks:',
      '  - nodes-up',
      '  - no-such-check',
    );
    const file = shown('rules');
    expect(problemsOf('rules')).toEqual([
      `${file}:3:5: nodes[1].name: duplicate node name "node1"`,
      `${file}:6:5: provision[0].script: no script smoke/nope.sh (looked for ${join(provisionersDir, 'smoke/nope.sh')})`,
      `${file}:7:13: provision[0].nodes[0]: no node named "node9" in this scenario`,
      `${file}:9:5: provision[1].script: no script ./local.sh (looked for ${join(root, 'rules', 'local.sh')})`,
      `${file}:12:5: checks[1]: unknown check "no-such-check" (not built in, and no such .check.ts file)`,
    ]);
  });
});

describe("loadScenario: a user's own scripts", () => {
  const pathBefore = process.env.LAB_PROVISIONERS_PATH;
  afterEach(() => {
    if (pathBefore === undefined) delete process.env.LAB_PROVISIONERS_PATH;
    else process.env.LAB_PROVISIONERS_PATH = pathBefore;
  });
  const scriptOf = (dir: string, i: number) => {
    const { spec } = loadScenario(dir);
    const step = spec.provision[i];
    return step && 'script' in step ? resolveScript(step.script, dir, scriptFolders(spec.scripts)) : '';
  };

  test("a bare path is looked up in the scenario's folders, then LAB_PROVISIONERS_PATH's, then provisioners/; an absolute one is taken as it is", () => {
    write('checkout/docker-multinode/master.sh', 'echo theirs');
    write('extra/docker-multinode/worker.sh', 'echo extra');
    write('extra/smoke/hello.sh', 'echo shadowed');
    write('elsewhere/run.sh', 'true');
    process.env.LAB_PROVISIONERS_PATH = join(root, 'extra');
    const dir = write(
      'byo/scenario.yaml',
      'scripts: [../checkout]',
      'nodes: [{ name: node1 }]',
      'provision:',
      '  - { name: master, script: docker-multinode/master.sh }',
      '  - { name: worker, script: docker-multinode/worker.sh }',
      '  - { name: offline, script: docker-multinode/offline.sh }',
      `  - { name: own, script: ${join(root, 'elsewhere/run.sh')} }`,
    );
    expect(loadScenario(dir).spec.scripts).toEqual([join(root, 'checkout')]);
    expect(scriptOf(dir, 0)).toBe(join(root, 'checkout/docker-multinode/master.sh'));
    expect(scriptOf(dir, 1)).toBe(join(root, 'extra/docker-multinode/worker.sh'));
    expect(scriptOf(dir, 2)).toBe(join(provisionersDir, 'docker-multinode/offline.sh'));
    expect(scriptOf(dir, 3)).toBe(join(root, 'elsewhere/run.sh'));
  });

  test('a script found nowhere names every place looked in, at its line; so does a missing folder, and a missing absolute script', () => {
    process.env.LAB_PROVISIONERS_PATH = `${join(root, 'extra')}:`;
    write('checkout/README', 'x');
    write(
      'byo/scenario.yaml',
      'scripts: [../checkout, ../gone]',
      'nodes: [{ name: node1 }]',
      'provision:',
      '  - { name: master, script: docker-multinode/mastr.sh }',
      `  - { name: own, script: ${join(root, 'nope.sh')} }`,
    );
    const file = shown('byo');
    const looked = [join(root, 'checkout'), join(root, 'gone'), join(root, 'extra'), provisionersDir].map((folder) =>
      join(folder, 'docker-multinode/mastr.sh'),
    );
    expect(problemsOf('byo')).toEqual([
      `${file}:1:24: scripts[1]: no folder ${join(root, 'gone')}`,
      `${file}:4:21: provision[0].script: no script docker-multinode/mastr.sh (looked for ${looked.join(', ')})`,
      `${file}:5:18: provision[1].script: no script ${join(root, 'nope.sh')} (looked for ${join(root, 'nope.sh')})`,
    ]);
  });

  test("a parent's ./ scripts and uploads, and its script folders, stay its own when a scenario in another folder extends it", () => {
    write('base/master.sh', 'true');
    write('base/files/kubeconfig.yaml', 'x');
    write('base/own/smoke/hello.sh', 'echo base');
    write(
      'base/scenario.yaml',
      'scripts: [own]',
      'nodes: [{ name: node1 }]',
      'provision:',
      '  - { name: master, script: ./master.sh, ready: ./master.sh }',
      '  - { name: conf, upload: { from: files/kubeconfig.yaml, to: /etc/kubeconfig.yaml } }',
      '  - { name: hello, script: smoke/hello.sh }',
    );
    const dir = write('team/child/scenario.yaml', 'extends: ../../base');
    const { spec } = loadScenario(dir);
    expect(spec.provision[0]).toMatchObject({ script: '../../base/master.sh', ready: '../../base/master.sh' });
    expect(spec.provision[1]).toMatchObject({ upload: { from: '../../base/files/kubeconfig.yaml' } });
    expect(scriptOf(dir, 0)).toBe(join(root, 'base/master.sh'));
    expect(scriptOf(dir, 2)).toBe(join(root, 'base/own/smoke/hello.sh'));
    // Run by itself, the parent's steps are as written (and so are its layers' keys).
    expect(loadScenario(join(root, 'base')).spec.provision[0]).toMatchObject({ script: './master.sh' });
  });

  test("a scripts folder may be the caller's variable ($KUBE_DEPLOY_DIR, the checkout); unset, validation names it at its line", () => {
    write('mine/kube-deploy/docker-multinode/master.sh', 'echo mine');
    const dir = write(
      'byovar/scenario.yaml',
      'scripts: [$KUBE_DEPLOY_DIR, "${KUBE_DEPLOY_DIR}/extra"]',
      'nodes: [{ name: node1 }]',
      'provision:',
      '  - { name: master, script: docker-multinode/master.sh }',
    );
    write('mine/kube-deploy/extra/README', 'x');
    const { spec } = loadScenario(dir, { hostEnv: { KUBE_DEPLOY_DIR: join(root, 'mine/kube-deploy') } });
    expect(spec.scripts).toEqual([join(root, 'mine/kube-deploy'), join(root, 'mine/kube-deploy/extra')]);
    expect(resolveScript('docker-multinode/master.sh', dir, scriptFolders(spec.scripts))).toBe(
      join(root, 'mine/kube-deploy/docker-multinode/master.sh'),
    );
    expect(problemsOf('byovar').slice(0, 2)).toEqual([
      `${shown('byovar')}:1:11: scripts[0]: KUBE_DEPLOY_DIR is not set: export it as the folder to find scripts in (e.g. your kube-deploy checkout)`,
      `${shown('byovar')}:1:29: scripts[1]: KUBE_DEPLOY_DIR is not set: export it as the folder to find scripts in (e.g. your kube-deploy checkout)`,
    ]);
  });

  test("scenarios/byo-docker-multinode runs the checkout's master.sh and worker.sh, the lab's dns-addon.sh and ready.sh", () => {
    write('checkout/docker-multinode/master.sh', 'echo theirs');
    write('checkout/docker-multinode/worker.sh', 'echo theirs');
    const template = join(projectRoot, 'scenarios/byo-docker-multinode');
    const { spec } = loadScenario(template, { hostEnv: { KUBE_DEPLOY_DIR: join(root, 'checkout') } });
    const scripts = spec.provision.map((step) =>
      'script' in step ? resolveScript(step.script, template, scriptFolders(spec.scripts)) : '',
    );
    expect(scripts).toEqual([
      join(root, 'checkout/docker-multinode/master.sh'),
      join(root, 'checkout/docker-multinode/worker.sh'),
      join(provisionersDir, 'docker-multinode/dns-addon.sh'),
    ]);
    expect(spec.nodes.map((n) => [n.name, n.env?.IP_ADDRESS])).toEqual([
      ['master', '10.77.0.11'],
      ['worker', '10.77.0.12'],
    ]);
    expect(() => loadScenario(template, { hostEnv: {} })).toThrow(/scripts\[0\]: KUBE_DEPLOY_DIR is not set/);
  });

  test("a node's own env and a step's stdin are taken as written; a bad variable name is refused at its line", () => {
    const dir = write(
      'env/scenario.yaml',
      'nodes:',
      '  - { name: master, env: { IP_ADDRESS: 10.77.0.11, CLEAN: true } }',
      '  - { name: worker }',
      'provision:',
      '  - { name: hello, script: smoke/hello.sh, stdin: "Y\\n" }',
    );
    const { spec } = loadScenario(dir);
    expect(spec.nodes.map((n) => n.env)).toEqual([{ IP_ADDRESS: '10.77.0.11', CLEAN: true }, undefined]);
    expect(spec.provision[0]).toMatchObject({ stdin: 'Y\n' });
    write('badenv/scenario.yaml', 'nodes:', '  - { name: master, env: { 1IP: x } }');
    expect(problemsOf('badenv')).toEqual([`${shown('badenv')}:2:28: nodes[0].env.1IP: must be a shell variable name`]);
  });
});

describe('loadScenario: Flocker certificates and readiness scripts', () => {
  test('flocker: needs a certificates step, a certificates step needs flocker:, a ready script must exist', () => {
    write(
      'flocker/scenario.yaml',
      'nodes:',
      '  - name: master',
      'flocker:',
      '  control: master',
      'provision:',
      '  - name: hello',
      '    script: smoke/hello.sh',
      '    ready: smoke/nope.sh',
    );
    const file = shown('flocker');
    expect(problemsOf('flocker')).toEqual([
      `${file}:3:1: flocker: no step places the certificates: add a step \`certificates: flocker\` before the Flocker steps`,
      `${file}:8:5: provision[0].ready: no script smoke/nope.sh (looked for ${join(provisionersDir, 'smoke/nope.sh')})`,
    ]);
    write('orphan/scenario.yaml', 'nodes:', '  - name: master', 'provision:', '  - name: certs', '    certificates: flocker');
    expect(problemsOf('orphan')).toEqual([
      `${shown('orphan')}:5:5: provision[0].certificates: needs the scenario's \`flocker:\` (the node that runs the control service, and the API user)`,
    ]);
    const ok = write(
      'ok/scenario.yaml',
      'nodes:',
      '  - name: master',
      'flocker:',
      '  control: master',
      'provision:',
      '  - name: certs',
      '    certificates: flocker',
    );
    expect(loadScenario(ok).spec.provision).toEqual([{ name: 'certs', certificates: 'flocker', nodes: 'all' }]);
  });
});

describe('loadScenario: cluster network', () => {
  test('addresses must be host addresses of the CIDR and unique; the CIDR must be a network', () => {
    write(
      'net/scenario.yaml',
      'network:',
      '  cidr: 10.77.0.5/24',
      'nodes:',
      '  - name: a',
      '    address: 10.77.0.11',
      '  - name: b',
      '    address: 10.77.0.11',
    );
    expect(problemsOf('net')).toEqual([
      `${shown('net')}:2:3: network.cidr: "10.77.0.5/24" is not an IPv4 network like 10.77.0.0/24 (prefix 8 to 30)`,
      `${shown('net')}:7:5: nodes[1].address: 10.77.0.11 is already the address of a`,
    ]);
    write('out/scenario.yaml', 'nodes:', '  - name: a', '    address: 10.99.0.1');
    expect(problemsOf('out')).toEqual([
      `${shown('out')}:3:5: nodes[0].address: 10.99.0.1 is not a host address in the cluster network 10.77.0.0/24`,
    ]);
  });

  test('a network too small for the nodes, or for the addresses the lab gives by default, is refused', () => {
    write('tiny/scenario.yaml', 'network:', '  cidr: 10.77.0.0/30', 'nodes:', '  - name: a', '  - name: b', '  - name: c', '  - name: d');
    expect(problemsOf('tiny')).toEqual([
      `${shown('tiny')}:2:3: network.cidr: 10.77.0.0/30 has 2 host addresses (10.77.0.1 to 10.77.0.2); the scenario has 4 nodes`,
    ]);
    write('defaults/scenario.yaml', 'network:', '  cidr: 10.77.0.0/29', 'nodes:', '  - name: a', '    address: 10.77.0.1', '  - name: b');
    expect(problemsOf('defaults')).toEqual([
      `${shown('defaults')}:6:5: nodes[1].name: b has no \`address\`, and its default 10.77.0.11 (the lab counts from network + 11) is outside 10.77.0.0/29 (hosts 10.77.0.1 to 10.77.0.6): give it an \`address\` or use a larger network`,
    ]);
    const fits = write(
      'fits/scenario.yaml',
      'network:',
      '  cidr: 10.77.0.0/29',
      'nodes:',
      '  - name: a',
      '    address: 10.77.0.1',
      '  - name: b',
      '    address: 10.77.0.6',
    );
    expect(loadScenario(fits).spec.nodes.map((n) => n.address)).toEqual(['10.77.0.1', '10.77.0.6']);
  });

  test('cloud: needs a driver that hot-plugs disks, and amd64 nodes', () => {
    write('vagrant/scenario.yaml', 'driver: vagrant', 'cloud: openstack', 'nodes:', '  - name: a');
    expect(problemsOf('vagrant')).toEqual([
      `${shown('vagrant')}:2:1: cloud: the vagrant driver cannot plug disks into running VMs, which the emulated Nova's volume attach does: use qemu or libvirt`,
    ]);
    write('arm/scenario.yaml', 'cloud: openstack', 'nodes:', '  - name: a', '  - name: b', '    arch: arm64');
    expect(problemsOf('arm')).toEqual([
      `${shown('arm')}:5:5: nodes[1].arch: b is arm64: the lab's arm64 VMs (QEMU's virt machine) have no hot-pluggable PCIe slot, so the cloud's Nova could not plug a volume into it; give a scenario with \`cloud:\` amd64 nodes`,
    ]);
  });

  test('matrix: axes are env variable names, arch or driver with values they can take; exclude names axes only', () => {
    write(
      'matrix/scenario.yaml',
      'nodes:',
      '  - name: a',
      'matrix:',
      '  arch: [amd64, sparc]',
      '  driver: [qemu, xen]',
      '  9BAD: [x]',
      '  K8S_VERSION: [v1.2.4]',
      '  exclude:',
      '    - NOPE: x',
      '  include:',
      '    - arch: mips',
    );
    expect(problemsOf('matrix')).toEqual([
      `${shown('matrix')}:4:17: matrix.arch[1]: arch must be one of amd64, arm64, not "sparc"`,
      `${shown('matrix')}:5:18: matrix.driver[1]: driver must be one of qemu, libvirt, vagrant, not "xen"`,
      `${shown('matrix')}:6:10: matrix.9BAD[0]: "9BAD" is not an axis: an env variable name, arch or driver`,
      `${shown('matrix')}:9:7: matrix.exclude[0].NOPE: "NOPE" is not one of the matrix's axes (arch, driver, 9BAD, K8S_VERSION)`,
      `${shown('matrix')}:11:7: matrix.include[0].arch: arch must be one of amd64, arm64, not "mips"`,
    ]);
    write('axisless/scenario.yaml', 'nodes:', '  - name: a', 'matrix:', '  arch: []');
    expect(problemsOf('axisless')).toEqual([`${shown('axisless')}:4:3: matrix.arch: an axis needs at least one value`]);
  });

  test('--arch overrides the scenario arch and every node arch', () => {
    const dir = write('mixed/scenario.yaml', 'arch: amd64', 'nodes:', '  - name: a', '    arch: amd64', '  - name: b');
    const { spec } = loadScenario(dir, { arch: 'arm64' });
    expect(spec.arch).toBe('arm64');
    expect(spec.nodes.map((n) => n.arch)).toEqual(['arm64', 'arm64']);
  });
});

describe('loadScenario: variables the way users pass them', () => {
  const scenario = () =>
    write('vars/scenario.yaml', 'env:', '  K8S_VERSION: v1.2.4', '  FLANNEL_BACKEND: udp', 'nodes:', '  - name: master');

  test("the caller's environment overrides the names the scenario declares, and only those", () => {
    const { spec, changedEnv } = loadScenario(scenario(), {
      hostEnv: { K8S_VERSION: 'v1.3.0', FLANNEL_BACKEND: 'udp', PATH: '/usr/bin', HOME: '/root' },
    });
    expect(spec.env).toEqual({ K8S_VERSION: 'v1.3.0', FLANNEL_BACKEND: 'udp' });
    // What the caller changed (a verdict names it): not the value it repeated, not its own names.
    expect(changedEnv).toEqual({ K8S_VERSION: 'v1.3.0' });
  });

  test('--set wins over the environment and may add a variable', () => {
    const { spec } = loadScenario(scenario(), {
      hostEnv: { K8S_VERSION: 'v1.3.0' },
      set: { K8S_VERSION: 'v1.2.5', MASTER_IP: '10.77.0.11' },
    });
    expect(spec.env).toEqual({ K8S_VERSION: 'v1.2.5', FLANNEL_BACKEND: 'udp', MASTER_IP: '10.77.0.11' });
  });

  test('without overrides the scenario values stand', () => {
    expect(loadScenario(scenario()).spec.env).toEqual({ K8S_VERSION: 'v1.2.4', FLANNEL_BACKEND: 'udp' });
    expect(loadScenario(scenario()).changedEnv).toEqual({});
  });
});
