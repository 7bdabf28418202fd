import { fatal, glog, parseFlagsOrExit } from '../flags.js';
import { createApiServer } from './apiserver.js';
import { sleep } from './client.js';
import { controllerManager } from './controllers.js';
import { proxy } from './proxy.js';
import { kubelet } from './kubelet.js';
import { scheduler } from './scheduler.js';
import { reconcileMasterService } from './master-service.js';
import { NAMESPACES, Registry, StatusError } from './registry.js';
import { ServiceIpAllocator } from './service-ips.js';
import { EtcdV2Store } from './store.js';
import { goArch, kubeVersion } from './version.js';

/** /hyperkube <server> [flags]: the all-in-one binary of the hyperkube image, as the guide calls it. */
const SERVERS = ['apiserver', 'controller-manager', 'scheduler', 'kubelet', 'proxy'] as const;

async function apiserver(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube apiserver', argv, {
    'etcd-servers': '',
    'etcd-prefix': '/registry',
    'insecure-bind-address': '127.0.0.1',
    'insecure-port': '8080',
    'service-cluster-ip-range': '',
    'admission-control': 'AlwaysAdmit',
    'allow-privileged': false,
    'client-ca-file': '',
    'basic-auth-file': '',
    'token-auth-file': '',
    'tls-cert-file': '',
    'tls-private-key-file': '',
    'min-request-timeout': '1800',
    'secure-port': '6443',
    'bind-address': '0.0.0.0',
    'advertise-address': '',
    'service-node-port-range': '30000-32767',
    'runtime-config': '',
    'cloud-provider': '',
    v: '0',
    logtostderr: true,
  });
  const where = 'genericapiserver.go';
  if (!flags['etcd-servers']) fatal('server.go', 'specify either --etcd-servers or --etcd-config');
  if (!flags['service-cluster-ip-range']) fatal('server.go', 'No --service-cluster-ip-range specified');
  const endpoints = flags['etcd-servers'].split(',');
  const store = new EtcdV2Store(endpoints);
  // Wait a little for etcd (the kubelet starts us right after it), then give up as the real one does.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await store.list('/registry/namespaces');
      break;
    } catch (error) {
      if (Date.now() > deadline) fatal('etcd.go', `Failed to connect to etcd servers ${endpoints.join(',')}: ${(error as Error).message}`);
      await sleep(1000);
    }
  }
  const registry = new Registry(store);
  for (const name of ['default', 'kube-system']) {
    await registry.create(NAMESPACES, { metadata: { name } }).catch((error: unknown) => {
      if (!(error instanceof StatusError && error.code === 409)) throw error;
    });
  }
  const serviceIps = new ServiceIpAllocator(store, flags['service-cluster-ip-range']);
  const components = {
    'controller-manager': 'http://127.0.0.1:10252/healthz',
    scheduler: 'http://127.0.0.1:10251/healthz',
    ...Object.fromEntries(endpoints.map((endpoint, i) => [`etcd-${i}`, `${endpoint.replace(/\/+$/, '')}/health`])),
  };
  const server = createApiServer({ registry, serviceIps, version: kubeVersion(), arch: goArch(), components });
  const host = flags['insecure-bind-address'];
  const port = Number(flags['insecure-port']);
  server.on('error', (error) => fatal(where, `Unable to listen on ${host}:${port}: ${error.message}`));
  server.listen(port, host, () => glog('I', where, `Serving insecurely on ${host}:${port}`));
  // The `kubernetes` service and its endpoints, kept up to date as the real master's controller does.
  for (;;) {
    await reconcileMasterService(registry, serviceIps, { advertiseAddress: flags['advertise-address'], port }).catch((error: Error) =>
      glog('E', 'controller.go', `Unable to reconcile the kubernetes service: ${error.message}`),
    );
    await sleep(10_000);
  }
}

async function main(): Promise<void> {
  const [server, ...argv] = process.argv.slice(2);
  switch (server) {
    case 'apiserver':
      return apiserver(argv);
    case 'controller-manager':
      return controllerManager(argv);
    case 'kubelet':
      return kubelet(argv);
    case 'scheduler':
      return scheduler(argv);
    case 'proxy':
      return proxy(argv);
    case '--version':
    case 'version':
      process.stdout.write(`Kubernetes ${kubeVersion()}\n`);
      return;
    default:
      process.stderr.write(
        `${server ? `Error: unknown server: ${server}\n` : ''}Usage:\n  hyperkube <server> [flags]\n\nServers:\n${SERVERS.map((s) => `  ${s}`).join('\n')}\n`,
      );
      process.exit(1);
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
main().catch((error: Error) => fatal('hyperkube.go', error.message));
