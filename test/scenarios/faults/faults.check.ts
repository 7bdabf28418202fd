import { describe, expect, test } from 'vitest';
import { step, useCluster } from '../../../lab/checks/api.js';

/**
 * The fault verbs of the check API, each on two-vms' worker and each seen from outside it: from
 * the master over the cluster link (a ping), and from its own SSH. Each verb comes back.
 */
const lab = useCluster();
const worker = lab.specs.find((s) => s.role === 'worker');
const workerAddress = worker?.address ?? '';
const bootId = 'cat /proc/sys/kernel/random/boot_id';

async function masterReaches(): Promise<boolean> {
  const master = await lab.node('master');
  return (await master.exec(`ping -c 2 -i 0.3 -W 1 ${workerAddress}`, { timeout: 20 })).code === 0;
}

describe('fault verbs', () => {
  test('block cuts the worker off the cluster link, unblock puts it back; SSH goes on meanwhile', async () => {
    const node = await lab.node('worker');
    expect(await masterReaches(), 'the master reaches the worker before the cut').toBe(true);
    await node.block();
    expect(await step('ping the worker from the master', masterReaches), 'the master still reaches the cut-off worker').toBe(false);
    // The management network is not the cluster link: the worker still answers SSH.
    expect((await node.succeed('echo still here')).trim()).toBe('still here');
    await node.unblock();
    expect(await step('ping the worker from the master', masterReaches), 'the master does not reach the worker after unblock').toBe(true);
  });

  test('pause freezes the worker (no answer on the link), resume lets it go on in the same boot', async () => {
    const node = await lab.node('worker');
    const before = (await node.succeed(bootId)).trim();
    await node.pause();
    expect(await step('ping the paused worker from the master', masterReaches), 'the master reaches the paused worker').toBe(false);
    await node.resume();
    expect((await node.succeed(bootId)).trim(), 'the worker booted again, a resume must not').toBe(before);
    expect(await masterReaches(), 'the master does not reach the resumed worker').toBe(true);
  });

  test('reboot resets the worker: it boots again (a new boot ID) and holds its cluster address again', async () => {
    const node = await lab.node('worker');
    const before = (await node.succeed(bootId)).trim();
    await node.reboot();
    expect((await node.succeed(bootId)).trim()).not.toBe(before);
    expect(await node.succeed('ip -o -4 addr show')).toContain(`inet ${workerAddress}/`);
    expect(await step('ping the rebooted worker from the master', masterReaches)).toBe(true);
  });

  test('crash powers the worker off (nothing answers), powerOn boots it from its disk; what it had synced is there', async () => {
    const node = await lab.node('worker');
    await node.succeed('echo kept > /root/synced && sync');
    const before = (await node.succeed(bootId)).trim();
    await node.crash();
    expect(await step('ping the crashed worker from the master', masterReaches), 'the master reaches the crashed worker').toBe(false);
    await node.powerOn();
    expect((await node.succeed(bootId)).trim()).not.toBe(before);
    expect((await node.succeed('cat /root/synced')).trim()).toBe('kept');
    expect(await masterReaches(), 'the master does not reach the worker after its power-on').toBe(true);
  });
});
