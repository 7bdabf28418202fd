import { json, route, type Request, type Route } from './http.js';
import type { EndpointsFor, Tokens } from './keystone.js';

/**
 * Glance v2 with no images. The VMs boot from the lab's own images, not Glance's, but today's
 * openstackclient makes an image client for `volume create` and `server list` whether or not it
 * needs one, and fails without an image endpoint in the catalog.
 */
export function glanceRoutes(tokens: Tokens, endpoints: EndpointsFor): Route[] {
  const version = (request: Request) => ({
    id: 'v2.3',
    status: 'CURRENT',
    links: [{ rel: 'self', href: `${endpoints(request.host).image}/v2/` }],
  });
  return [
    route('GET', /^\/(?:versions)?$/, (request) => json(300, { versions: [version(request)] })),
    route('GET', /^\/v2\/images$/, (request) => {
      tokens.check(request);
      return json(200, { images: [], schema: '/v2/schemas/images', first: '/v2/images' });
    }),
  ];
}
