// The untyped first packet: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ProtocolError, decodeStartupPacket, startupPacketLength } from '../../../src/postgres/frontend-codec.js';
import { PROTOCOL_3_0 } from '../../../src/postgres/messages.js';
import { Body, startup } from '../../fixtures/pg-messages.js';

function expectProtocolError(fn: () => unknown, message: RegExp): void {
  expect(fn).toThrow(ProtocolError);
  expect(fn).toThrow(message);
}

describe('decoding startup packets', () => {
  it('a StartupMessage yields protocol 3.0 and its parameters in order', () => {
    const packet = startup.message({ user: 'app', database: 'shop', application_name: 'rails', options: '' });
    const decoded = decodeStartupPacket(packet);
    expect(decoded).toEqual({
      type: 'startup',
      protocolVersion: PROTOCOL_3_0,
      parameters: new Map([
        ['user', 'app'],
        ['database', 'shop'],
        ['application_name', 'rails'],
        ['options', ''],
      ]),
    });
    if (decoded.type === 'startup') expect([...decoded.parameters.keys()][0]).toBe('user');
  });

  it('a StartupMessage for protocol 3.2 is accepted (the server negotiates the minor)', () => {
    const decoded = decodeStartupPacket(startup.message({ user: 'u' }, (3 << 16) | 2));
    expect(decoded).toMatchObject({ type: 'startup', protocolVersion: 196610 });
  });

  it('SSLRequest and GSSENCRequest are recognised', () => {
    expect(decodeStartupPacket(startup.sslRequest())).toEqual({ type: 'ssl-request' });
    expect(decodeStartupPacket(startup.gssencRequest())).toEqual({ type: 'gssenc-request' });
  });

  it('a CancelRequest yields process id and secret key', () => {
    const decoded = decodeStartupPacket(startup.cancelRequest(4242, -5));
    expect(decoded).toMatchObject({ type: 'cancel-request', processId: 4242, secretKey: -5 });
    if (decoded.type === 'cancel-request') expect([...decoded.secretKeyBytes]).toEqual([0xff, 0xff, 0xff, 0xfb]);
  });

  it('a protocol 3.2 CancelRequest keeps its whole long key', () => {
    const key = Buffer.alloc(32, 0xab);
    const decoded = decodeStartupPacket(startup.cancelRequestLongKey(7, key));
    expect(decoded).toMatchObject({ type: 'cancel-request', processId: 7 });
    if (decoded.type === 'cancel-request') expect(decoded.secretKeyBytes).toEqual(key);
  });

  it('startupPacketLength reads the declared length, or null before 4 bytes arrive', () => {
    const packet = startup.message({ user: 'u' });
    expect(startupPacketLength(packet, 0)).toBe(packet.length);
    expect(startupPacketLength(Buffer.concat([Buffer.alloc(3), packet]), 3)).toBe(packet.length);
    expect(startupPacketLength(packet.subarray(0, 3), 0)).toBeNull();
    expect(startupPacketLength(packet, packet.length - 2)).toBeNull();
  });
});

describe('malformed startup packets are refused with a ProtocolError', () => {
  const withLength = (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(n);
    b.writeInt32BE(PROTOCOL_3_0, 4);
    return b;
  };

  it('a declared length over 10000 is refused before the body arrives', () => {
    expectProtocolError(() => startupPacketLength(withLength(10001), 0), /invalid startup packet length 10001: must be between 8 and 10000/);
    expectProtocolError(() => decodeStartupPacket(withLength(10001)), /invalid startup packet length 10001/);
  });

  it('a declared length under 8 (or negative) is refused', () => {
    expectProtocolError(() => startupPacketLength(withLength(7), 0), /invalid startup packet length 7/);
    expectProtocolError(() => startupPacketLength(withLength(-1), 0), /invalid startup packet length -1/);
  });

  it('a packet shorter than its 8-byte header is refused', () => {
    expectProtocolError(() => decodeStartupPacket(Buffer.from([0, 0, 0, 8])), /startup packet is 4 bytes, shorter than its 8-byte header/);
  });

  it('a buffer that is not exactly the declared packet is refused', () => {
    const packet = startup.message({ user: 'u' });
    expectProtocolError(() => decodeStartupPacket(packet.subarray(0, packet.length - 1)), /length field says \d+ but \d+ bytes were given/);
  });

  it('protocol 2.0 is refused as unsupported', () => {
    expectProtocolError(() => decodeStartupPacket(startup.message({ user: 'u' }, 2 << 16)), /unsupported frontend protocol 2\.0: only protocol 3\.x/);
  });

  it('an unknown 1234.x request code is refused', () => {
    const b = new Body().int32((1234 << 16) | 5681).packet();
    expectProtocolError(() => decodeStartupPacket(b), /unknown startup request code 1234\.5681/);
  });

  it('an SSLRequest with extra bytes is refused', () => {
    const b = new Body().int32(80877103).int32(0).packet();
    expectProtocolError(() => decodeStartupPacket(b), /SSLRequest must be 8 bytes, got 12/);
  });

  it('a CancelRequest without a whole key is refused', () => {
    const b = new Body().int32(80877102).int32(1).int16(0).packet();
    expectProtocolError(() => decodeStartupPacket(b), /CancelRequest must be 16 to 268 bytes, got 14/);
  });

  it('a StartupMessage without its final terminator is refused', () => {
    const b = new Body().int32(PROTOCOL_3_0).cstring('user').cstring('u').packet();
    expectProtocolError(() => decodeStartupPacket(b), /missing the final NUL terminator/);
    expectProtocolError(() => decodeStartupPacket(withLength(8)), /missing the final NUL terminator/);
  });

  it('a parameter value without its NUL terminator is refused', () => {
    const b = new Body().int32(PROTOCOL_3_0).cstring('user').raw('u').packet();
    expectProtocolError(() => decodeStartupPacket(b), /value of parameter "user" has no NUL terminator/);
  });

  it('bytes after the final terminator are refused', () => {
    const b = new Body().int32(PROTOCOL_3_0).cstring('user').cstring('u').byte(0).raw('zz').packet();
    expectProtocolError(() => decodeStartupPacket(b), /2 unexpected bytes after the final NUL terminator/);
  });
});
