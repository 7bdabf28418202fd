import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hotplug } from './hotplug.js';
import { badRequest, json, notFound, route, type Request, type Route } from './http.js';
import type { EndpointsFor, Tokens } from './keystone.js';
import { novaPower, type PowerState, type PowerStates } from './power.js';
import { readServers, type CloudIdentity, type Server, type Volume, type VolumeStore } from './state.js';

/**
 * Nova v2 and v2.1 for a cloud whose servers are the run's VMs: servers list, detail and show (the
 * addresses are the nodes' cluster addresses: Flocker found its own server by them), flavors (one
 * per VM size), and `os-volume_attachments`. An attach answers at once and does its work after, as
 * Nova's compute service did: the volume goes `attaching`, is hot-plugged into the VM, and is
 * `in-use`; an attach that fails puts it back to `available`. Detach likewise through `detaching`,
 * from a server that is off too (its disk leaves without the guest's help, as from a shut-off domain).
 * A server's status follows its VM's power (SHUTOFF once it is powered off or gone), and the list
 * filters on it as Nova's `status=` did.
 */

const MAX_MICROVERSION = '2.25';
/**
 * Nova's API casts an attach to nova-compute, which asks Cinder for the connection before libvirt
 * plugs the disk: the volume stayed `attaching` for a second or more, success or not (Flocker's
 * VolumeStateMonitor saw that state before the next one).
 */
const COMPUTE_WORK_MS = 1000;

const flavorId = (server: Server) => `lab-${server.vcpus}-${server.memoryMiB}`;

export function novaRoutes(
  identity: CloudIdentity,
  tokens: Tokens,
  store: VolumeStore,
  hotplug: Hotplug,
  power: PowerStates,
  dir: string,
  log: (line: string) => void,
  endpoints: EndpointsFor,
): Route[] {
  const base = (request: Request) => endpoints(request.host).compute;
  const versions = (request: Request) => [
    {
      id: 'v2.0',
      status: 'SUPPORTED',
      version: '',
      min_version: '',
      updated: '2011-01-21T11:33:21Z',
      links: [{ rel: 'self', href: `${base(request)}/v2/` }],
    },
    {
      id: 'v2.1',
      status: 'CURRENT',
      version: MAX_MICROVERSION,
      min_version: '2.1',
      updated: '2013-07-23T11:33:21Z',
      links: [{ rel: 'self', href: `${base(request)}/v2.1/` }],
    },
  ];

  /** Every API call: a valid token and the cloud's project, where the path names one. */
  function api(request: Request): Record<string, string> {
    tokens.check(request);
    const project = request.params[1];
    if (project && project !== identity.projectId) throw notFound(`Project ${project} could not be found.`);
    const asked =
      /compute\s+(\d+\.\d+)/i.exec(String(request.headers['openstack-api-version'] ?? ''))?.[1] ??
      String(request.headers['x-openstack-nova-api-version'] ?? '2.1');
    const micro = request.params[0] === '2' ? '2.0' : asked === 'latest' ? MAX_MICROVERSION : asked;
    return {
      'x-openstack-nova-api-version': micro,
      'openstack-api-version': `compute ${micro}`,
      vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
    };
  }

  const servers = () => readServers(dir);
  function server(id: string): Server {
    const found = servers().find((s) => s.id === id);
    if (!found) throw notFound(`Instance ${id} could not be found.`);
    return found;
  }

  const link = (request: Request, kind: string, id: string) => [
    { rel: 'self', href: `${base(request)}/v2.1/${identity.projectId}/${kind}/${id}` },
  ];
  const attachedTo = (id: string) => store.list().filter((v) => v.attachment?.serverId === id);

  function serverView(request: Request, s: Server, powered: PowerState) {
    const nova = novaPower(powered);
    return {
      id: s.id,
      name: s.name,
      status: nova.status,
      tenant_id: identity.projectId,
      user_id: identity.userId,
      metadata: {},
      hostId: s.id.slice(0, 8),
      image: '',
      flavor: { id: flavorId(s), links: link(request, 'flavors', flavorId(s)) },
      created: '2016-07-01T00:00:00Z',
      updated: '2016-07-01T00:00:00Z',
      addresses: { 'lab-cluster': [{ version: 4, addr: s.address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': s.mac }] },
      accessIPv4: '',
      accessIPv6: '',
      links: link(request, 'servers', s.id),
      key_name: null,
      config_drive: '',
      progress: 0,
      security_groups: [{ name: 'default' }],
      'OS-DCF:diskConfig': 'MANUAL',
      'OS-EXT-AZ:availability_zone': 'nova',
      'OS-EXT-STS:vm_state': nova.vmState,
      'OS-EXT-STS:task_state': null,
      'OS-EXT-STS:power_state': nova.powerState,
      'OS-SRV-USG:launched_at': '2016-07-01T00:00:00.000000',
      'OS-SRV-USG:terminated_at': null,
      'os-extended-volumes:volumes_attached': attachedTo(s.id).map((v) => ({ id: v.id })),
    };
  }

  /** Nova's `name` filter is a regular expression; `status` one of its statuses (another matches none). */
  async function listed(request: Request): Promise<{ server: Server; powered: PowerState }[]> {
    const name = request.query.get('name');
    const status = request.query.get('status')?.toUpperCase();
    let pattern: RegExp | undefined;
    try {
      pattern = name === null ? undefined : new RegExp(name);
    } catch {
      throw badRequest(`Invalid filter name: ${name}`);
    }
    const named = servers().filter((s) => !pattern || pattern.test(s.name));
    const powered = await Promise.all(named.map(async (server) => ({ server, powered: await power(server) })));
    return powered.filter((s) => status === undefined || novaPower(s.powered).status === status);
  }

  function flavors(request: Request) {
    const unique = new Map(servers().map((s) => [flavorId(s), s]));
    return [...unique.values()].map((s) => ({
      id: flavorId(s),
      name: flavorId(s),
      vcpus: s.vcpus,
      ram: s.memoryMiB,
      disk: 0,
      'OS-FLV-EXT-DATA:ephemeral': 0,
      'OS-FLV-DISABLED:disabled': false,
      'os-flavor-access:is_public': true,
      swap: '',
      rxtx_factor: 1.0,
      links: link(request, 'flavors', flavorId(s)),
    }));
  }

  const attachmentView = (s: Server, v: Volume) => ({ id: v.id, serverId: s.id, volumeId: v.id, device: v.attachment?.device ?? null });

  /** The next /dev/vdX Nova would have named (vda is the root disk). */
  function nextDevice(s: Server): string {
    const taken = new Set(attachedTo(s.id).map((v) => v.attachment?.device));
    for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
      const device = `/dev/vd${String.fromCharCode(c)}`;
      if (!taken.has(device)) return device;
    }
    throw badRequest(`No free disk device names for prefix 'vd'`);
  }

  function attach(request: Request) {
    const headers = api(request);
    const s = server(request.params[2] as string);
    const volumeId = (request.body as { volumeAttachment?: { volumeId?: string } })?.volumeAttachment?.volumeId;
    if (!volumeId) throw badRequest("Invalid input for field/attribute volumeAttachment. Value: None. 'volumeId' is a required property");
    const volume = store.get(volumeId);
    if (!volume) throw notFound(`Volume ${volumeId} could not be found.`);
    if (volume.status !== 'available')
      throw badRequest(`Invalid volume: volume '${volumeId}' status must be 'available'. Currently in '${volume.status}'`);
    const device = nextDevice(s);
    const attaching: Volume = {
      ...volume,
      status: 'attaching',
      attachment: { id: randomUUID(), serverId: s.id, device, attachedAt: new Date().toISOString() },
    };
    store.put(attaching);
    sleep(COMPUTE_WORK_MS)
      .then(() => hotplug.attach(s, { id: volume.id, file: store.file(volume.id), device }))
      .then(
        () => {
          store.put({ ...attaching, status: 'in-use', attachment: { ...attaching.attachment!, attachedAt: new Date().toISOString() } });
          log(`attached volume ${volume.id} to ${s.name} as ${device}`);
        },
        (error: Error) => {
          const { attachment: _none, ...rest } = attaching;
          store.put({ ...rest, status: 'available' });
          log(`attaching volume ${volume.id} to ${s.name} failed: ${error.message}`);
        },
      );
    return json(200, { volumeAttachment: attachmentView(s, attaching) }, headers);
  }

  function detach(request: Request) {
    const headers = api(request);
    const s = server(request.params[2] as string);
    const volumeId = request.params[3] as string;
    const volume = store.get(volumeId);
    if (!volume || volume.attachment?.serverId !== s.id) throw notFound(`volume_id not found: ${volumeId}`);
    if (volume.status !== 'in-use')
      throw badRequest(`Invalid volume: volume '${volumeId}' status must be 'in-use'. Currently in '${volume.status}'`);
    const detaching: Volume = { ...volume, status: 'detaching' };
    store.put(detaching);
    const { device } = volume.attachment;
    // A server that is off (crashed, say) lets its disk go without its guest.
    power(s)
      .then((powered) => hotplug.detach(s, { id: volume.id, device }, powered))
      .then(
        () => {
          const { attachment: _gone, ...rest } = detaching;
          store.put({ ...rest, status: 'available' });
          log(`detached volume ${volume.id} from ${s.name}`);
        },
        (error: Error) => {
          store.put({ ...detaching, status: 'in-use' });
          log(`detaching volume ${volume.id} from ${s.name} failed: ${error.message}`);
        },
      );
    return json(202, undefined, headers);
  }

  // /v2.1/..., /v2.1/<project>/... and /v2/<project>/...
  const prefix = String.raw`^\/v(2|2\.1)(?:\/([0-9a-f]{32}))?`;
  const at = (suffix: string) => new RegExp(`${prefix}${suffix}$`);
  return [
    route('GET', /^\/$/, (request) => json(300, { versions: versions(request) })),
    route('GET', /^\/v(2|2\.1)$/, (request) =>
      json(200, { version: versions(request).find((v) => v.id === `v${request.params[0] === '2' ? '2.0' : '2.1'}`) }),
    ),
    route('GET', at(String.raw`\/servers`), async (request) => {
      const headers = api(request);
      const list = await listed(request);
      return json(
        200,
        { servers: list.map(({ server: s }) => ({ id: s.id, name: s.name, links: link(request, 'servers', s.id) })) },
        headers,
      );
    }),
    route('GET', at(String.raw`\/servers\/detail`), async (request) => {
      const headers = api(request);
      const list = await listed(request);
      return json(200, { servers: list.map(({ server: s, powered }) => serverView(request, s, powered)) }, headers);
    }),
    route('GET', at(String.raw`\/servers\/([^/]+)`), async (request) => {
      const headers = api(request);
      const s = server(request.params[2] as string);
      return json(200, { server: serverView(request, s, await power(s)) }, headers);
    }),
    route('GET', at(String.raw`\/flavors(?:\/detail)?`), (request) => {
      const headers = api(request);
      return json(200, { flavors: flavors(request) }, headers);
    }),
    route('GET', at(String.raw`\/flavors\/([^/]+)`), (request) => {
      const headers = api(request);
      const flavor = flavors(request).find((f) => f.id === request.params[2]);
      if (!flavor) throw notFound(`Flavor ${request.params[2]} could not be found.`);
      return json(200, { flavor }, headers);
    }),
    route('GET', at(String.raw`\/servers\/([^/]+)\/os-volume_attachments`), (request) => {
      const headers = api(request);
      const s = server(request.params[2] as string);
      return json(200, { volumeAttachments: attachedTo(s.id).map((v) => attachmentView(s, v)) }, headers);
    }),
    route('POST', at(String.raw`\/servers\/([^/]+)\/os-volume_attachments`), attach),
    route('GET', at(String.raw`\/servers\/([^/]+)\/os-volume_attachments\/([^/]+)`), (request) => {
      const headers = api(request);
      const s = server(request.params[2] as string);
      const volume = attachedTo(s.id).find((v) => v.id === request.params[3]);
      if (!volume) throw notFound(`Volume attachment could not be found with filter: volume_id = ${request.params[3]}`);
      return json(200, { volumeAttachment: attachmentView(s, volume) }, headers);
    }),
    route('DELETE', at(String.raw`\/servers\/([^/]+)\/os-volume_attachments\/([^/]+)`), detach),
  ];
}
