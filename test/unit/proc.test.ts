import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { CommandError } from '../../lab/util/errors.js';
import { isAlive, run } from '../../lab/util/proc.js';

/** Gone or a zombie: PID 1 in a container does not always reap orphans. */
function dead(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return !isAlive(pid);
  return /^\d+ \(.*\) Z/.test(readFileSync(stat, 'utf8'));
}

async function until(condition: () => boolean, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (condition()) return true;
  return condition();
}

describe('run', () => {
  test('returns stdout and stderr', async () => {
    const result = await run(['sh', '-c', 'echo out; echo err >&2']);
    expect(result).toEqual({ code: 0, stdout: 'out\n', stderr: 'err\n' });
  });

  test('passes input, env and cwd', async () => {
    const result = await run(['sh', '-c', 'cat; echo "$GREETING"; pwd'], {
      input: 'in\n',
      env: { ...process.env, GREETING: 'hi' },
      cwd: '/',
    });
    expect(result.stdout).toBe('in\nhi\n/\n');
  });

  test('a failing command throws CommandError with the exit code and output', async () => {
    const error = await run(['sh', '-c', 'echo oops; exit 3']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({ command: 'sh -c echo oops; exit 3', exitCode: 3, output: 'oops\n', where: 'host' });
    expect((error as Error).message).toBe('host: `sh -c echo oops; exit 3` exited with 3\noops');
  });

  test('check:false returns the exit code instead', async () => {
    expect(await run(['sh', '-c', 'echo oops; exit 3'], { check: false })).toEqual({ code: 3, stdout: 'oops\n', stderr: '' });
  });

  test('a command that cannot start rejects', async () => {
    await expect(run(['/nonexistent/lab-command'])).rejects.toThrow('failed to start /nonexistent/lab-command');
  });

  test('onLine gets complete lines from both streams, the unterminated last one included', async () => {
    const lines: string[] = [];
    await run(['sh', '-c', 'printf "a1\\na"; sleep 0.05; printf "2\\n"; printf "b1\\n" >&2; printf "tail"'], {
      onLine: (line, stream) => lines.push(`${stream}:${line}`),
    });
    expect(lines.filter((l) => l.startsWith('stdout:'))).toEqual(['stdout:a1', 'stdout:a2', 'stdout:tail']);
    expect(lines.filter((l) => l.startsWith('stderr:'))).toEqual(['stderr:b1']);
  });

  test('an aborted signal kills the command', async () => {
    const started = Date.now();
    await expect(run(['sleep', '30'], { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(run(['true'], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  test('group reports the process group and abort stops the whole group', async () => {
    const controller = new AbortController();
    let pgid = 0;
    let sleeper = 0;
    expect(dead(process.pid)).toBe(false);
    const started = Date.now();
    const running = run(['sh', '-c', 'sleep 30 & echo $!; wait'], {
      signal: controller.signal,
      group: (id) => (pgid = id),
      onLine: (line) => {
        sleeper = Number(line);
        controller.abort(new Error('stop'));
      },
    });
    await expect(running).rejects.toThrow('stop');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(pgid).toBeGreaterThan(0);
    expect(sleeper).toBeGreaterThan(0);
    expect(await until(() => dead(sleeper))).toBe(true);
    expect(await until(() => dead(pgid))).toBe(true);
  });
});
