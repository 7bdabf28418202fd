import { describe, expect, test } from 'vitest';
import { Logger } from '../../lab/util/log.js';
import { Scope } from '../../lab/util/scope.js';

describe('Scope', () => {
  test('releases run in reverse order of registration', async () => {
    const scope = new Scope();
    const order: string[] = [];
    for (const name of ['image', 'vm', 'ssh']) scope.defer(name, () => void order.push(name));
    await scope.dispose();
    expect(order).toEqual(['ssh', 'vm', 'image']);
    expect(scope.errors).toEqual([]);
  });

  test('a release run early through defer is not run again by dispose', async () => {
    const scope = new Scope();
    let calls = 0;
    const release = scope.defer('overlay', async () => {
      calls++;
    });
    await release();
    await release();
    expect(calls).toBe(1);
    await scope.dispose();
    expect(calls).toBe(1);
  });

  test('a throwing release is collected, logged, and the others still run', async () => {
    const output: string[] = [];
    const scope = new Scope(new Logger({ write: (text: string) => output.push(text) > 0 } as unknown as NodeJS.WritableStream));
    const ran: string[] = [];
    scope.defer('first', () => void ran.push('first'));
    scope.defer('broken', () => {
      throw new Error('device busy');
    });
    scope.defer('last', async () => {
      ran.push('last');
    });
    await scope.dispose();
    expect(ran).toEqual(['last', 'first']);
    expect(scope.errors).toHaveLength(1);
    expect(scope.errors[0]?.message).toBe('failed to clean up broken');
    expect((scope.errors[0]?.cause as Error).message).toBe('device busy');
    expect(output).toEqual(['WARNING: error during cleanup of broken: device busy\n']);
  });

  test('dispose is idempotent, also through Symbol.asyncDispose', async () => {
    const scope = new Scope();
    let calls = 0;
    scope.defer('vm', () => {
      calls++;
    });
    await scope.dispose();
    await scope.dispose();
    await scope[Symbol.asyncDispose]();
    expect(calls).toBe(1);
  });
});
