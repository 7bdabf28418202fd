import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { run } from '../util/proc.js';

/** Set in the lab that runs inside the namespace, so it does not isolate itself again. */
export const ISOLATED_ENV = 'LAB_ISOLATED';

export const isIsolated = (): boolean => process.env[ISOLATED_ENV] === '1';

/** The network namespace of a process, as the kernel names it (net:[4026532...]). */
export const netnsOf = (pid: number | 'self' = 'self'): string => readlinkSync(`/proc/${pid}/ns/net`);

/**
 * `--isolate`: runs this same lab command again inside a fresh network namespace (`unshare
 * --net`), where nothing is reachable but a loopback and what the run itself creates there (its
 * VMs' user networks, a libvirtd and its NAT network, dnsmasq). The namespace has no name and no
 * file: it ends with the last process in it, so nothing can be left of it. The inner lab dies with
 * this one (pdeathsig) and gets its signals from it. Resolves with the inner lab's exit code.
 */
export function runIsolated(argv: string[]): Promise<number> {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', process.execPath, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, [ISOLATED_ENV]: '1' },
    // Its own process group: a terminal's Ctrl-C reaches it once, forwarded from here.
    detached: true,
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      process.stderr.write(`lab: could not create a network namespace: ${error.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

/** Inside the namespace: bring the loopback up and say what the lab can reach. */
export async function enterIsolation(): Promise<string> {
  await run(['ip', 'link', 'set', 'lo', 'up']);
  const links = (await run(['ip', '-o', 'link', 'show'])).stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':')[1]?.trim());
  return `isolated in network namespace ${netnsOf()} (interfaces: ${links.join(', ')})`;
}
