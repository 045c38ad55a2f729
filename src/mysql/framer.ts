// Splits a MySQL byte stream (either direction) into packets: a 3-byte
// little-endian payload length, a 1-byte sequence id, the payload.
//
// A packet lying inside one received chunk is returned as a range of that
// chunk (no copy), so a relay forwards runs of packets with one subarray.
// Only a packet straddling chunks is assembled, once, when complete.
//
// A payload of exactly 0xFFFFFF bytes continues in the next packet
// (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html);
// `continues` / `continuation` let callers treat such a run as one logical
// packet without reading the continuation's bytes as a header.

import { MAX_PAYLOAD, MysqlProtocolError } from './protocol.js';

export interface Packet {
  buf: Buffer;
  /** Offset of the 4-byte header in `buf`. */
  start: number;
  /** Offset just past the payload. */
  end: number;
  seq: number;
  /** This packet's payload is followed by more of the same logical packet. */
  continues: boolean;
  /** This packet continues the previous one: its first byte means nothing. */
  continuation: boolean;
}

export function payloadStart(p: Packet): number {
  return p.start + 4;
}

export function payloadLength(p: Packet): number {
  return p.end - p.start - 4;
}

export class PacketFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private previousContinues = false;

  /** `maxLogical` bounds a logical packet (runs of 16 MiB pieces) in bytes. */
  constructor(private readonly maxLogical = Number.POSITIVE_INFINITY) {}

  private logicalSoFar = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes received but not yet returned as packets. */
  get pending(): number {
    return this.buffered;
  }

  /** The next complete packet, or null until more bytes arrive. Throws MysqlProtocolError past maxLogical. */
  next(): Packet | null {
    if (this.buffered < 4) return null;
    let first = this.chunks[0]!;
    if (first.length < 4) {
      first = this.coalesce(4);
    }
    const length = first[0]! | (first[1]! << 8) | (first[2]! << 16);
    const total = 4 + length;
    if (this.logicalSoFar + length > this.maxLogical) {
      throw new MysqlProtocolError(`packet of ${this.logicalSoFar + length} bytes is larger than allowed`, 1153, '08S01');
    }
    if (this.buffered < total) return null;
    if (first.length < total) first = this.coalesce(total);
    const p: Packet = {
      buf: first,
      start: 0,
      end: total,
      seq: first[3]!,
      continues: length === MAX_PAYLOAD,
      continuation: this.previousContinues,
    };
    // Consume `total` bytes from the first chunk.
    if (first.length === total) {
      this.chunks.shift();
    } else {
      this.chunks[0] = first.subarray(total);
    }
    this.buffered -= total;
    this.previousContinues = p.continues;
    this.logicalSoFar = p.continues ? this.logicalSoFar + length : 0;
    return p;
  }

  /** Joins the leading chunks until the first holds `n` bytes (n <= buffered). */
  private coalesce(n: number): Buffer {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const c = this.chunks.shift()!;
      parts.push(c);
      have += c.length;
    }
    const joined = Buffer.concat(parts, have);
    this.chunks.unshift(joined);
    return joined;
  }

  /** Everything still buffered, handed over (a session taking over from startup). */
  drain(): Buffer[] {
    const out = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    return out;
  }
}
