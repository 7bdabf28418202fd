import { readdirSync, readFileSync } from 'node:fs';

/** Every process on the host with its argument vector (processes that vanish while listed are left out). */
export function processes(): { pid: number; args: string[] }[] {
  const found: { pid: number; args: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.push({ pid: Number(entry), args: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') });
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}
