import { glog, parseFlagsOrExit } from '../flags.js';
import { ApiClient, nowIso, parseDuration, sleep, type Json } from './client.js';

/**
 * controller-manager: the node controller marks a node's Ready condition Unknown ("Kubelet
 * stopped posting node status.") once its heartbeats are older than --node-monitor-grace-period,
 * which kubectl shows as NotReady.
 */
export async function controllerManager(argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit('/hyperkube controller-manager', argv, {
    master: '',
    'node-monitor-grace-period': '40s',
    'node-monitor-period': '5s',
    'pod-eviction-timeout': '5m0s',
    'service-account-private-key-file': '',
    'root-ca-file': '',
    'min-resync-period': '12h0m0s',
    'cluster-cidr': '',
    'allocate-node-cidrs': false,
    'leader-elect': false,
    v: '0',
    logtostderr: true,
  });
  const where = 'nodecontroller.go';
  if (!flags.master) {
    glog('F', 'controllermanager.go', 'Invalid API configuration: no configuration has been provided');
    process.exit(255);
  }
  const api = new ApiClient(flags.master);
  const grace = parseDuration(flags['node-monitor-grace-period']);
  const period = parseDuration(flags['node-monitor-period']);
  glog('I', where, `Node controller: grace period ${flags['node-monitor-grace-period']}, checking every ${flags['node-monitor-period']}`);
  for (;;) {
    try {
      const nodes = ((await api.get('/api/v1/nodes')).items ?? []) as Json[];
      for (const node of nodes) {
        const ready = ((node.status?.conditions ?? []) as Json[]).find((c) => c.type === 'Ready');
        const heartbeat = ready ? Date.parse(ready.lastHeartbeatTime) : Date.parse(node.metadata.creationTimestamp);
        if (Date.now() - heartbeat <= grace || ready?.status === 'Unknown') continue;
        glog(
          'I',
          where,
          `node ${node.metadata.name} hasn't been updated for ${Math.round((Date.now() - heartbeat) / 1000)}s. Last ready condition is: ${ready?.status ?? 'none'}`,
        );
        const unknown = {
          type: 'Ready',
          status: 'Unknown',
          lastHeartbeatTime: ready?.lastHeartbeatTime ?? node.metadata.creationTimestamp,
          lastTransitionTime: nowIso(),
          reason: 'NodeStatusUnknown',
          message: 'Kubelet stopped posting node status.',
        };
        node.status = {
          ...node.status,
          conditions: [...((node.status?.conditions ?? []) as Json[]).filter((c) => c.type !== 'Ready'), unknown],
        };
        await api
          .put(`/api/v1/nodes/${encodeURIComponent(node.metadata.name)}/status`, node)
          .catch((error: Error) => glog('E', where, `Error updating node ${node.metadata.name}: ${error.message}`));
      }
    } catch (error) {
      glog('E', where, `Error monitoring node status: ${(error as Error).message}`);
    }
    await sleep(period);
  }
}

/**
 * scheduler and proxy: they accept their flags and watch the master; the work they do (binding
 * pods, service rules) comes with pods and services.
 */
export async function idleComponent(name: 'scheduler' | 'proxy', argv: string[]): Promise<void> {
  const { flags } = parseFlagsOrExit(`/hyperkube ${name}`, argv, {
    master: '',
    kubeconfig: '',
    'proxy-mode': '',
    'cluster-cidr': '',
    'leader-elect': false,
    'hostname-override': '',
    'bind-address': '0.0.0.0',
    v: '0',
    logtostderr: true,
  });
  const where = `${name}.go`;
  if (!flags.master && !flags.kubeconfig) {
    glog('F', where, 'Neither --kubeconfig nor --master was specified');
    process.exit(255);
  }
  const api = new ApiClient(flags.master);
  glog('I', where, name === 'proxy' ? 'Using iptables Proxier.' : 'Scheduler started');
  let healthy: boolean | undefined;
  for (;;) {
    const now = await api
      .get('/healthz')
      .then(
        () => true,
        () => false,
      )
      .catch(() => false);
    if (now !== healthy) glog(now ? 'I' : 'E', where, now ? `Connected to master ${api.base}` : `Unable to reach master ${api.base}`);
    healthy = now;
    await sleep(10_000);
  }
}
