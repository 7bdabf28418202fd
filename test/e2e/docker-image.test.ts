import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { leftovers, onlyRun, runLab } from './helpers.js';

describe('the docker image variant', () => {
  test("a node of the docker image runs Debian's Docker, and a container from an offline image pings the node", async () => {
    const result = await runLab(['run', 'test/scenarios/docker-node']);
    expect(result.code, result.output).toBe(0);
    const { runId, dir } = onlyRun(result);
    const log = readFileSync(`${dir}/logs/node1/provision-docker.log`, 'utf8');
    expect(log).toMatch(/docker server \d+\.\d+/);
    expect(log).toMatch(/eth0\s+inet 172\.17\.\d+\.\d+/);
    expect(log).toContain('docker ok');
    expect(leftovers(runId)).toEqual([]);
  });
});
