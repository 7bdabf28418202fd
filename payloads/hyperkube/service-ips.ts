import { randomInt } from 'node:crypto';
import { invalidAll, SERVICES } from './registry.js';
import { KeyExists, KeyMissing, type KeyValueStore } from './store.js';

/**
 * Cluster IPs for services, from --service-cluster-ip-range. Each IP in use is claimed by a key
 * of its own under /registry/ranges/serviceips, created only if absent, so two apiservers (or
 * two requests) can never hand out the same address.
 */
export class ServiceIpAllocator {
  private readonly first: number;
  private readonly size: number;

  constructor(
    private readonly store: KeyValueStore,
    readonly range: string,
  ) {
    const [address = '', bits = '32'] = range.split('/');
    const prefix = Number(bits);
    const network = (toNumber(address) >>> 0) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);
    // The network and broadcast addresses are never handed out.
    this.first = network + 1;
    this.size = 2 ** (32 - prefix) - 2;
  }

  /** The first address of the range: the `kubernetes` service's. */
  get masterServiceIp(): string {
    return toAddress(this.first);
  }

  /** Claims `wanted` (422 when outside the range or taken) or, without it, a free address at random. */
  async claim(serviceName: string, wanted?: string): Promise<string> {
    if (wanted) {
      const n = toNumber(wanted);
      if (Number.isNaN(n) || n < this.first || n >= this.first + this.size)
        throw invalidAll(SERVICES, serviceName, [
          ['spec.clusterIP', 'FieldValueInvalid', `Invalid value: "${wanted}": provided IP is not in the valid range`],
        ]);
      if (!(await this.tryClaim(wanted, serviceName)))
        throw invalidAll(SERVICES, serviceName, [['spec.clusterIP', 'FieldValueInvalid', `Invalid value: "${wanted}": provided IP is already allocated`]]);
      return wanted;
    }
    const start = randomInt(this.size);
    for (let i = 0; i < this.size; i++) {
      const candidate = toAddress(this.first + ((start + i) % this.size));
      if (await this.tryClaim(candidate, serviceName)) return candidate;
    }
    throw invalidAll(SERVICES, serviceName, [['spec.clusterIP', 'FieldValueInvalid', `Internal error: range ${this.range} is full`]]);
  }

  async release(ip: string): Promise<void> {
    await this.store.delete(claimKey(ip)).catch((error: unknown) => {
      if (!(error instanceof KeyMissing)) throw error;
    });
  }

  private async tryClaim(ip: string, owner: string): Promise<boolean> {
    try {
      await this.store.create(claimKey(ip), owner);
      return true;
    } catch (error) {
      if (error instanceof KeyExists) return false;
      throw error;
    }
  }
}

const claimKey = (ip: string) => `/registry/ranges/serviceips/${ip}`;

function toNumber(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return NaN;
  return (((parts[0] as number) << 24) | ((parts[1] as number) << 16) | ((parts[2] as number) << 8) | (parts[3] as number)) >>> 0;
}

const toAddress = (n: number): string => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
