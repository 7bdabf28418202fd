import { describe, expect, test } from 'vitest';
import { parseIp } from '../../lab/net/addressing.js';
import {
  allocateSubnet,
  backendMtu,
  leaseAttrs,
  parseNetworkConfig,
  parseSubnetKey,
  subnetEnv,
  subnetKey,
  vtepMacFor,
} from '../../payloads/flannel/lease.js';

const ip = (text: string) => parseIp(text) as number;

describe('flannel stand-in: formats in etcd and on disk', () => {
  test('the network config the multinode scripts write parses with flannel defaults', () => {
    const config = parseNetworkConfig('{ "Network": "10.1.0.0/16", "Backend": {"Type": "udp"}}');
    expect(config.subnetLen).toBe(24);
    expect(config.subnetMin).toBe(ip('10.1.1.0'));
    expect(config.subnetMax).toBe(ip('10.1.254.0'));
    expect(config.backend).toEqual({ type: 'udp', port: 8285, vni: 1 });
    expect(parseNetworkConfig('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}').backend).toEqual({
      type: 'vxlan',
      port: 8472,
      vni: 1,
    });
    expect(parseNetworkConfig('{"Network": "10.1.0.0/16"}').backend.type).toBe('udp');
  });

  test('a bad config is refused with a reason, never half-used', () => {
    expect(() => parseNetworkConfig('{"Backend": {}}')).toThrow('Network is required');
    expect(() => parseNetworkConfig('{"Network": "10.1.0.0/16", "Backend": {"Type": "host-gw"}}')).toThrow('unknown backend type: host-gw');
    expect(() => parseNetworkConfig('not json')).toThrow('failed to decode config');
    expect(() => parseNetworkConfig('{"Network": "10.1.0.0/16", "SubnetLen": 12}')).toThrow('does not fit');
  });

  test("lease keys round-trip in flannel's a.b.c.d-len form", () => {
    expect(subnetKey(ip('10.1.15.0'), 24)).toBe('10.1.15.0-24');
    expect(parseSubnetKey('/coreos.com/network/subnets/10.1.15.0-24')).toEqual({ subnet: ip('10.1.15.0'), len: 24 });
    expect(parseSubnetKey('/coreos.com/network/config')).toBeUndefined();
  });

  test('lease values: udp names only the public IP, vxlan its type and VTEP MAC', () => {
    expect(JSON.parse(leaseAttrs('10.77.0.11', 'udp'))).toEqual({ PublicIP: '10.77.0.11' });
    expect(JSON.parse(leaseAttrs('10.77.0.12', 'vxlan', '8a:2b:00:11:22:33'))).toEqual({
      PublicIP: '10.77.0.12',
      BackendType: 'vxlan',
      BackendData: { VtepMAC: '8a:2b:00:11:22:33' },
    });
  });

  test('allocation never hands out a taken subnet, and says when none is left', () => {
    const config = parseNetworkConfig('{"Network": "10.1.0.0/28", "SubnetLen": 30}');
    // /28 in /30s: 10.1.0.0 (first, skipped), .4, .8, .12 (last, skipped)
    expect(allocateSubnet(config, [], () => 0)).toBe(ip('10.1.0.4'));
    expect(allocateSubnet(config, ['/coreos.com/network/subnets/10.1.0.4-30'], () => 0)).toBe(ip('10.1.0.8'));
    expect(() => allocateSubnet(config, ['x/10.1.0.4-30', 'x/10.1.0.8-30'])).toThrow('out of subnets');
  });

  test("subnet.env carries the lease's first address and the backend MTU", () => {
    const config = parseNetworkConfig('{"Network": "10.1.0.0/16"}');
    expect(backendMtu('udp', 1500)).toBe(1472);
    expect(backendMtu('vxlan', 1500)).toBe(1450);
    expect(subnetEnv({ network: config.network, subnet: ip('10.1.15.0'), subnetLen: 24, mtu: backendMtu('udp', 1500), ipMasq: true })).toBe(
      'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.15.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
    );
  });

  test("a vxlan VTEP's MAC is locally administered, unicast and follows the host's address", () => {
    expect(vtepMacFor('10.77.0.11')).toBe('0e:fa:0a:4d:00:0b');
    expect(vtepMacFor('192.168.1.50')).toBe('0e:fa:c0:a8:01:32');
    // bit 1 of the first octet set (local), bit 0 clear (unicast)
    expect(parseInt(vtepMacFor('10.0.0.1').slice(0, 2), 16) & 0b11).toBe(0b10);
  });
});
