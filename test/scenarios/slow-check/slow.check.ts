import { test } from 'vitest';
import { step, useCluster } from '../../../lab/checks/api.js';

/** A check that waits two minutes on the node (as a check waiting for a slow cluster does). */
const lab = useCluster();

test('waits two minutes on node1', async () => {
  const node = await lab.node('node1');
  await step('sleep 120 on node1', () => node.succeed('echo "slow check started" && sleep 120'));
});
