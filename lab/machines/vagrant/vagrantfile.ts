import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../util/paths.js';

/** One node as the Vagrantfile template reads it (vagrant/Vagrantfile.template). */
export interface VagrantNode {
  name: string;
  box: string;
  cpus: number;
  memory: number;
  /** libvirt domain type: qemu (TCG) or kvm. */
  domain_type: 'qemu' | 'kvm';
  cpu_model: string;
  cmdline: string;
  mgmt_mac: string;
  cluster_ip: string;
  cluster_mac: string;
  console_log?: string;
}

export interface VagrantProject {
  runId: string;
  /** Prefix of the libvirt domain names, so a run's domains are recognisable. */
  prefix: string;
  clusterNetwork: string;
  clusterNetmask: string;
  nodes: VagrantNode[];
}

/** The Vagrantfile of a run: the template with the run's nodes as data, readable and runnable by hand. */
export function renderVagrantfile(project: VagrantProject): string {
  const template = readFileSync(join(projectRoot, 'vagrant', 'Vagrantfile.template'), 'utf8');
  const data = {
    prefix: project.prefix,
    cluster_network: project.clusterNetwork,
    cluster_netmask: project.clusterNetmask,
    nodes: project.nodes,
  };
  return template.replace('@RUN_ID@', project.runId).replace('@LAB_JSON@', JSON.stringify(data, null, 2));
}

/** HostName, Port, User and IdentityFile of one host in `vagrant ssh-config` output. */
export function parseSshConfig(text: string): { host: string; port: number; user: string; identityFile: string } {
  const field = (key: string): string => {
    const match = new RegExp(`^\\s*${key}\\s+"?([^"\\n]+?)"?\\s*$`, 'mi').exec(text);
    if (!match?.[1]) throw new Error(`vagrant ssh-config printed no ${key}:\n${text}`);
    return match[1];
  };
  return { host: field('HostName'), port: Number(field('Port')), user: field('User'), identityFile: field('IdentityFile') };
}

/** A dotted netmask from a prefix length (24 -> 255.255.255.0). */
export function netmaskOf(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 255).join('.');
}
