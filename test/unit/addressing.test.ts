import { describe, expect, test } from 'vitest';
import { assignAddresses, clusterMac, formatIp, isHostIn, parseCidr, parseIp } from '../../lab/net/addressing.js';

describe('cluster addressing', () => {
  test('parses and formats IPv4 addresses', () => {
    expect(parseIp('10.77.0.11')).toBe(0x0a4d000b);
    expect(formatIp(0x0a4d000b)).toBe('10.77.0.11');
    expect(parseIp('10.77.0.256')).toBeUndefined();
    expect(parseIp('10.77.0')).toBeUndefined();
  });

  test('accepts only network addresses with a prefix from 8 to 30', () => {
    expect(parseCidr('10.77.0.0/24')).toEqual({ network: 0x0a4d0000, prefix: 24 });
    expect(parseCidr('10.77.0.5/24'), 'host bits set').toBeUndefined();
    expect(parseCidr('10.0.0.0/31')).toBeUndefined();
    expect(parseCidr('10.0.0.0')).toBeUndefined();
    expect(parseCidr('10.0.0.0/x')).toBeUndefined();
  });

  test('host addresses exclude the network and broadcast addresses', () => {
    const cidr = parseCidr('10.77.0.0/24')!;
    expect(isHostIn(parseIp('10.77.0.1')!, cidr)).toBe(true);
    expect(isHostIn(parseIp('10.77.0.254')!, cidr)).toBe(true);
    expect(isHostIn(parseIp('10.77.0.0')!, cidr)).toBe(false);
    expect(isHostIn(parseIp('10.77.0.255')!, cidr)).toBe(false);
    expect(isHostIn(parseIp('10.78.0.1')!, cidr)).toBe(false);
  });

  test('nodes get .11, .12, ... in order, skipping addresses other nodes name', () => {
    const cidr = parseCidr('10.77.0.0/24')!;
    const addresses = assignAddresses([{ name: 'a' }, { name: 'b', address: '10.77.0.12' }, { name: 'c' }], cidr);
    expect([...addresses]).toEqual([
      ['a', '10.77.0.11'],
      ['b', '10.77.0.12'],
      ['c', '10.77.0.13'],
    ]);
  });

  test('a network too small for its nodes is an error naming the node', () => {
    const cidr = parseCidr('10.77.0.0/28')!;
    expect(() => assignAddresses([{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }, { name: 'e' }], cidr)).toThrow(
      /no address left for e/,
    );
  });

  test('cluster MACs are stable and distinct per node index', () => {
    expect(clusterMac(0)).toBe('52:54:00:1a:c0:01');
    expect(clusterMac(9)).toBe('52:54:00:1a:c0:0a');
    expect(new Set([0, 1, 2].map(clusterMac)).size).toBe(3);
  });
});
