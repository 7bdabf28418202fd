import { createServer } from 'node:http';
import { glog } from '../flags.js';

/** The master components' /healthz ("ok"), on their --address and --port, which the apiserver's componentstatuses asks. */
export function serveHealthz(address: string, port: number, where: string): void {
  if (!port) return;
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    response.writeHead(path === '/healthz' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(path === '/healthz' ? 'ok' : '404 page not found\n');
  });
  server.on('error', (error) => glog('E', where, `Unable to serve /healthz on ${address}:${port}: ${error.message}`));
  server.listen(port, address);
}
