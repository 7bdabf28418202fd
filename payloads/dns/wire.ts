/**
 * DNS messages on the wire (RFC 1035): what skydns reads and writes, and what the tests send it.
 * Names are strings with the trailing dot ("kubernetes.default.svc.cluster.local.", the root is
 * "."), in the case they were sent in, as miekg/dns gives them to skydns. Decoding follows compression pointers;
 * encoding compresses names too, so that answers with many A records still fit in 512 bytes.
 */

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** The largest UDP answer a client without EDNS0 accepts. */
export const UDP_LIMIT = 512;

export interface Header {
  id: number;
  /** true in a response. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

/** The record data this server speaks; anything else is carried as its bytes. */
export type RecordData =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'raw'; bytes: Uint8Array };

export interface ResourceRecord {
  name: string;
  type: number;
  /** For OPT, the sender's UDP payload size. */
  class: number;
  ttl: number;
  data: RecordData;
}

export interface DnsMessage {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export class DnsFormatError extends Error {}

export function emptyHeader(id: number): Header {
  return { id, qr: false, opcode: 0, aa: false, tc: false, rd: false, ra: false, rcode: RCODE.NOERROR };
}

/** A query as a resolver sends it: one question, recursion desired. */
export function makeQuery(id: number, name: string, type: number): DnsMessage {
  return {
    header: { ...emptyHeader(id), rd: true },
    questions: [{ name: fqdn(name), type, class: CLASS_IN }],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

/** Lower case with the trailing dot: the form names are compared in. */
export function fqdn(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export function decodeMessage(packet: Uint8Array): DnsMessage {
  const reader = new Reader(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
  const header = readHeader(reader);
  const [qd, an, ns, ar] = [reader.u16(), reader.u16(), reader.u16(), reader.u16()];
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) questions.push({ name: reader.name(), type: reader.u16(), class: reader.u16() });
  const records = (count: number) => Array.from({ length: count }, () => decodeRecord(reader));
  return { header, questions, answers: records(an), authorities: records(ns), additionals: records(ar) };
}

/** The header alone, for answering FORMERR to a message whose body does not decode. */
export function decodeHeader(packet: Uint8Array): Header {
  return readHeader(new Reader(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)));
}

function readHeader(reader: Reader): Header {
  const id = reader.u16();
  const flags = reader.u16();
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  };
}

function decodeRecord(reader: Reader): ResourceRecord {
  const name = reader.name();
  const [type, klass] = [reader.u16(), reader.u16()];
  const ttl = reader.u32();
  const length = reader.u16();
  const end = reader.offset + length;
  if (end > reader.buffer.length) throw new DnsFormatError(`record data of ${name} runs past the message`);
  let data: RecordData;
  if (type === TYPE.A && length === 4) {
    data = { kind: 'A', address: Array.from(reader.bytes(4)).join('.') };
  } else if (type === TYPE.AAAA && length === 16) {
    const bytes = reader.bytes(16);
    const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
    data = { kind: 'AAAA', address: groups.join(':') };
  } else if (type === TYPE.SRV && length >= 7) {
    data = { kind: 'SRV', priority: reader.u16(), weight: reader.u16(), port: reader.u16(), target: reader.name() };
  } else {
    data = { kind: 'raw', bytes: Uint8Array.from(reader.bytes(length)) };
  }
  if (reader.offset !== end) throw new DnsFormatError(`record data of ${name} has the wrong length`);
  return { name, type, class: klass, ttl, data };
}

class Reader {
  offset = 0;
  constructor(readonly buffer: Buffer) {}

  private need(n: number, at = this.offset): void {
    if (at + n > this.buffer.length) throw new DnsFormatError('message too short');
  }
  u16(): number {
    this.need(2);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const value = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return value;
  }

  /** A name at the current offset, following compression pointers (only backwards, so no loops). */
  name(): string {
    const labels: string[] = [];
    let at = this.offset;
    let resumeAt: number | undefined;
    for (;;) {
      this.need(1, at);
      const length = this.buffer[at] as number;
      if ((length & 0xc0) === 0xc0) {
        this.need(2, at);
        const target = this.buffer.readUInt16BE(at) & 0x3fff;
        if (target >= at) throw new DnsFormatError('compression pointer does not point backwards');
        resumeAt ??= at + 2;
        at = target;
        continue;
      }
      if (length & 0xc0) throw new DnsFormatError(`unknown label type 0x${length.toString(16)}`);
      if (length === 0) {
        this.offset = resumeAt ?? at + 1;
        return labels.length ? `${labels.join('.')}.` : '.';
      }
      this.need(1 + length, at);
      labels.push(this.buffer.toString('latin1', at + 1, at + 1 + length));
      at += 1 + length;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeMessage(message: DnsMessage): Buffer {
  const writer = new Writer();
  const h = message.header;
  writer.u16(h.id);
  writer.u16(
    (h.qr ? 0x8000 : 0) |
      ((h.opcode & 0xf) << 11) |
      (h.aa ? 0x0400 : 0) |
      (h.tc ? 0x0200 : 0) |
      (h.rd ? 0x0100 : 0) |
      (h.ra ? 0x0080 : 0) |
      (h.rcode & 0xf),
  );
  for (const section of [message.questions, message.answers, message.authorities, message.additionals]) writer.u16(section.length);
  for (const q of message.questions) {
    writer.name(q.name);
    writer.u16(q.type);
    writer.u16(q.class);
  }
  for (const record of [...message.answers, ...message.authorities, ...message.additionals]) encodeRecord(writer, record);
  return writer.finish();
}

function encodeRecord(writer: Writer, record: ResourceRecord): void {
  writer.name(record.name);
  writer.u16(record.type);
  writer.u16(record.class);
  writer.u32(record.ttl);
  const lengthAt = writer.reserve16();
  const data = record.data;
  switch (data.kind) {
    case 'A':
      writer.raw(Buffer.from(parseIpv4(data.address)));
      break;
    case 'AAAA':
      writer.raw(parseIpv6(data.address));
      break;
    case 'SRV':
      writer.u16(data.priority);
      writer.u16(data.weight);
      writer.u16(data.port);
      // RFC 2782: the target is not compressed.
      writer.name(data.target, false);
      break;
    case 'raw':
      writer.raw(Buffer.from(data.bytes));
      break;
  }
  writer.fill16(lengthAt, writer.length - lengthAt - 2);
}

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  /** Offsets of names already written, by their text, for compression pointers. */
  private names = new Map<string, number>();
  private patches: { at: number; value: number }[] = [];

  u16(value: number): void {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value & 0xffff);
    this.raw(b);
  }
  u32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    this.raw(b);
  }
  raw(bytes: Buffer): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  reserve16(): number {
    const at = this.length;
    this.u16(0);
    return at;
  }
  fill16(at: number, value: number): void {
    this.patches.push({ at, value });
  }

  name(name: string, compress = true): void {
    const labels = name === '.' || name === '' ? [] : name.replace(/\.$/, '').split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const earlier = compress ? this.names.get(suffix) : undefined;
      if (earlier !== undefined) {
        this.u16(0xc000 | earlier);
        return;
      }
      if (this.length < 0x4000) this.names.set(suffix, this.length);
      const label = Buffer.from(labels[i] as string, 'latin1');
      if (label.length === 0 || label.length > 63) throw new DnsFormatError(`bad label in ${name}`);
      this.raw(Buffer.from([label.length]));
      this.raw(label);
    }
    this.raw(Buffer.from([0]));
  }

  finish(): Buffer {
    const out = Buffer.concat(this.chunks);
    for (const { at, value } of this.patches) out.writeUInt16BE(value, at);
    return out;
  }
}

function parseIpv4(address: string): number[] {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return parts;
}

function parseIpv6(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const groups = (text: string | undefined) => (text ? text.split(':') : []);
  const [front, back] = [groups(head), groups(tail)];
  const missing = 8 - front.length - back.length;
  if (tail === undefined ? missing !== 0 : missing < 1) throw new Error(`not an IPv6 address: ${address}`);
  const all = [...front, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...back];
  const out = Buffer.alloc(16);
  all.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

// ---------------------------------------------------------------------------------------------
// TCP framing (RFC 1035 4.2.2): each message preceded by its length in two bytes.

export function frameTcp(message: Uint8Array): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/** The complete messages at the start of what a TCP stream has delivered, and the bytes left over. */
export function readTcpFrames(pending: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  while (pending.length - at >= 2) {
    const length = pending.readUInt16BE(at);
    if (pending.length - at - 2 < length) break;
    messages.push(pending.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return { messages, rest: pending.subarray(at) };
}
