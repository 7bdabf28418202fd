import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cinderRoutes } from './cinder.js';
import { glanceRoutes } from './glance.js';
import { hypervisorHotplug, type Hotplug } from './hotplug.js';
import { router } from './http.js';
import { keystoneRoutes, Tokens, type EndpointsFor } from './keystone.js';
import { novaRoutes } from './nova.js';
import { hypervisorPower, type PowerStates } from './power.js';
import { readIdentity, VolumeStore } from './state.js';

/**
 * The guests' view of the cloud: one address on their management network, where QEMU's user
 * networking hands each connection to the cloud on the host's 127.0.0.1 (`guestfwd`). The ports
 * are the ones a 2016 OpenStack used, so an agent.yml reads as it did (auth_url
 * http://10.0.2.100:5000/v2.0).
 */
export const GUEST_ADDRESS = '10.0.2.100';
export const GUEST_PORTS = { identity: 5000, volume: 8776, compute: 8774, image: 9292 } as const;
export type ServiceName = keyof typeof GUEST_PORTS;

export type CloudPorts = Record<ServiceName, number>;

export interface RunningCloud {
  ports: CloudPorts;
  /** Forgets every volume (a kept run's VMs were reset to a layer, which holds none). */
  forgetVolumes(): void;
  close(): Promise<void>;
}

/**
 * Serves the cloud of the state folder `dir` on 127.0.0.1 only: Keystone, Cinder, Nova and Glance each on
 * a port of its own (0: any free one). A client on the host is answered with a catalog of
 * 127.0.0.1 addresses, a guest with the guest address and the classic ports.
 */
export async function serveCloud(
  dir: string,
  options: { ports?: Partial<CloudPorts>; hotplug?: Hotplug; power?: PowerStates; log?: (line: string) => void } = {},
): Promise<RunningCloud> {
  const identity = readIdentity(dir);
  const tokens = new Tokens(identity);
  const store = new VolumeStore(dir);
  const log = options.log ?? (() => undefined);
  const ports: CloudPorts = { identity: 0, volume: 0, compute: 0, image: 0 };
  const endpoints: EndpointsFor = (host) => {
    const guest = host === GUEST_ADDRESS;
    const url = (service: ServiceName) => `http://${host}:${guest ? GUEST_PORTS[service] : ports[service]}`;
    return { identity: url('identity'), volume: url('volume'), compute: url('compute'), image: url('image') };
  };
  const tables = {
    identity: keystoneRoutes(identity, tokens, endpoints),
    volume: cinderRoutes(identity, tokens, store, endpoints),
    compute: novaRoutes(
      identity,
      tokens,
      store,
      options.hotplug ?? hypervisorHotplug(),
      options.power ?? hypervisorPower(),
      dir,
      log,
      endpoints,
    ),
    image: glanceRoutes(tokens, endpoints),
  };
  const servers: HttpServer[] = [];
  for (const service of Object.keys(tables) as ServiceName[]) {
    const server = createServer(
      { keepAliveTimeout: 65_000 },
      router(tables[service], (line) => log(`${service}: ${line}`)),
    );
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.ports?.[service] ?? 0, '127.0.0.1', () => resolve());
    });
    ports[service] = (server.address() as AddressInfo).port;
  }
  return {
    ports,
    forgetVolumes: () => store.clear(),
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}
