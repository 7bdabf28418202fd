import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { provisionersDir } from '../../lab/util/paths.js';

/**
 * provisioners/flocker run by bash on the host with stand-ins for the commands they call (docker,
 * apt-get, systemctl, curl, ip...), which record their arguments: what the scripts would do with
 * ClusterHQ's packages (the `upstream` path, which cannot run here) and with its images.
 */
const scripts = join(provisionersDir, 'flocker');
let dir: string;
let certs: string;
let calls: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flocker-scripts-'));
  certs = join(dir, 'etc-flocker');
  calls = join(dir, 'calls.log');
  mkdirSync(join(dir, 'bin'));
  mkdirSync(certs);
  const stub = (name: string, body = '') => {
    writeFileSync(join(dir, 'bin', name), `#!/bin/sh\necho "${name} $*" >> ${calls}\n${body}\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  };
  stub('id', 'echo 0');
  for (const name of ['apt-get', 'add-apt-repository', 'systemctl', 'docker']) stub(name);
  stub('lsb_release', 'echo 16.04');
  stub('dpkg-query', 'exit 1');
  stub('ip', 'echo "10.77.0.11 dev eth1 src 10.77.0.12 uid 0"');
  stub('curl', 'case "$*" in *state/nodes*) echo \'[{"host": "10.77.0.12", "uuid": "u"}]\';; *) echo \'{"flocker": "1.14.0"}\';; esac');
  stub('sleep');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(script: string, env: Record<string, string>) {
  const result = spawnSync('bash', [script], {
    cwd: scripts,
    env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, FLOCKER_CERTS: certs, MASTER_IP: '10.77.0.11', ...env },
    encoding: 'utf8',
  });
  let log = '';
  try {
    log = readFileSync(calls, 'utf8');
  } catch {
    // nothing was called
  }
  return { code: result.status, out: result.stdout, err: result.stderr, calls: log };
}

const place = (...files: string[]) => {
  for (const file of files) writeFileSync(join(certs, file), 'x', { mode: file.endsWith('.key') ? 0o600 : 0o644 });
};

describe('flocker provisioners', () => {
  test("agent.sh with the openstack backend writes the cloud's openrc into agent.yml, root's alone; without an openrc it says where it looked", () => {
    place('cluster.crt', 'node.crt', 'node.key');
    const missing = run('agent.sh', {
      FLOCKER_INSTALL: 'containers',
      FLOCKER_DATASET_BACKEND: 'openstack',
      FLOCKER_OPENSTACK_RC: join(dir, 'none.env'),
    });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`FLOCKER_DATASET_BACKEND=openstack needs the cloud's credentials in ${join(dir, 'none.env')}`);
    const openrc = join(dir, 'openstack.env');
    writeFileSync(
      openrc,
      "export OS_AUTH_URL='http://10.0.2.100:5000/v2.0'\nexport OS_USERNAME='lab'\nexport OS_PASSWORD='s3cret'\nexport OS_TENANT_NAME='lab'\nexport OS_REGION_NAME='RegionOne'\n",
    );
    const result = run('agent.sh', { FLOCKER_INSTALL: 'containers', FLOCKER_DATASET_BACKEND: 'openstack', FLOCKER_OPENSTACK_RC: openrc });
    expect(result.code, result.err).toBe(0);
    expect(readFileSync(join(certs, 'agent.yml'), 'utf8')).toBe(
      '"version": 1\n"control-service":\n  "hostname": "10.77.0.11"\n  "port": 4524\n"dataset":\n  backend: "openstack"\n  region: "RegionOne"\n  auth_plugin: "password"\n  auth_url: "http://10.0.2.100:5000/v2.0"\n  username: "lab"\n  password: "s3cret"\n  tenant_name: "lab"\n  verify_peer: false\n',
    );
    expect(statSync(join(certs, 'agent.yml')).mode & 0o777).toBe(0o600);
  });

  test('control.sh with packages: ClusterHQ repository, node and CLI packages at FLOCKER_VERSION, the flocker-control unit', () => {
    place('cluster.crt', 'control-service.crt', 'control-service.key');
    const result = run('control.sh', { FLOCKER_INSTALL: 'packages', FLOCKER_VERSION: '1.13.0' });
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/^\+\+\+ \[\d{4} [\d:]{8}\] FLOCKER_CONTROL_SERVICE_HOST is set to: 10\.77\.0\.11$/m);
    expect(result.calls).toContain('add-apt-repository -y deb https://clusterhq-archive.s3.amazonaws.com/ubuntu/16.04/$(ARCH) /');
    expect(result.calls).toContain('apt-get -y install --force-yes clusterhq-flocker-node=1.13.0-1');
    expect(result.calls).toContain('apt-get -y install --force-yes clusterhq-flocker-cli=1.13.0-1');
    expect(result.calls).toMatch(/systemctl enable flocker-control\nsystemctl restart flocker-control/);
    expect(result.calls).not.toContain('docker');
  });

  test("control.sh with containers: ClusterHQ's control service image, on the host network, certificates read-only", () => {
    place('cluster.crt', 'control-service.crt', 'control-service.key');
    const result = run('control.sh', { FLOCKER_INSTALL: 'containers' });
    expect(result.code, result.err).toBe(0);
    expect(result.calls).toContain('docker image inspect clusterhq/flocker-control-service:1.14.0');
    expect(result.calls).toContain(
      `docker run -d --name=flocker-control-service --restart=always --net=host -v ${certs}:/etc/flocker:ro -v /var/lib/flocker:/var/lib/flocker clusterhq/flocker-control-service:1.14.0 --port=tcp:4523 --agent-port=tcp:4524`,
    );
    expect(result.calls).not.toContain('apt-get');
    expect(result.out).toContain('Flocker 1.14.0 control service is up at https://10.77.0.11:4523/v1');
  });

  test('a missing certificate or a key others can read stops the script before anything starts', () => {
    place('cluster.crt', 'control-service.crt');
    const missing = run('control.sh', { FLOCKER_INSTALL: 'containers' });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`${certs}/control-service.key is missing`);
    writeFileSync(join(certs, 'control-service.key'), 'x', { mode: 0o644 });
    chmodSync(join(certs, 'control-service.key'), 0o644);
    const open = run('control.sh', { FLOCKER_INSTALL: 'containers' });
    expect(open.code).toBe(1);
    expect(open.err).toContain(`${certs}/control-service.key must be mode 0600 (it is 644)`);
    expect(open.calls).not.toContain('docker run');
  });

  test('agent.sh writes agent.yml for the loopback backend, starts the privileged agent with /flocker shared, and waits for its node to be listed', () => {
    place('cluster.crt', 'node.crt', 'node.key');
    const result = run('agent.sh', {
      FLOCKER_INSTALL: 'containers',
      FLOCKER_VERSION: '1.13.0',
      FLOCKER_LOOPBACK_ROOT: '/var/lib/flocker/loop',
    });
    expect(result.code, result.err).toBe(0);
    expect(readFileSync(join(certs, 'agent.yml'), 'utf8')).toBe(
      '"version": 1\n"control-service":\n  "hostname": "10.77.0.11"\n  "port": 4524\n"dataset":\n  backend: "loopback"\n  root_path: "/var/lib/flocker/loop"\n',
    );
    expect(result.calls).toContain(
      `docker run -d --name=flocker-dataset-agent --restart=always --net=host --privileged -v ${certs}:/etc/flocker:ro -v /dev:/dev -v /flocker:/flocker:rshared -v /var/lib/flocker:/var/lib/flocker clusterhq/flocker-dataset-agent:1.13.0`,
    );
    expect(result.out).toContain('The dataset agent on 10.77.0.12 is connected to 10.77.0.11:4524');
  });

  test('agent.sh waits FLOCKER_AGENT_WAIT seconds for its node to be listed, failing after; 0 starts the agent and returns', () => {
    place('cluster.crt', 'node.crt', 'node.key');
    writeFileSync(join(dir, 'bin', 'curl'), `#!/bin/sh\necho "curl $*" >> ${calls}\necho '[]'\n`);
    const unlisted = run('agent.sh', { FLOCKER_INSTALL: 'containers', FLOCKER_AGENT_WAIT: '6' });
    expect(unlisted.code).toBe(1);
    expect(unlisted.err).toContain('the control service does not list this node (10.77.0.12) within 6 s');
    expect(unlisted.calls.match(/^curl .*state\/nodes/gm)).toHaveLength(4);
    rmSync(calls, { force: true });
    const started = run('agent.sh', { FLOCKER_INSTALL: 'containers', FLOCKER_AGENT_WAIT: '0' });
    expect(started.code, started.err).toBe(0);
    expect(started.calls).toContain('docker run -d --name=flocker-dataset-agent');
    expect(started.calls).not.toContain('curl');
    expect(started.out).toContain(
      'The dataset agent on 10.77.0.12 is started (FLOCKER_AGENT_WAIT=0: not waiting for the control service to list it)',
    );
  });

  test('agent.sh refuses a backend it cannot write, and both scripts need the control service host', () => {
    place('cluster.crt', 'node.crt', 'node.key');
    const backend = run('agent.sh', { FLOCKER_INSTALL: 'containers', FLOCKER_DATASET_BACKEND: 'zfs' });
    expect(backend.code).toBe(1);
    expect(backend.err).toContain(
      'FLOCKER_DATASET_BACKEND=zfs: write your own /etc/flocker/agent.yml for it (this script writes loopback and openstack)',
    );
    const noHost = run('agent.sh', { FLOCKER_INSTALL: 'containers', MASTER_IP: '' });
    expect(noHost.code).toBe(1);
    expect(noHost.err).toContain('Please export FLOCKER_CONTROL_SERVICE_HOST (or MASTER_IP) in your env');
  });
});
