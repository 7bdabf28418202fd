/**
 * Boot-to-SSH: the lab's qemu driver against a plain qemu-system-x86_64 command line booting the
 * same image, measured in the same run, alternating, and the ratio printed. Run: npm run bench
 * (after bin/lab setup). BENCH_ROUNDS sets the rounds (default 2).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImage } from '../lab/images/builder.js';
import type { Image } from '../lab/images/cache.js';
import { recipeFor } from '../lab/images/recipe.js';
import { QemuDriver } from '../lab/machines/qemu/driver.js';
import { freeLoopbackPort } from '../lab/net/ports.js';
import { connectWhenReady } from '../lab/remote/ssh.js';
import { Logger } from '../lab/util/log.js';
import { run } from '../lab/util/proc.js';

const log = new Logger();

/** Baseline: the shortest QEMU command line a person would type, and OpenSSH's client polled once a second. */
async function plainBoot(image: Image): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-plain-'));
  const port = await freeLoopbackPort();
  await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk, join(dir, 'disk.qcow2')]);
  const started = performance.now();
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-smp',
      '2',
      '-m',
      '1024',
      '-display',
      'none',
      '-kernel',
      image.kernel,
      '-initrd',
      image.initrd,
      '-append',
      'console=ttyS0 root=/dev/vda rw quiet net.ifnames=0',
      '-drive',
      `file=${join(dir, 'disk.qcow2')},if=virtio,format=qcow2`,
      '-netdev',
      `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device',
      'virtio-net-pci,netdev=n0,mac=52:54:00:1a:b0:01',
      '-serial',
      'null',
    ],
    { stdio: 'ignore' },
  );
  try {
    for (;;) {
      const ssh = await run(
        [
          'ssh',
          '-q',
          '-i',
          image.clientKey,
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'ConnectTimeout=2',
          '-o',
          'BatchMode=yes',
          '-p',
          String(port),
          'root@127.0.0.1',
          'true',
        ],
        { check: false },
      );
      if (ssh.code === 0) return (performance.now() - started) / 1000;
      if (performance.now() - started > 300_000) throw new Error('plain boot did not reach SSH in 300 s');
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    qemu.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lab: driver create + start, then the SSH wait the orchestrator uses. */
async function labBoot(image: Image, round: number): Promise<number> {
  const driver = new QemuDriver();
  const dir = mkdtempSync(join(tmpdir(), 'bench-lab-'));
  const vm = await driver.create({
    runId: `bench${process.pid}`,
    name: `node${round}`,
    arch: 'amd64',
    cpus: 2,
    memoryMiB: 1024,
    image,
    stateDir: join(dir, 'state'),
    logDir: join(dir, 'logs'),
  });
  const started = performance.now();
  try {
    await vm.start();
    const session = await connectWhenReady(vm.ssh, { what: 'SSH', timeoutMs: 300_000, stillBooting: () => vm.exitReason() });
    const seconds = (performance.now() - started) / 1000;
    session.close();
    return seconds;
  } finally {
    await vm.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const image = await ensureImage(recipeFor('base', 'amd64'), { log });
const plain: number[] = [];
const lab: number[] = [];
for (let round = 1; round <= rounds; round++) {
  plain.push(await plainBoot(image));
  lab.push(await labBoot(image, round));
  log.info(`round ${round}: plain qemu ${plain.at(-1)?.toFixed(1)} s, lab ${lab.at(-1)?.toFixed(1)} s`);
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
log.info(`boot-to-SSH over ${rounds} round(s), amd64, TCG, 2 vCPU, 1 GiB:`);
log.info(`  plain qemu-system-x86_64 (baseline): mean ${mean(plain).toFixed(1)} s  [${plain.map((x) => x.toFixed(1)).join(', ')}]`);
log.info(`  lab qemu driver:                     mean ${mean(lab).toFixed(1)} s  [${lab.map((x) => x.toFixed(1)).join(', ')}]`);
log.info(`  ratio lab / baseline: ${(mean(lab) / mean(plain)).toFixed(2)}`);
