import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunContext } from '../context.js';

/** Seconds a guest gets to power off cleanly before its VM is killed. */
const POWEROFF_GRACE_MS = 20_000;

/** Saves each node's journal into the run's logs (best effort: a dead node has none to give). */
export async function collectJournals(ctx: RunContext): Promise<void> {
  await Promise.all(
    [...ctx.machines].map(async ([name, machine]) => {
      const result = await machine.exec('journalctl -b --no-pager -o short-precise', { timeout: 30 }).catch(() => undefined);
      if (!result) return;
      mkdirSync(join(ctx.logsDir, name), { recursive: true });
      writeFileSync(join(ctx.logsDir, name, 'journal.log'), result.stdout);
    }),
  );
}

/** Powers the guests off (then kills what does not stop) and releases everything the run holds. */
export async function destroy(ctx: RunContext): Promise<void> {
  // A user who pressed Ctrl-C wants the lab gone now, not a clean guest shutdown.
  const grace = ctx.signal.aborted ? 0 : POWEROFF_GRACE_MS;
  await Promise.all([...ctx.vms.values()].map((vm) => ctx.driver.stop(vm, grace).catch(() => undefined)));
  await ctx.scope.dispose();
  if (ctx.scope.errors.length) throw new AggregateError(ctx.scope.errors, `cleanup failed for ${ctx.scope.errors.length} resources`);
}
