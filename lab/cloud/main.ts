import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveCloud } from './server.js';

/**
 * The cloud's own process: `node main.js <cloud folder>`. It serves the folder's cloud on
 * 127.0.0.1, writes the ports it got to `ports.json` once it listens, logs every request to
 * `cloud.log`, forgets its volumes on SIGHUP (a kept run's reset), and ends on SIGTERM. A process of its own, so that a kept run's cloud outlives
 * the lab as its VMs do (and is found, as the run's switch is, by the run folder on its command line).
 */
const dir = process.argv[2];
if (!dir) {
  console.error('usage: main.js <cloud folder>');
  process.exit(2);
}
const logFile = join(dir, 'cloud.log');
const log = (line: string) => appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
const cloud = await serveCloud(dir, { log });
writeFileSync(join(dir, 'ports.json.tmp'), `${JSON.stringify(cloud.ports)}\n`);
renameSync(join(dir, 'ports.json.tmp'), join(dir, 'ports.json'));
log(`serving on 127.0.0.1: ${JSON.stringify(cloud.ports)}`);
writeFileSync(join(dir, 'cloud.pid'), `${process.pid}\n`);
process.on('SIGHUP', () => {
  cloud.forgetVolumes();
  log('SIGHUP: every volume forgotten (the VMs were reset to a snapshot layer)');
});
const stop = () => void cloud.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
