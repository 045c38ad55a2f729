// The primitives every MySQL codec file uses: length-encoded integers in all
// their forms, NUL search bounded by the packet, and packet() framing with the
// 16 MiB split that PacketFramer undoes.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { PacketFramer, payloadLength } from '../../../src/mysql/framer.js';
import { MAX_PAYLOAD, lenencBytes, nulAt, packet, readLenenc } from '../../../src/mysql/protocol.js';
import { lenenc } from '../../fixtures/mysql-packets.js';

describe('readLenenc', () => {
  it.each([
    ['1-byte', '00', 0, 1],
    ['1-byte 250', 'fa', 250, 1],
    ['0xfc', 'fcfb00', 251, 3],
    ['0xfc max', 'fcffff', 65535, 3],
    ['0xfd', 'fd000001', 65536, 4],
    ['0xfd max', 'fdffffff', 0xffffff, 4],
    ['0xfe', 'fe0000000100000000', 2 ** 24, 9],
    ['0xfe above 2^32', 'fe0500000001000000', 2 ** 32 + 5, 9],
  ])('reads the %s form', (_n, h, value, size) => {
    const b = Buffer.concat([Buffer.from([0xaa]), Buffer.from(h, 'hex'), Buffer.from([0xbb])]);
    expect(readLenenc(b, 1, b.length - 1)).toEqual({ value, size });
  });

  it('clamps a value past 2^53 to MAX_SAFE_INTEGER', () => {
    expect(readLenenc(Buffer.from('feffffffffffffffff', 'hex'), 0, 9)).toEqual({ value: Number.MAX_SAFE_INTEGER, size: 9 });
  });

  it.each([
    ['0xfb (NULL)', 'fb', 1],
    ['0xff (ERR)', 'ff', 1],
    ['0xfc cut by end', 'fc0102', 2],
    ['0xfd cut by end', 'fd010203', 3],
    ['0xfe cut by end', 'fe0102030405060708', 8],
    ['nothing before end', '01', 0],
  ])('returns null for %s', (_n, h, end) => {
    expect(readLenenc(Buffer.from(h, 'hex'), 0, end)).toBeNull();
  });
});

describe('lenencBytes', () => {
  it.each([0, 250, 251, 65535, 65536, 0xffffff, 0x1000000, 2 ** 40])('writes %d as the spec says', (n) => {
    const b = lenencBytes(n);
    expect(b.toString('hex')).toBe(lenenc(n).toString('hex'));
    expect(readLenenc(b, 0, b.length)).toEqual({ value: n, size: b.length });
  });
});

describe('nulAt', () => {
  it('finds the NUL between at and end, and not one past end', () => {
    const b = Buffer.from('ab\0cd\0', 'latin1');
    expect(nulAt(b, 0, 6)).toBe(2);
    expect(nulAt(b, 3, 6)).toBe(5);
    expect(nulAt(b, 3, 5)).toBe(-1);
    expect(nulAt(b, 0, 2)).toBe(-1);
  });
});

describe('packet', () => {
  it('frames a small payload with its sequence id, wrapping at 256', () => {
    expect(packet(3, Buffer.from([0x0e])).toString('hex')).toBe('010000030e');
    expect(packet(256 + 7, Buffer.alloc(0)).toString('hex')).toBe('00000007');
  });

  function pieces(wire: Buffer): Array<[number, number, boolean, boolean]> {
    const f = new PacketFramer();
    f.push(wire);
    const out: Array<[number, number, boolean, boolean]> = [];
    for (let p = f.next(); p !== null; p = f.next()) out.push([payloadLength(p), p.seq, p.continues, p.continuation]);
    expect(f.pending).toBe(0);
    return out;
  }

  it('splits MAX_PAYLOAD - 1 bytes into nothing', () => {
    expect(pieces(packet(0, Buffer.alloc(MAX_PAYLOAD - 1)))).toEqual([[MAX_PAYLOAD - 1, 0, false, false]]);
  });

  it('follows exactly MAX_PAYLOAD bytes with an empty piece', () => {
    expect(pieces(packet(1, Buffer.alloc(MAX_PAYLOAD)))).toEqual([
      [MAX_PAYLOAD, 1, true, false],
      [0, 2, false, true],
    ]);
  });

  it('splits MAX_PAYLOAD + 1 bytes into a full piece and one byte, keeping the bytes in order', () => {
    const payload = Buffer.alloc(MAX_PAYLOAD + 1, 0x61);
    payload[MAX_PAYLOAD] = 0x7a;
    const wire = packet(255, payload);
    expect(pieces(wire)).toEqual([
      [MAX_PAYLOAD, 255, true, false],
      [1, 0, false, true],
    ]);
    expect(wire.length).toBe(MAX_PAYLOAD + 1 + 8);
    expect(wire[wire.length - 1]).toBe(0x7a);
  });

  it('splits twice MAX_PAYLOAD into two full pieces and an empty one', () => {
    expect(pieces(packet(0, Buffer.alloc(2 * MAX_PAYLOAD)))).toEqual([
      [MAX_PAYLOAD, 0, true, false],
      [MAX_PAYLOAD, 1, true, true],
      [0, 2, false, true],
    ]);
  });
});
