import { describe, expect, test } from 'vitest';
import { preparePod } from '../../payloads/hyperkube/objects.js';
import { flockerClientOptions, FlockerVolumes, setUpFlockerVolume, type FlockerApi } from '../../payloads/hyperkube/flocker-volume.js';

/**
 * The emulated kubelet's flocker volume, against a control service kept in memory: the plugin's
 * lookups by name, its errors, and the move of the primary with the wait for the agent's state.
 */

const ME = { host: '10.77.0.12', uuid: 'b0b0b0b0-0000-4000-8000-000000000012' };
const OTHER = { host: '10.77.0.11', uuid: 'a0a0a0a0-0000-4000-8000-000000000011' };
const ID = 'd5d5d5d5-0000-4000-8000-00000000000d';

interface Fake extends FlockerApi {
  moves: string[];
}

/** A control service with one dataset; `agentMovesAfter` polls after a move, the new primary's agent reports it attached. */
function fakeFlocker(options: { name?: string; primary: string; attached: boolean; agentMovesAfter?: number; deleted?: boolean }): Fake {
  let primary = options.primary;
  let attached = options.attached;
  let polls = 0;
  const moves: string[] = [];
  return {
    moves,
    listDatasets: async () => [
      {
        dataset_id: ID,
        primary,
        deleted: options.deleted ?? false,
        maximum_size: 134217728,
        metadata: options.name ? { name: options.name } : {},
      },
    ],
    datasetStates: async () => {
      if (moves.length && options.agentMovesAfter !== undefined && ++polls >= options.agentMovesAfter) attached = true;
      const statePrimary = moves.length && attached ? moves.at(-1) : options.primary;
      return attached ? [{ dataset_id: ID, primary: statePrimary, maximum_size: 134217728, path: `/flocker/${ID}` }] : [];
    },
    nodes: async () => [OTHER, ME],
    moveDataset: async (id: string, to: string) => {
      moves.push(to);
      primary = to;
      if (options.agentMovesAfter === undefined) attached = false;
      return { dataset_id: id, primary: to, deleted: false, maximum_size: 134217728, metadata: {} };
    },
  } as unknown as Fake;
}

describe('flocker volume plugin', () => {
  test('a named dataset attached to this node: its path, and nothing moved', async () => {
    const api = fakeFlocker({ name: 'www', primary: ME.uuid, attached: true });
    await expect(setUpFlockerVolume(api, 'www', ME.host)).resolves.toBe(`/flocker/${ID}`);
    expect(api.moves).toEqual([]);
  });

  test('no dataset of that name (a dataset made without -m name=...): "Configuration not found by Name"', async () => {
    const api = fakeFlocker({ primary: ME.uuid, attached: true });
    await expect(setUpFlockerVolume(api, 'www', ME.host)).rejects.toThrow('Configuration not found by Name');
    const deleted = fakeFlocker({ name: 'www', primary: ME.uuid, attached: true, deleted: true });
    await expect(setUpFlockerVolume(deleted, 'www', ME.host)).rejects.toThrow('Configuration not found by Name');
  });

  test('a dataset no agent reports: the plugin says it is not available in Flocker', async () => {
    const api = fakeFlocker({ name: 'www', primary: ME.uuid, attached: false });
    await expect(setUpFlockerVolume(api, 'www', ME.host)).rejects.toThrow(
      "The volume 'www' is not available in Flocker. You need to create this manually with Flocker CLI before using it.",
    );
  });

  test('a dataset on another node: this node is made primary and the plugin waits for the agent', async () => {
    const api = fakeFlocker({ name: 'www', primary: OTHER.uuid, attached: true, agentMovesAfter: 3 });
    await expect(setUpFlockerVolume(api, 'www', ME.host, { tickMs: 5, deadlineMs: 1000 })).resolves.toBe(`/flocker/${ID}`);
    expect(api.moves).toEqual([ME.uuid]);
  });

  test('the agent never attaches it here: the plugin gives up at its deadline with its message', async () => {
    const api = fakeFlocker({ name: 'www', primary: OTHER.uuid, attached: true });
    await expect(setUpFlockerVolume(api, 'www', ME.host, { tickMs: 5, deadlineMs: 40 })).rejects.toThrow(
      `Timed out waiting for the dataset_id: '${ID}' to be moved to the primary: '${ME.uuid}'`,
    );
  });

  test('a kubelet whose address the control service does not know', async () => {
    const api = fakeFlocker({ name: 'www', primary: ME.uuid, attached: true });
    await expect(setUpFlockerVolume(api, 'www', '10.77.0.99')).rejects.toThrow("No node found with IP '10.77.0.99'");
  });

  test("FLOCKER_CONTROL_SERVICE_* with the plugin's defaults (an empty value is the default)", () => {
    expect(flockerClientOptions({})).toEqual({
      host: 'localhost',
      port: 4523,
      caFile: '/etc/flocker/cluster.crt',
      keyFile: '/etc/flocker/apiuser.key',
      certFile: '/etc/flocker/apiuser.crt',
    });
    expect(
      flockerClientOptions({
        FLOCKER_CONTROL_SERVICE_HOST: '10.77.0.11',
        FLOCKER_CONTROL_SERVICE_PORT: '',
        FLOCKER_CONTROL_SERVICE_CA_FILE: '/etc/flocker/cluster.crt',
        FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE: '/etc/flocker/kubernetes.key',
        FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE: '/etc/flocker/kubernetes.crt',
      }),
    ).toMatchObject({ host: '10.77.0.11', port: 4523, keyFile: '/etc/flocker/kubernetes.key', certFile: '/etc/flocker/kubernetes.crt' });
  });

  test("the kubelet side: set up in the background, the error posted as the pod's event, then tried again", async () => {
    const errors: string[] = [];
    const named = { name: undefined as string | undefined };
    const api = {
      listDatasets: async () => [
        { dataset_id: ID, primary: ME.uuid, deleted: false, maximum_size: 134217728, metadata: named.name ? { name: named.name } : {} },
      ],
      datasetStates: async () => [{ dataset_id: ID, primary: ME.uuid, path: `/flocker/${ID}` }],
      nodes: async () => [ME],
      moveDataset: async () => ({}),
    } as unknown as FlockerApi;
    const volumes = new FlockerVolumes({
      env: {},
      hostIp: ME.host,
      onError: (_pod, message) => errors.push(message),
      makeClient: () => api,
      retryMs: 10,
    });
    const pod = { metadata: { name: 'web', namespace: 'default', uid: 'u1' } };
    const volume = { name: 'data', flocker: { datasetName: 'www' } };
    expect(volumes.path(pod, volume)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(errors).toEqual(['Unable to mount volumes for pod "web_default(u1)": Configuration not found by Name']);
    expect(volumes.error(pod)).toBe('Configuration not found by Name');
    // The user creates the dataset with its name: the next sync's attempt finds it.
    named.name = 'www';
    expect(volumes.path(pod, volume)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(volumes.path(pod, volume)).toBe(`/flocker/${ID}`);
    expect(volumes.error(pod)).toBeUndefined();
    volumes.keepOnly(new Set());
    expect(volumes.error(pod)).toBeUndefined();
  });
});

describe('pod validation of flocker volumes', () => {
  const pod = (volume: object) => ({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }], volumes: [volume] } });
  test('a flocker volume needs its datasetName, without a slash', () => {
    expect(preparePod(pod({ name: 'data', flocker: {} }))).toEqual([
      ['spec.volumes[0].flocker.datasetName', 'FieldValueRequired', 'Required value'],
    ]);
    expect(preparePod(pod({ name: 'data', flocker: { datasetName: 'a/b' } }))[0]?.[0]).toBe('spec.volumes[0].flocker.datasetName');
    expect(preparePod(pod({ name: 'data', flocker: { datasetName: 'www' } }))).toEqual([]);
  });
});
