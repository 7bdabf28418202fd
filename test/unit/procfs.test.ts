import { spawn } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { processes } from '../../lab/util/procfs.js';

describe('processes', () => {
  test('lists live processes with their argument vectors, and no longer lists one that ended', async () => {
    const child = spawn('sleep', ['37.5'], { stdio: 'ignore' });
    const pid = child.pid as number;
    expect(
      processes()
        .find((p) => p.pid === pid)
        ?.args.slice(0, 2),
    ).toEqual(['sleep', '37.5']);
    expect(processes().find((p) => p.pid === process.pid)?.args[0]).toContain('node');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(processes().some((p) => p.pid === pid)).toBe(false);
  });
});
