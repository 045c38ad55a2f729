// PacketFramer: the same packets however a MySQL byte stream is chunked,
// zero-copy inside a chunk, 16 MiB continuations flagged, and a
// MysqlProtocolError for a logical packet larger than allowed.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { PacketFramer, payloadLength, payloadStart, type Packet } from '../../../src/mysql/framer.js';
import { MysqlProtocolError } from '../../../src/mysql/protocol.js';
import { classicEof, deprecateEof, frame, hex, lastPrepared, mariadbCli, mysql2, stream, type Exchange } from '../../fixtures/mysql-packets.js';

const MAX = 0xffffff;

/** Pushes the chunks in order, taking every packet out after each push. */
function frameAll(chunks: Buffer[], framer = new PacketFramer()): Packet[] {
  const out: Packet[] = [];
  for (const c of chunks) {
    framer.push(c);
    for (let p = framer.next(); p !== null; p = framer.next()) out.push(p);
  }
  return out;
}

const hexOf = (ps: Packet[]): string[] => ps.map((p) => p.buf.subarray(p.start, p.end).toString('hex'));

/** Every packet the server sent in a session, in order (the greeting and auth OK first). */
function serverSide(session: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(session)) {
    if (name === 'connect') {
      const c = v as { greeting: string; authResult: string };
      out.push(c.greeting, c.authResult);
    } else out.push(...(v as Exchange).response);
  }
  return out;
}

function clientSide(session: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(session)) {
    if (name === 'connect') out.push((v as { handshakeResponse: string }).handshakeResponse);
    else out.push(...(v as Exchange).request);
  }
  return out;
}

describe.each([
  ['mysql2 server', serverSide(mysql2)],
  ['mysql2 client', clientSide(mysql2)],
  ['DEPRECATE_EOF server', serverSide(deprecateEof)],
  ['classic EOF server', serverSide(classicEof)],
  ['classic EOF client', clientSide(classicEof)],
  ['mariadb CLI server', serverSide(mariadbCli)],
  ['mariadb CLI client', clientSide(mariadbCli)],
  ['statement-id -1 server', serverSide(lastPrepared)],
])('framing the captured %s stream', (_name, packets) => {
  const bytes = stream(packets);

  it('yields every captured packet, in order, from one chunk', () => {
    const got = frameAll([bytes]);
    expect(got.length).toBe(packets.length);
    expect(hexOf(got)).toEqual(packets);
    expect(got.map((p) => p.seq)).toEqual(packets.map((h) => hex(h)[3]));
  });

  it('yields the same packets when split at every byte offset', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got = frameAll([bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(hexOf(got), `split at ${cut}`).toEqual(packets);
    }
  });

  it('yields the same packets when fed one byte at a time, holding back exactly the unfinished bytes', () => {
    const framer = new PacketFramer();
    const got: Packet[] = [];
    let consumed = 0;
    for (let i = 0; i < bytes.length; i++) {
      framer.push(bytes.subarray(i, i + 1));
      for (let p = framer.next(); p !== null; p = framer.next()) {
        got.push(p);
        consumed += p.end - p.start;
      }
      expect(framer.pending).toBe(i + 1 - consumed);
    }
    expect(hexOf(got)).toEqual(packets);
    expect(framer.pending).toBe(0);
  });

  it('never flags a continuation: every captured packet is below 16 MiB', () => {
    const got = frameAll([bytes]);
    expect(got.every((p) => !p.continues && !p.continuation)).toBe(true);
  });
});

describe('PacketFramer', () => {
  it('returns a packet lying inside one chunk as a view of that chunk, not a copy', () => {
    const chunk = stream(classicEof['text-select'].response);
    const framer = new PacketFramer();
    framer.push(chunk);
    const p = framer.next()!;
    expect(p.buf.buffer).toBe(chunk.buffer);
    expect(p.buf.byteOffset + p.start).toBe(chunk.byteOffset);
    const q = framer.next()!;
    expect(q.buf.buffer).toBe(chunk.buffer);
    expect(q.buf.byteOffset + q.start).toBe(chunk.byteOffset + 5); // after the 5-byte column-count packet
  });

  it('reports payload offsets and lengths from the header', () => {
    const framer = new PacketFramer();
    framer.push(hex('0c00000500000000000000001c400178'));
    const p = framer.next()!;
    expect(payloadStart(p)).toBe(p.start + 4);
    expect(payloadLength(p)).toBe(12);
    expect(p.seq).toBe(5);
    expect(p.end - p.start).toBe(16);
  });

  it('returns a header with an empty payload as a packet of its own', () => {
    const framer = new PacketFramer();
    framer.push(Buffer.from([0, 0, 0, 3, 1, 0, 0, 4, 0x0e]));
    const p = framer.next()!;
    expect(payloadLength(p)).toBe(0);
    expect(p.seq).toBe(3);
    const q = framer.next()!;
    expect(q.buf.subarray(q.start, q.end).toString('hex')).toBe('010000040e');
    expect(framer.next()).toBeNull();
    expect(framer.pending).toBe(0);
  });

  it('waits on a header whose payload has not arrived, then on fewer than 4 bytes', () => {
    const framer = new PacketFramer();
    framer.push(Buffer.from([0x0a, 0, 0, 0]));
    expect(framer.next()).toBeNull();
    expect(framer.pending).toBe(4);
    framer.push(Buffer.alloc(9));
    expect(framer.next()).toBeNull();
    expect(framer.pending).toBe(13);
    framer.push(Buffer.from([0x2a, 0x05, 0x00])); // the last payload byte, then 2 header bytes of the next packet
    const p = framer.next()!;
    expect(payloadLength(p)).toBe(10);
    expect(p.buf[p.end - 1]).toBe(0x2a);
    expect(framer.next()).toBeNull();
    expect(framer.pending).toBe(2);
  });

  it('ignores empty chunks', () => {
    const framer = new PacketFramer();
    framer.push(Buffer.alloc(0));
    framer.push(hex('0100000001'));
    framer.push(Buffer.alloc(0));
    expect(framer.next()!.seq).toBe(0);
    expect(framer.next()).toBeNull();
  });

  it('keeps sequence ids as sent, wrapping 255 → 0', () => {
    const got = frameAll([Buffer.concat([frame(254, [1]), frame(255, [2]), frame(0, [3])])]);
    expect(got.map((p) => p.seq)).toEqual([254, 255, 0]);
  });

  it('hands over what it still holds with drain()', () => {
    const framer = new PacketFramer();
    framer.push(hex('0100000001'));
    framer.push(Buffer.from([7, 0]));
    expect(framer.next()).not.toBeNull();
    const rest = framer.drain();
    expect(Buffer.concat(rest).toString('hex')).toBe('0700');
    expect(framer.pending).toBe(0);
    expect(framer.next()).toBeNull();
  });
});

describe('16 MiB packets', () => {
  // A logical packet of 0xFFFFFF + 10 bytes: one full piece, then a 10-byte continuation.
  const first = Buffer.alloc(4 + MAX, 0x61);
  first.writeUIntLE(MAX, 0, 3);
  first[3] = 1;
  first[4] = 0x03; // looks like a COM_QUERY
  const tail = frame(2, Buffer.from([0xfe, 0, 0, 2, 0, 0, 0, 0x61, 0x61, 0x61])); // starts like an OK/EOF on purpose
  const after = frame(0, [0x0e]);

  function check(got: Packet[]): void {
    expect(got.length).toBe(3);
    const [a, b, c] = got as [Packet, Packet, Packet];
    expect(payloadLength(a)).toBe(MAX);
    expect([a.seq, a.continues, a.continuation]).toEqual([1, true, false]);
    expect(a.buf[payloadStart(a)]).toBe(0x03);
    expect(a.buf[a.end - 1]).toBe(0x61);
    expect(payloadLength(b)).toBe(10);
    expect([b.seq, b.continues, b.continuation]).toEqual([2, false, true]);
    expect(b.buf[payloadStart(b)]).toBe(0xfe);
    expect([c.seq, c.continues, c.continuation]).toEqual([0, false, false]);
  }

  it('flags a 0xFFFFFF-length packet as continuing and the next as its continuation', () => {
    check(frameAll([first, tail, after]));
  });

  it('frames the same when the stream arrives in 64 KiB chunks', () => {
    const all = Buffer.concat([first, tail, after]);
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += 65536) chunks.push(all.subarray(at, at + 65536));
    check(frameAll(chunks));
  });

  it('frames the same when the headers arrive byte by byte around the piece boundary', () => {
    const all = Buffer.concat([first, tail, after]);
    const cut = first.length - 3;
    const chunks = [all.subarray(0, 2), all.subarray(2, cut)];
    for (let i = cut; i < all.length; i++) chunks.push(all.subarray(i, i + 1));
    check(frameAll(chunks));
  });

  it('treats the empty packet after an exactly-16 MiB payload as its continuation', () => {
    const empty = frame(2, []);
    const got = frameAll([first, empty, after]);
    expect(got.map((p) => [payloadLength(p), p.continues, p.continuation])).toEqual([
      [MAX, true, false],
      [0, false, true],
      [1, false, false],
    ]);
  });

  it('chains two full pieces and a tail', () => {
    const second = Buffer.from(first);
    second[3] = 2;
    const last = frame(3, [1, 2, 3]);
    const got = frameAll([first, second, last, after]);
    expect(got.map((p) => [p.seq, p.continues, p.continuation])).toEqual([
      [1, true, false],
      [2, true, true],
      [3, false, true],
      [0, false, false],
    ]);
  });
});

describe('maxLogical', () => {
  it('accepts a packet of exactly the limit and refuses one byte more with error 1153', () => {
    const framer = new PacketFramer(100);
    framer.push(frame(0, Buffer.alloc(100)));
    expect(payloadLength(framer.next()!)).toBe(100);
    framer.push(frame(1, Buffer.alloc(101)));
    let err: unknown;
    try {
      framer.next();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MysqlProtocolError);
    expect((err as MysqlProtocolError).code).toBe(1153);
    expect((err as MysqlProtocolError).sqlState).toBe('08S01');
  });

  it('refuses as soon as the header arrives, without waiting for the payload', () => {
    const framer = new PacketFramer(1000);
    framer.push(Buffer.from([0xe9, 0x03, 0x00, 0x00])); // 1001 bytes announced, none sent
    expect(() => framer.next()).toThrow(MysqlProtocolError);
  });

  it('counts the continuations of one logical packet together, and starts again after it', () => {
    const big = Buffer.alloc(4 + MAX);
    big.writeUIntLE(MAX, 0, 3);
    const framer = new PacketFramer(MAX + 5);
    framer.push(big);
    framer.push(frame(1, Buffer.alloc(5))); // MAX + 5: allowed
    framer.push(frame(0, Buffer.alloc(50))); // a new logical packet: allowed
    expect(payloadLength(framer.next()!)).toBe(MAX);
    expect(payloadLength(framer.next()!)).toBe(5);
    expect(payloadLength(framer.next()!)).toBe(50);
    const framer2 = new PacketFramer(MAX + 5);
    framer2.push(big);
    framer2.push(frame(1, Buffer.alloc(6))); // MAX + 6: too large
    framer2.next();
    expect(() => framer2.next()).toThrow(/larger than allowed/);
  });
});
