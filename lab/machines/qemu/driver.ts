import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../net/ports.js';
import { run } from '../../util/proc.js';
import type { Driver, DriverInfo, MachineSpec, Vm } from '../driver.js';
import { detectAccel, type Accel } from '../accel.js';
import { labelledHypervisors, qemuBinary } from '../guest.js';
import { QemuVm } from './vm.js';

/** Runs each node as a plain qemu-system process (see QemuVm): no daemon needed. */
export class QemuDriver implements Driver {
  readonly name = 'qemu' as const;
  private accel: Accel | undefined;

  async info(): Promise<DriverInfo> {
    const problems: string[] = [];
    for (const binary of ['qemu-system-x86_64', 'qemu-img', 'setpriv', 'zstd']) {
      const found = await run(['sh', '-c', `command -v ${binary}`], { check: false });
      if (found.code !== 0) problems.push(`${binary} is missing: install qemu-system-x86 qemu-utils util-linux zstd`);
    }
    return { name: this.name, problems, acceleration: this.accel ? `${this.accel.kind} (${this.accel.why})` : 'not probed yet' };
  }

  /** The overlay disk goes over the image (or over the saved disk of the layer it is restored from). */
  async create(spec: MachineSpec): Promise<Vm> {
    mkdirSync(spec.stateDir, { recursive: true });
    mkdirSync(spec.logDir, { recursive: true });
    const ssh = {
      host: '127.0.0.1',
      port: spec.sshPort ?? (await freeLoopbackPort()),
      user: 'root',
      privateKeyFile: spec.image.clientKey,
      hostKey: spec.image.hostKey,
    };
    const base = spec.restore?.disk ?? spec.image.disk;
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(spec.stateDir, 'disk.qcow2')]);
    return new QemuVm(spec, ssh, async () => {
      this.accel ??= await detectAccel(spec.arch, qemuBinary(spec.arch), spec.image.kernel);
      return this.accel.kind;
    });
  }

  async list(runId?: string): Promise<{ runId: string; name: string; pid: number }[]> {
    return labelledHypervisors(runId);
  }
}
