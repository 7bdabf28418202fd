import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, ApiError, parseDuration, sleep, type Json } from './client.js';

/**
 * /kube-addons: v1.3's addon manager, which created the objects of /etc/kubernetes/addons (JSON
 * files, one object each) as soon as the apiserver answered, and re-created any that went away.
 */
const PLURAL: Record<string, string> = { ReplicationController: 'replicationcontrollers', Service: 'services', Pod: 'pods' };

async function main(): Promise<void> {
  const { flags } = parseFlagsOrExit('/kube-addons', process.argv.slice(2), { master: 'http://127.0.0.1:8080', addons: '/etc/kubernetes/addons', period: '60s' });
  const api = new ApiClient(flags.master);
  const where = 'kube-addons.go';
  const files = existsSync(flags.addons) ? readdirSync(flags.addons).filter((f) => f.endsWith('.json')).sort() : [];
  glog('I', where, `Addons from ${flags.addons}: ${files.join(', ') || 'none'}`);
  for (;;) {
    let pending = false;
    for (const file of files) {
      const object = JSON.parse(readFileSync(join(flags.addons, file), 'utf8')) as Json;
      const plural = PLURAL[object.kind];
      if (!plural) continue;
      const namespace = object.metadata?.namespace ?? 'default';
      try {
        await api.post(`/api/v1/namespaces/${namespace}/${plural}`, object);
        glog('I', where, `Created ${object.kind} ${namespace}/${object.metadata.name} from ${file}`);
      } catch (error) {
        if (error instanceof ApiError && error.code === 409) continue;
        pending = true;
        glog('W', where, `Cannot create ${object.kind} ${namespace}/${object.metadata?.name} yet: ${(error as Error).message}`);
      }
    }
    await sleep(pending ? 5000 : parseDuration(flags.period));
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
void main();
