import { copyFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Vm } from '../../machines/driver.js';
import type { LiveNode, RunContext } from '../context.js';
import type { RunCloud } from './cloud.js';

/**
 * Saves each node's journal and its containers' logs into the run's logs (best effort: a dead node
 * has none to give), and the run's cloud's request log, which holds no credential.
 */
export async function collectJournals(ctx: RunContext, nodes: LiveNode[], cloud?: RunCloud): Promise<void> {
  if (cloud && existsSync(join(cloud.dir, 'cloud.log'))) copyFileSync(join(cloud.dir, 'cloud.log'), join(ctx.logsDir, 'cloud.log'));
  await Promise.all(
    nodes.map(async ({ name, machine }) => {
      const journal = await machine.exec('journalctl -b --no-pager -o short-precise', { timeout: 30 }).catch(() => undefined);
      const containers = await machine.exec(CONTAINER_LOGS, { timeout: 60 }).catch(() => undefined);
      mkdirSync(join(ctx.logsDir, name), { recursive: true });
      if (journal) writeFileSync(join(ctx.logsDir, name, 'journal.log'), journal.stdout);
      if (containers?.stdout.trim()) writeFileSync(join(ctx.logsDir, name, 'containers.log'), containers.stdout);
    }),
  );
}

/**
 * Every container of the node's Docker daemons (the main one and the guide's bootstrap one), with
 * the tail of its log. The logs are read from the json-file driver's files: a `docker logs` per
 * container costs seconds each under emulation, and a cluster node holds dozens of containers.
 */
const CONTAINER_LOGS = `command -v docker >/dev/null || exit 0
for host in unix:///var/run/docker.sock unix:///var/run/docker-bootstrap.sock; do
  [ -S "\${host#unix://}" ] || continue
  root=$(docker -H "$host" info --format '{{.DockerRootDir}}' 2>/dev/null)
  docker -H "$host" ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Image}} {{.Status}}' 2>/dev/null | while read -r id rest; do
    echo "=== $host $rest"
    file="$root/containers/$id/$id-json.log"
    if [ -n "$root" ] && [ -r "$file" ]; then
      tail -n 300 "$file" | sed -e 's/^{"log":"//' -e 's/","stream":.*$//' -e 's/\\\\n$//' -e 's/\\\\"/"/g' -e 's/\\\\t/\t/g' \\
        -e 's/\\\\u003c/</g' -e 's/\\\\u003e/>/g' -e 's/\\\\u0026/\\&/g' -e 's/\\\\\\\\/\\\\/g'
    else
      docker -H "$host" logs --tail 300 "$id" 2>&1
    fi
  done
done`;

/**
 * Stops the VMs at once and releases everything the run holds. No guest is shut down cleanly: its
 * overlay is thrown away and its logs are already saved, and a provisioned node's shutdown (Docker
 * stopping a dozen containers under emulation) outlasted a 20 s grace every time.
 */
export async function destroy(ctx: RunContext, vms: Vm[]): Promise<void> {
  await Promise.all(vms.map((vm) => vm.stop().catch(() => undefined)));
  await ctx.scope.dispose();
  if (ctx.scope.errors.length) throw new AggregateError(ctx.scope.errors, `cleanup failed for ${ctx.scope.errors.length} resources`);
}
