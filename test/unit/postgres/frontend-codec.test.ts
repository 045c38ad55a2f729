// Decoders of the client messages that decide caching: Query, Parse, Bind,
// Describe, Execute, Close — on pg-protocol-built fixtures and on broken bytes.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  ProtocolError,
  decodeBind,
  decodeClose,
  decodeDescribe,
  decodeExecute,
  decodeParse,
  decodeQuery,
} from '../../../src/postgres/frontend-codec.js';
import { Body, client } from '../../fixtures/pg-messages.js';

const whole = (b: Buffer): [Buffer, number, number] => [b, 0, b.length];

/** The message with `n` bytes cut off its end, its length field rewritten to match. */
function truncated(message: Buffer, n: number): Buffer {
  const b = Buffer.from(message.subarray(0, message.length - n));
  b.writeInt32BE(b.length - 1, 1);
  return b;
}

function expectProtocolError(fn: () => unknown, message: RegExp): void {
  expect(fn).toThrow(ProtocolError);
  expect(fn).toThrow(message);
}

describe('decoding client messages', () => {
  it('Query yields the SQL text, decoded as UTF-8', () => {
    expect(decodeQuery(...whole(client.query("SELECT 'é', '日本'")))).toEqual({
      type: 'Query',
      sql: "SELECT 'é', '日本'",
    });
  });

  it('decoders read a message in place inside a larger chunk', () => {
    const q = client.query('SELECT 1');
    const chunk = Buffer.concat([client.sync(), q, client.sync()]);
    expect(decodeQuery(chunk, 5, 5 + q.length).sql).toBe('SELECT 1');
  });

  it('Parse yields name, SQL and parameter type OIDs (unsigned)', () => {
    const msg = client.parse('stmt_1', 'SELECT $1, $2, $3', [23, 0, 4294967295]);
    expect(decodeParse(...whole(msg))).toEqual({
      type: 'Parse',
      name: 'stmt_1',
      sql: 'SELECT $1, $2, $3',
      paramTypes: [23, 0, 4294967295],
    });
  });

  it('Bind yields portal, statement, formats, NULLs and parameter values without copying', () => {
    const msg = client.bind({ portal: 'p1', statement: 's1', values: ['42', null, Buffer.from([1, 2, 3])], binary: true });
    const bind = decodeBind(...whole(msg));
    expect(bind).toMatchObject({
      type: 'Bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 0, 1],
      resultFormats: [1],
      keyEnd: msg.length,
    });
    expect(bind.params.map((p) => (p === null ? null : [...p]))).toEqual([[0x34, 0x32], null, [1, 2, 3]]);
    expect(bind.params[0]!.buffer).toBe(msg.buffer); // a subarray, not a copy
  });

  it('Bind key range is exactly the bytes after the statement name', () => {
    const msg = client.bind({ portal: '', statement: 's1', values: ['7'] });
    const { keyStart, keyEnd } = decodeBind(...whole(msg));
    expect(keyStart).toBe(1 + 4 + 1 + 3); // type, length, "" NUL, "s1" NUL
    expect(msg.subarray(keyStart, keyEnd)).toEqual(msg.subarray(9));
    // Same parameters under another portal name: the same key bytes.
    const other = client.bind({ portal: 'zz', statement: 's1', values: ['7'] });
    const o = decodeBind(...whole(other));
    expect(other.subarray(o.keyStart, o.keyEnd)).toEqual(msg.subarray(keyStart, keyEnd));
  });

  it('Bind accepts zero parameters and explicit result formats per column', () => {
    const msg = client.bindRaw({ statement: '', params: [], resultFormats: [0, 1, 0] });
    expect(decodeBind(...whole(msg))).toMatchObject({ params: [], paramFormats: [], resultFormats: [0, 1, 0] });
  });

  it('Describe, Execute and Close yield target, names and row limit', () => {
    expect(decodeDescribe(...whole(client.describe('S', 'stmt')))).toEqual({ type: 'Describe', target: 'S', name: 'stmt' });
    expect(decodeDescribe(...whole(client.describe('P')))).toEqual({ type: 'Describe', target: 'P', name: '' });
    expect(decodeExecute(...whole(client.execute('portal', 100)))).toEqual({ type: 'Execute', portal: 'portal', maxRows: 100 });
    expect(decodeExecute(...whole(client.execute()))).toEqual({ type: 'Execute', portal: '', maxRows: 0 });
    expect(decodeClose(...whole(client.close('S', 'stmt')))).toEqual({ type: 'Close', target: 'S', name: 'stmt' });
    expect(decodeClose(...whole(client.close('P', 'c')))).toEqual({ type: 'Close', target: 'P', name: 'c' });
  });
});

describe('malformed client messages are refused with a ProtocolError', () => {
  it('a truncated message (shorter than its header) is refused', () => {
    const q = client.query('SELECT 1');
    expectProtocolError(() => decodeQuery(q, 0, 3), /shorter than its 5-byte header/);
  });

  it('a length field that disagrees with the frame is refused', () => {
    const q = client.query('SELECT 1');
    expectProtocolError(() => decodeQuery(q, 0, q.length - 1), /length field says 13 but the message holds 12 bytes/);
  });

  it('a message of another type is refused, naming both types', () => {
    expectProtocolError(() => decodeQuery(...whole(client.sync())), /Query: expected type 'Q', got 'S'/);
  });

  it('a string without its NUL terminator is refused', () => {
    expectProtocolError(() => decodeQuery(...whole(truncated(client.query('SELECT 1'), 1))), /query string has no NUL terminator/);
    expectProtocolError(() => decodeDescribe(...whole(truncated(client.describe('S', 'abc'), 1))), /statement name has no NUL/);
  });

  it('a NUL in the next message does not rescue a string missing its own', () => {
    const bad = truncated(client.query('SELECT 1'), 1);
    const chunk = Buffer.concat([bad, client.query('x')]);
    expectProtocolError(() => decodeQuery(chunk, 0, bad.length), /no NUL terminator/);
  });

  it('bytes after the last field are refused', () => {
    const q = new Body().cstring('SELECT 1').byte(0x41).message('Q');
    expectProtocolError(() => decodeQuery(...whole(q)), /Query: 1 unexpected bytes after the last field/);
  });

  it('a Parse whose type count runs past the end is refused', () => {
    const p = new Body().cstring('').cstring('SELECT $1').int16(3).int32(23).message('P');
    expectProtocolError(() => decodeParse(...whole(p)), /Parse: parameter type 2 of 3 needs 4 bytes but only 0 are left/);
  });

  it('a Bind whose parameter count runs past the end is refused', () => {
    const b = new Body().cstring('').cstring('').int16(0).int16(5).int32(1).raw('x').message('B');
    expectProtocolError(() => decodeBind(...whole(b)), /Bind: length of parameter 2 of 5 needs 4 bytes but only 0 are left/);
  });

  it('a Bind parameter longer than the message is refused', () => {
    const b = new Body().cstring('').cstring('').int16(0).int16(1).int32(1000).raw('abc').int16(0).message('B');
    expectProtocolError(() => decodeBind(...whole(b)), /parameter 1 of 1 needs 1000 bytes but only 5 are left/);
  });

  it('a Bind parameter length below -1 is refused (only -1 means NULL)', () => {
    const b = new Body().cstring('').cstring('').int16(0).int16(1).int32(-2).int16(0).message('B');
    expectProtocolError(() => decodeBind(...whole(b)), /parameter 1 has invalid length -2/);
  });

  it('a Bind format count past the end is refused', () => {
    const b = new Body().cstring('').cstring('').int16(4).int16(0).message('B');
    expectProtocolError(() => decodeBind(...whole(b)), /Bind: 4 parameter formats need 8 bytes but only 2 are left/);
  });

  it('a Bind missing its result formats is refused', () => {
    const full = client.bindRaw({ params: ['1'], resultFormats: [] });
    expectProtocolError(() => decodeBind(...whole(truncated(full, 2))), /result format count needs 2 bytes/);
  });

  it('a Describe or Close target other than S or P is refused', () => {
    const d = new Body().raw('X').cstring('n').message('D');
    expectProtocolError(() => decodeDescribe(...whole(d)), /Describe: invalid target 'X'/);
    const c = new Body().raw('x').cstring('n').message('C');
    expectProtocolError(() => decodeClose(...whole(c)), /Close: invalid target 'x'/);
  });

  it('an Execute without its row limit is refused', () => {
    expectProtocolError(() => decodeExecute(...whole(truncated(client.execute('p', 5), 4))), /row limit needs 4 bytes/);
  });
});
