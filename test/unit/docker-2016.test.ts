import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../../lab/util/paths.js';

// The docker image's `docker`: what each 2016 form becomes, seen through stand-ins for Debian's binaries.
const shim = join(projectRoot, 'lab', 'images', 'docker-2016', 'docker');
const bin = mkdtempSync(join(tmpdir(), 'docker-2016-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));
for (const name of ['cli', 'dockerd']) {
  writeFileSync(join(bin, name), `#!/bin/sh\necho ${name}; for a in "$@"; do echo "$a"; done\n`);
  chmodSync(join(bin, name), 0o755);
}
const docker = (...args: string[]): string[] =>
  execFileSync('bash', [shim, ...args], {
    env: { PATH: '/usr/bin:/bin', DOCKER_2016_CLI: join(bin, 'cli'), DOCKER_2016_DAEMON: join(bin, 'dockerd') },
    encoding: 'utf8',
  })
    .trim()
    .split('\n');

describe('the docker image: docker as the 2016 scripts called it', () => {
  test("the guide's bootstrap daemon becomes a dockerd with --data-root and a containerd namespace of its own", () => {
    const bootstrap = ['-H', 'unix:///var/run/docker-bootstrap.sock', '-p', '/var/run/docker-bootstrap.pid', '--iptables=false'];
    expect(
      docker(
        'daemon',
        ...bootstrap,
        '--ip-masq=false',
        '--bridge=none',
        '--graph=/var/lib/docker-bootstrap',
        '--exec-root=/var/run/docker-bootstrap',
      ),
    ).toEqual([
      'dockerd',
      ...bootstrap,
      '--ip-masq=false',
      '--bridge=none',
      '--data-root=/var/lib/docker-bootstrap',
      '--exec-root=/var/run/docker-bootstrap',
      '--containerd-namespace=docker-bootstrap',
      '--containerd-plugins-namespace=docker-bootstrap-plugins',
    ]);
  });

  test('-g, --graph DIR and --host=SOCKET forms are taken as the 1.x daemon took them', () => {
    expect(docker('daemon', '-g', '/srv/d', '--host=unix:///run/two.sock')).toEqual([
      'dockerd',
      '--data-root=/srv/d',
      '-H',
      'unix:///run/two.sock',
      '--containerd-namespace=two',
      '--containerd-plugins-namespace=two-plugins',
    ]);
    expect(docker('daemon', '--graph', '/srv/e')).toEqual(['dockerd', '--data-root=/srv/e']);
  });

  test("the main daemon (docker.service's -H fd://, the default socket) keeps containerd's default namespace", () => {
    expect(docker('daemon', '-H', 'fd://', '--containerd=/run/containerd/containerd.sock', '--mtu=1472', '--bip=10.1.15.1/24')).toEqual([
      'dockerd',
      '-H',
      'fd://',
      '--containerd=/run/containerd/containerd.sock',
      '--mtu=1472',
      '--bip=10.1.15.1/24',
    ]);
    expect(docker('daemon', '-H', 'unix:///var/run/docker.sock')).toEqual(['dockerd', '-H', 'unix:///var/run/docker.sock']);
  });

  test('a daemon that names its containerd namespace keeps it', () => {
    expect(docker('daemon', '-H', 'unix:///x.sock', '--containerd-namespace=mine')).toEqual([
      'dockerd',
      '-H',
      'unix:///x.sock',
      '--containerd-namespace=mine',
    ]);
  });

  test('every other command goes to the docker CLI unchanged', () => {
    expect(docker('-H', 'unix:///var/run/docker-bootstrap.sock', 'run', '--graph=x', 'daemon')).toEqual([
      'cli',
      '-H',
      'unix:///var/run/docker-bootstrap.sock',
      'run',
      '--graph=x',
      'daemon',
    ]);
    expect(docker()).toEqual(['cli']);
  });
});
