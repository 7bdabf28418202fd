import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { join } from 'node:path';
import type { Arch } from './arch.js';
import { stateDir } from '../util/paths.js';
import { run } from '../util/proc.js';

export type Accel = { kind: 'kvm' | 'tcg'; why: string };

const hostDebArch = (): Arch | undefined => (({ x64: 'amd64', arm64: 'arm64' }) as const)[hostArch() as 'x64' | 'arm64'];

/**
 * KVM only when it really works. Nested KVM on these hosts opens fine and then hangs the guest,
 * so we boot the image's kernel without a root disk under KVM: it panics and exits in about a
 * second when KVM works, and is killed after a few seconds when it does not. The answer is
 * cached for the host's boot. `LAB_ACCEL=kvm|tcg` overrides.
 */
export async function detectAccel(arch: Arch, qemuBinary: string, kernel: string): Promise<Accel> {
  const forced = process.env.LAB_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { kind: forced, why: 'LAB_ACCEL' };
  if (arch !== hostDebArch()) return { kind: 'tcg', why: `guest ${arch} on a ${hostDebArch() ?? hostArch()} host` };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { kind: 'tcg', why: 'no usable /dev/kvm' };
  }
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cacheFile = join(stateDir(), `kvm-probe-${bootId}.json`);
  if (existsSync(cacheFile)) return JSON.parse(readFileSync(cacheFile, 'utf8')) as Accel;
  const result = await probeKvm(qemuBinary, kernel);
  mkdirSync(stateDir(), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify(result));
  return result;
}

async function probeKvm(qemuBinary: string, kernel: string): Promise<Accel> {
  const started = performance.now();
  const probe = await run(
    [
      'timeout',
      '8',
      qemuBinary,
      '-accel',
      'kvm',
      '-M',
      'pc',
      '-m',
      '256',
      '-nodefaults',
      '-display',
      'none',
      '-no-reboot',
      '-kernel',
      kernel,
      '-append',
      'panic=-1 console=ttyS0',
      '-serial',
      'null',
    ],
    { check: false },
  );
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (probe.code === 0) return { kind: 'kvm', why: `KVM probe booted in ${secs} s` };
  return {
    kind: 'tcg',
    why:
      probe.code === 124 ? `KVM present but a probe guest hung for ${secs} s` : `KVM probe failed (${probe.stderr.trim().split('\n')[0]})`,
  };
}
