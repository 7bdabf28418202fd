/**
 * Flocker's `openstack` dataset backend (flocker/node/agents/cinder.py, 1.13/1.14), for real
 * against the lab's emulated OpenStack: a dataset's volume is a Cinder volume of its size in GiB,
 * named `flocker-<dataset_id>` with the metadata flocker-cluster-id and flocker-dataset-id; it is
 * attached to this node's own Nova server (the ACTIVE server whose addresses this node holds) by
 * Nova, found as /dev/disk/by-id/virtio-<the volume id's first 20 characters>, formatted ext4 once
 * and mounted at /flocker/<dataset_id>. A dataset whose primary moves is unmounted and detached
 * here, and attached and mounted on its new node, data and all. Every volume of the cluster is in
 * Cinder for every node to see, so each node reports them all, with `path` where it has one mounted.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readMounts, run } from './loopback.js';
import { EndpointNotFound, OpenStackSession, type OpenStackConfig } from './openstack-client.js';
import { DEFAULT_MAXIMUM_SIZE, isUuid } from './schema.js';
import type { AgentConfiguration, AgentDataset, ReportedDataset } from './types.js';

const GIB = 1024 ** 3;
export const CLUSTER_ID_LABEL = 'flocker-cluster-id';
export const DATASET_ID_LABEL = 'flocker-dataset-id';
/** How long a Cinder state change may take before the round gives up (Flocker waited up to 600 s; the next round tries again). */
const STATE_WITHIN_MS = 120_000;
/**
 * Where Flocker's packages kept the backend's module. The fork's quick fix for #2841 replaced this
 * file; the emulated agent reads the Cinder adapter table's keys from it when it is there.
 */
export const CINDER_MODULE = '/opt/flocker/lib/python2.7/site-packages/flocker/node/agents/cinder.py';

interface CinderVolume {
  id: string;
  status: string;
  size: number;
  metadata: Record<string, string>;
  attachments: { server_id: string; device: string }[];
}

/** CinderAPIVersionDetectionFailure: neither v2 nor v1 has an endpoint in the catalog. */
export class CinderAPIVersionDetectionFailure extends Error {
  override name = 'CinderAPIVersionDetectionFailure';
  constructor(errors: Error[]) {
    super(`CinderAPIVersionDetectionFailure(endpoint_errors=[${errors.map((e) => `EndpointNotFound('${e.message}',)`).join(', ')}])`);
  }
}

/**
 * How this Flocker release finds the adapter for the client's Cinder API version. 1.13.0 looked
 * the client's version string ("2.0" from python-cinderclient 1.8.0) up in a table keyed "2" and
 * "1": a KeyError (#2841). 1.14.0 looks up the major version. A replaced cinder.py (the fork's fix)
 * brings its own table: its keys are read from the file.
 */
export function adapterLookup(release: string, moduleFile = CINDER_MODULE): (clientVersion: string) => string {
  const table = existsSync(moduleFile)
    ? [...readFileSync(moduleFile, 'utf8').matchAll(/dict\(\s*version\s*=\s*u?["']([^"']+)["']/g)].map((m) => m[1] as string)
    : release === '1.13.0'
      ? ['2', '1']
      : undefined;
  return (clientVersion) => {
    const key = table ? clientVersion : (clientVersion.split('.')[0] ?? clientVersion);
    if (table && !table.includes(key)) throw Object.assign(new Error(`u'${key}'`), { name: 'KeyError' });
    return key;
  };
}

/** Picks the Cinder API as Flocker did: v2, then v1, the first whose `GET volumes?limit=1` answers; returns its catalog type and the version string cinderclient reported. */
async function detectCinder(session: OpenStackSession): Promise<{ type: string; version: string }> {
  const errors: Error[] = [];
  for (const [type, version] of [
    ['volumev2', '2.0'],
    ['volume', '1.0'],
  ] as const) {
    try {
      await session.call(type, 'GET', '/volumes?limit=1');
      return { type, version };
    } catch (error) {
      if (!(error instanceof EndpointNotFound)) throw error;
      errors.push(error);
    }
  }
  throw new CinderAPIVersionDetectionFailure(errors);
}

/** This node's IPv4 addresses (Flocker's get_all_ips). */
const localIps = (): Set<string> =>
  new Set(
    Object.values(networkInterfaces())
      .flat()
      .filter((a) => a?.family === 'IPv4')
      .map((a) => a?.address as string),
  );

export class CinderBackend {
  private cinder: { type: string; v1: boolean } | undefined;
  private serverId: string | undefined;
  private readonly notices = new Map<string, string>();

  constructor(
    private readonly session: OpenStackSession,
    readonly clusterId: string,
    readonly mountRoot: string,
    private readonly lookup: (clientVersion: string) => string,
    /** Where udev links virtio disks by serial, and this node's addresses (both the system's, unless a test says otherwise). */
    private readonly host: { byIdDir: string; ips: () => Set<string> } = { byIdDir: '/dev/disk/by-id', ips: localIps },
  ) {}

  static create(config: OpenStackConfig, clusterId: string, mountRoot: string, release: string): CinderBackend {
    return new CinderBackend(new OpenStackSession(config), clusterId, mountRoot, adapterLookup(release));
  }

  /** Keystone, then the Cinder API and its adapter: what cinder_from_configuration did (at start-up in 1.13, in the loop from 1.14). */
  async connect(): Promise<void> {
    if (this.cinder) return;
    await this.session.authenticate();
    const { type, version } = await detectCinder(this.session);
    const major = this.lookup(version);
    this.cinder = { type, v1: major.startsWith('1') };
  }

  private async volumes(): Promise<CinderVolume[]> {
    await this.connect();
    const { volumes } = await this.session.call<{ volumes: CinderVolume[] }>(this.cinder!.type, 'GET', '/volumes/detail');
    return volumes.filter((v) => v.metadata?.[CLUSTER_ID_LABEL] === this.clusterId && isUuid(v.metadata?.[DATASET_ID_LABEL] ?? ''));
  }

  private async volume(id: string): Promise<CinderVolume | undefined> {
    try {
      return (await this.session.call<{ volume: CinderVolume }>(this.cinder!.type, 'GET', `/volumes/${id}`)).volume;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Waits for a volume to reach `wanted` through the `passing` states, as Flocker's
   * VolumeStateMonitor did: they are listed in the order they occur, and once one is seen the ones
   * before it are no longer valid (an attach that went `attaching` and then `available` failed).
   * `expected` is the object Flocker waited on, as its repr showed in the error.
   */
  private async waitFor(id: string, wanted: string | 'gone', passing: string[], expected = `<Volume: ${id}>`): Promise<void> {
    const deadline = Date.now() + STATE_WITHIN_MS;
    let valid = passing;
    for (;;) {
      const volume = await this.volume(id);
      const status = volume?.status ?? 'gone';
      if (status === wanted) return;
      if (volume && !valid.includes(status))
        throw new Error(
          `UnexpectedStateException: Unexpected state while waiting for volume. Expected Volume: ${expected}, Expected State: u'${wanted}', Reached State: u'${status}'`,
        );
      valid = valid.slice(Math.max(0, valid.indexOf(status)));
      if (Date.now() > deadline)
        throw new Error(
          `TimeoutException: Timed out while waiting for volume. Expected Volume: ${expected}, Expected State: u'${wanted}', Elapsed Time: ${STATE_WITHIN_MS / 1000}`,
        );
      await sleep(1000);
    }
  }

  /** This node's Nova server: the one ACTIVE server whose addresses this node holds. */
  private async computeInstanceId(): Promise<string> {
    if (this.serverId) return this.serverId;
    const { servers } = await this.session.call<{
      servers: { id: string; status: string; addresses: Record<string, { addr: string }[]> }[];
    }>('compute', 'GET', '/servers/detail');
    const mine = this.host.ips();
    const matching = servers.filter(
      (s) =>
        s.status === 'ACTIVE' &&
        Object.values(s.addresses)
          .flat()
          .some((a) => mine.has(a.addr)),
    );
    if (matching.length !== 1)
      throw new Error(`UnknownInstanceID: no single ACTIVE Nova server has one of this node's addresses (${[...mine].join(', ')})`);
    this.serverId = (matching[0] as { id: string }).id;
    return this.serverId;
  }

  mountPointOf(datasetId: string): string {
    return join(this.mountRoot, datasetId);
  }

  private realMountPoint(datasetId: string): string {
    mkdirSync(this.mountRoot, { recursive: true });
    return join(realpathSync(this.mountRoot), datasetId);
  }

  /** The device a volume attached here has: its virtio serial link, resolved (mountinfo names the real device). */
  private deviceOf(volume: CinderVolume): string | undefined {
    const link = join(this.host.byIdDir, `virtio-${volume.id.slice(0, 20)}`);
    return existsSync(link) ? realpathSync(link) : undefined;
  }

  async observe(): Promise<ReportedDataset[]> {
    const mounts = readMounts();
    return (await this.volumes()).map((volume) => {
      const id = volume.metadata[DATASET_ID_LABEL] as string;
      const device = this.deviceOf(volume);
      const mounted = device !== undefined && (mounts.get(this.realMountPoint(id)) ?? []).includes(device);
      return { dataset_id: id, maximum_size: volume.size * GIB, ...(mounted ? { path: this.mountPointOf(id) } : {}) };
    });
  }

  async converge(myUuid: string, configuration: AgentConfiguration, log: (line: string) => void): Promise<ReportedDataset[]> {
    const me = myUuid.toLowerCase();
    const server = await this.computeInstanceId();
    const volumes = await this.volumes();
    const noticed = new Set<string>();
    const notice = (key: string, message: string): void => {
      noticed.add(key);
      if (this.notices.get(key) !== message) log(message);
      this.notices.set(key, message);
    };
    const leased = new Set(configuration.leases.filter((l) => l.node_uuid.toLowerCase() === me).map((l) => l.dataset_id));
    for (const dataset of configuration.datasets) {
      if (!isUuid(dataset.dataset_id)) continue;
      const volume = volumes.find((v) => v.metadata[DATASET_ID_LABEL] === dataset.dataset_id);
      try {
        await this.convergeDataset(me, server, dataset, volume, leased.has(dataset.dataset_id), log, (m) => notice(dataset.dataset_id, m));
      } catch (error) {
        notice(dataset.dataset_id, `dataset ${dataset.dataset_id}: ${(error as Error).message}`);
      }
    }
    for (const key of this.notices.keys()) if (!noticed.has(key)) this.notices.delete(key);
    return this.observe();
  }

  private async convergeDataset(
    me: string,
    server: string,
    dataset: AgentDataset,
    found: CinderVolume | undefined,
    leasedHere: boolean,
    log: (line: string) => void,
    notice: (message: string) => void,
  ): Promise<void> {
    const id = dataset.dataset_id;
    const type = this.cinder!.type;
    const mountPoint = this.mountPointOf(id);
    const realMountPoint = this.realMountPoint(id);
    let volume = found;
    const attachedTo = volume?.attachments[0]?.server_id;

    if (!dataset.deleted && dataset.primary.toLowerCase() === me) {
      if (!volume) {
        const size = Math.max(1, Math.ceil((dataset.maximum_size ?? DEFAULT_MAXIMUM_SIZE) / GIB));
        const name = `flocker-${id}`;
        const metadata = { [CLUSTER_ID_LABEL]: this.clusterId, [DATASET_ID_LABEL]: id };
        const body = { volume: { size, metadata, ...(this.cinder!.v1 ? { display_name: name } : { name }) } };
        const created = (await this.session.call<{ volume: CinderVolume }>(type, 'POST', '/volumes', body)).volume;
        await this.waitFor(created.id, 'available', ['creating']);
        log(`dataset ${id}: created Cinder volume ${created.id} (${size} GiB)`);
        volume = (await this.volume(created.id)) as CinderVolume;
      }
      if (attachedTo && attachedTo !== server) {
        notice(`dataset ${id}: its volume ${volume.id} is attached to server ${attachedTo}; waiting for it to be detached there`);
        return;
      }
      if (!attachedTo) {
        if (volume.status !== 'available') {
          notice(`dataset ${id}: its volume ${volume.id} is ${volume.status}; waiting`);
          return;
        }
        const { volumeAttachment } = await this.session.call<{ volumeAttachment: { id: string } }>(
          'compute',
          'POST',
          `/servers/${server}/os-volume_attachments`,
          { volumeAttachment: { volumeId: volume.id, device: null } },
        );
        await this.waitFor(volume.id, 'in-use', ['available', 'attaching'], `<VolumeAttachment: ${volumeAttachment.id}>`).catch(
          (error: Error) => {
            throw new Error(`attaching Cinder volume ${volume!.id} to this node's server ${server} failed: ${error.message}`);
          },
        );
        log(`dataset ${id}: attached Cinder volume ${volume.id} to this node's server ${server}`);
        volume = (await this.volume(volume.id)) as CinderVolume;
      }
      let device = this.deviceOf(volume);
      for (let i = 0; i < 30 && !device; i++) {
        await sleep(1000);
        device = this.deviceOf(volume);
      }
      if (!device)
        throw new Error(`UnattachedVolume: ${join(this.host.byIdDir, `virtio-${volume.id.slice(0, 20)}`)} did not appear within 30 s`);
      const mounted = readMounts().get(realMountPoint) ?? [];
      if (mounted.length) {
        if (!mounted.includes(device))
          throw new Error(`${mountPoint} is mounted from ${mounted.join(', ')}, not from ${device}; leaving it alone`);
        return;
      }
      const probe = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device]);
      if (probe.code === 2) {
        const made = await run('mkfs.ext4', ['-q', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', device]);
        if (made.code !== 0) throw new Error(`mkfs.ext4 ${device}: ${made.stderr.trim()}`);
        log(`dataset ${id}: made an ext4 file system on ${device}`);
      } else if (probe.stdout.trim() !== 'ext4') {
        throw new Error(`${device} holds ${probe.stdout.trim() || 'something blkid cannot read'}, not ext4; not formatting or mounting it`);
      }
      mkdirSync(mountPoint, { recursive: true });
      const mount = await run('mount', ['-t', 'ext4', '-o', 'noinit_itable', device, mountPoint]);
      if (mount.code !== 0) throw new Error(`mount ${device} ${mountPoint}: ${mount.stderr.trim()}`);
      log(`dataset ${id}: mounted ${device} at ${mountPoint}`);
      return;
    }

    // Deleted, or its primary is another node: nothing of it may stay mounted or attached here.
    const why = dataset.deleted ? 'deleted' : `moved to node ${dataset.primary.toLowerCase()}`;
    const mounted = readMounts().has(realMountPoint);
    if (leasedHere && (mounted || attachedTo === server)) {
      notice(`dataset ${id}: ${why}, but this node holds a lease on it; leaving it as it is`);
      return;
    }
    for (let i = 0; i < 8 && readMounts().has(realMountPoint); i++) {
      const result = await run('umount', [mountPoint]);
      if (result.code !== 0) throw new Error(`umount ${mountPoint}: ${result.stderr.trim()}`);
      log(`dataset ${id}: ${why}; unmounted ${mountPoint}`);
    }
    if (readMounts().has(realMountPoint)) throw new Error(`${mountPoint} is still mounted`);
    if (mounted) {
      try {
        rmdirSync(mountPoint);
      } catch {
        // not empty or already gone: leave it
      }
    }
    if (volume && attachedTo === server) {
      await this.session.call('compute', 'DELETE', `/servers/${server}/os-volume_attachments/${volume.id}`);
      await this.waitFor(volume.id, 'available', ['in-use', 'detaching']);
      log(`dataset ${id}: ${why}; detached Cinder volume ${volume.id} from this node's server`);
      volume = (await this.volume(volume.id)) as CinderVolume;
    }
    // A deleted dataset's volume is destroyed by its primary once nothing has it attached.
    if (dataset.deleted && volume && dataset.primary.toLowerCase() === me && !volume.attachments.length) {
      await this.session.call(type, 'DELETE', `/volumes/${volume.id}`);
      await this.waitFor(volume.id, 'gone', ['deleting', 'available']);
      log(`dataset ${id}: deleted; destroyed Cinder volume ${volume.id}`);
    }
  }
}
