import { describe, expect, test } from 'vitest';
import { NAMESPACES, NODES, Registry, StatusError } from '../../payloads/hyperkube/registry.js';
import { MemoryStore } from '../../payloads/hyperkube/store.js';

/** The v1 Status a failing call answers with. */
async function statusOf(call: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StatusError);
  return (error as StatusError).toStatus();
}

describe('apiserver stand-in: objects kept in etcd', () => {
  test('a node round-trips through the store with the metadata the server owns', async () => {
    const store = new MemoryStore();
    const registry = new Registry(store);
    const created = await registry.create(NODES, { metadata: { name: '10.77.0.12', labels: { 'kubernetes.io/hostname': '10.77.0.12' } } });
    expect(created.kind).toBe('Node');
    expect(created.metadata).toMatchObject({ name: '10.77.0.12', selfLink: '/api/v1/nodes/10.77.0.12', resourceVersion: '1' });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    // What etcd holds is the object itself, under Kubernetes' own key.
    const raw = await store.get('/registry/nodes/10.77.0.12');
    expect(JSON.parse(raw?.value ?? '{}').metadata.labels).toEqual({ 'kubernetes.io/hostname': '10.77.0.12' });
    expect(await registry.get(NODES, '10.77.0.12')).toEqual(created);
    const list = await registry.list(NODES);
    expect(list.kind).toBe('NodeList');
    expect((list.items as unknown[]).length).toBe(1);
  });

  test('404: a missing object, in the Status shape kubectl prints', async () => {
    expect(await statusOf(new Registry(new MemoryStore()).get(NODES, '10.77.0.99'))).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'nodes "10.77.0.99" not found',
      reason: 'NotFound',
      details: { name: '10.77.0.99', kind: 'nodes' },
      code: 404,
    });
  });

  test('409: creating an existing object, and updating from a stale resourceVersion', async () => {
    const registry = new Registry(new MemoryStore());
    const first = await registry.create(NAMESPACES, { metadata: { name: 'kube-system' } });
    const exists = await statusOf(registry.create(NAMESPACES, { metadata: { name: 'kube-system' } }));
    expect(exists).toMatchObject({ code: 409, reason: 'AlreadyExists', message: 'namespaces "kube-system" already exists' });
    await registry.update(NAMESPACES, 'kube-system', { ...first, metadata: { ...first.metadata, labels: { a: 'b' } } });
    const stale = await statusOf(registry.update(NAMESPACES, 'kube-system', first));
    expect(stale).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(String(stale.message)).toContain('the object has been modified');
  });

  test('422: a name that is missing or not a DNS label, with the field named in the causes', async () => {
    const registry = new Registry(new MemoryStore());
    const missing = await statusOf(registry.create(NODES, { metadata: {} }));
    expect(missing).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(missing.details).toMatchObject({ kind: 'Node', causes: [{ reason: 'FieldValueRequired', field: 'metadata.name' }] });
    const bad = await statusOf(registry.create(NAMESPACES, { metadata: { name: 'Not_A_Label' } }));
    expect(bad.message).toBe('Namespace "Not_A_Label" is invalid: metadata.name: Invalid value: "Not_A_Label": must be a DNS label');
  });

  test('delete removes the key, and a second delete is a 404', async () => {
    const store = new MemoryStore();
    const registry = new Registry(store);
    await registry.create(NODES, { metadata: { name: 'worker' } });
    await registry.delete(NODES, 'worker');
    expect(await store.get('/registry/nodes/worker')).toBeUndefined();
    expect(await statusOf(registry.delete(NODES, 'worker'))).toMatchObject({ code: 404, reason: 'NotFound' });
  });
});
