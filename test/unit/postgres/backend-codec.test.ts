// Decoders of the server messages the proxy reads: status, tags, errors,
// parameters, keys, authentication, and (for its own queries) rows.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeCommandComplete,
  decodeDataRowText,
  decodeErrorResponse,
  decodeNoticeResponse,
  decodeNotificationResponse,
  decodeParameterStatus,
  decodeReadyForQuery,
  decodeRowDescription,
} from '../../../src/postgres/backend-codec.js';
import { ProtocolError } from '../../../src/postgres/messages.js';
import { Body, server } from '../../fixtures/pg-messages.js';

const whole = (b: Buffer): [Buffer, number, number] => [b, 0, b.length];

function expectProtocolError(fn: () => unknown, message: RegExp): void {
  expect(fn).toThrow(ProtocolError);
  expect(fn).toThrow(message);
}

describe('decoding server messages', () => {
  it('ReadyForQuery yields the transaction status I, T or E', () => {
    for (const s of ['I', 'T', 'E'] as const) expect(decodeReadyForQuery(...whole(server.readyForQuery(s)))).toBe(s);
  });

  it('CommandComplete yields the command tag', () => {
    expect(decodeCommandComplete(...whole(server.commandComplete('INSERT 0 12')))).toBe('INSERT 0 12');
  });

  it('ErrorResponse yields SQLSTATE, message, the non-localized severity and every field', () => {
    const msg = server.errorResponse({
      S: 'FEHLER', V: 'ERROR', C: '42P01', M: 'Relation »nope« existiert nicht', P: '15', F: 'parse_relation.c',
    });
    const e = decodeErrorResponse(...whole(msg));
    expect(e).toMatchObject({ type: 'ErrorResponse', severity: 'ERROR', code: '42P01', message: 'Relation »nope« existiert nicht' });
    expect(Object.fromEntries(e.fields)).toEqual({
      S: 'FEHLER', V: 'ERROR', C: '42P01', M: 'Relation »nope« existiert nicht', P: '15', F: 'parse_relation.c',
    });
  });

  it('ErrorResponse without V (servers before 9.6) falls back to S for severity', () => {
    expect(decodeErrorResponse(...whole(server.errorResponse({ S: 'FATAL', C: '28P01', M: 'bad password' }))).severity).toBe('FATAL');
  });

  it('NoticeResponse decodes like ErrorResponse', () => {
    const n = decodeNoticeResponse(...whole(server.noticeResponse({ S: 'WARNING', V: 'WARNING', C: '01000', M: 'careful' })));
    expect(n).toMatchObject({ type: 'NoticeResponse', severity: 'WARNING', code: '01000', message: 'careful' });
  });

  it('ParameterStatus yields name and value', () => {
    expect(decodeParameterStatus(...whole(server.parameterStatus('DateStyle', 'ISO, MDY')))).toEqual({
      type: 'ParameterStatus', name: 'DateStyle', value: 'ISO, MDY',
    });
  });

  it('BackendKeyData yields process id and secret key (4 bytes, or up to 256 in protocol 3.2)', () => {
    expect(decodeBackendKeyData(...whole(server.backendKeyData(77, -2)))).toMatchObject({ processId: 77, secretKey: -2 });
    const key = Buffer.alloc(32, 9);
    const long = decodeBackendKeyData(...whole(server.backendKeyDataLongKey(78, key)));
    expect(long.secretKeyBytes).toEqual(key);
  });

  it('Authentication yields its code and the bytes after it', () => {
    expect(decodeAuthentication(...whole(server.authenticationOk()))).toMatchObject({ code: 0 });
    expect(decodeAuthentication(...whole(server.authenticationCleartextPassword())).code).toBe(3);
    const md5 = decodeAuthentication(...whole(server.authenticationMD5Password(Buffer.from([1, 2, 3, 4]))));
    expect([md5.code, [...md5.data]]).toEqual([5, [1, 2, 3, 4]]);
    const sasl = decodeAuthentication(...whole(server.authenticationSASL(['SCRAM-SHA-256'])));
    expect([sasl.code, sasl.data.toString('latin1')]).toEqual([10, 'SCRAM-SHA-256\0\0']);
    expect(decodeAuthentication(...whole(server.authenticationSASLContinue('r=abc'))).code).toBe(11);
    expect(decodeAuthentication(...whole(server.authenticationSASLFinal('v=xyz'))).data.toString()).toBe('v=xyz');
  });

  it('RowDescription yields every column attribute', () => {
    const msg = server.rowDescription([
      { name: 'id', tableOid: 3000000000, columnAttr: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
      { name: 'price', tableOid: 0, columnAttr: 0, typeOid: 1700, typeSize: -1, typeMod: 655366, format: 1 },
    ]);
    expect(decodeRowDescription(...whole(msg)).fields).toEqual([
      { name: 'id', tableOid: 3000000000, columnAttr: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
      { name: 'price', tableOid: 0, columnAttr: 0, typeOid: 1700, typeSize: -1, typeMod: 655366, format: 1 },
    ]);
  });

  it('DataRow (internal queries only) yields text values and NULLs', () => {
    expect(decodeDataRowText(...whole(server.dataRow(['public', null, '', 'ü'])))).toEqual(['public', null, '', 'ü']);
  });

  it('NotificationResponse yields process id, channel and payload', () => {
    expect(decodeNotificationResponse(...whole(server.notificationResponse(12, 'jobs', '{"id":1}')))).toEqual({
      type: 'NotificationResponse', processId: 12, channel: 'jobs', payload: '{"id":1}',
    });
  });

  it('decoders read a message in place inside a larger chunk', () => {
    const z = server.readyForQuery('T');
    const chunk = Buffer.concat([server.commandComplete('BEGIN'), z]);
    expect(decodeReadyForQuery(chunk, chunk.length - z.length, chunk.length)).toBe('T');
  });
});

describe('malformed server messages are refused with a ProtocolError', () => {
  it('an unknown transaction status is refused', () => {
    expectProtocolError(() => decodeReadyForQuery(...whole(new Body().raw('X').message('Z'))), /invalid transaction status 'X'/);
  });

  it('an ErrorResponse missing its final terminator is refused', () => {
    const e = new Body().raw('S').cstring('ERROR').message('E');
    expectProtocolError(() => decodeErrorResponse(...whole(e)), /ErrorResponse: field type needs 1 bytes but only 0 are left/);
  });

  it('an ErrorResponse field without its NUL is refused', () => {
    const e = new Body().raw('M').raw('oops').message('E');
    expectProtocolError(() => decodeErrorResponse(...whole(e)), /field 'M' has no NUL terminator/);
  });

  it('a DataRow whose column count runs past the end is refused', () => {
    const d = new Body().int16(3).int32(1).raw('a').message('D');
    expectProtocolError(() => decodeDataRowText(...whole(d)), /DataRow: length of column 2 of 3 needs 4 bytes/);
  });

  it('a RowDescription cut inside a field is refused', () => {
    const t = new Body().int16(1).cstring('id').uint32(1).message('T');
    expectProtocolError(() => decodeRowDescription(...whole(t)), /field 1 of 1 column number needs 2 bytes/);
  });

  it('a BackendKeyData with a key shorter than 4 bytes is refused', () => {
    const k = new Body().int32(1).int16(0).message('K');
    expectProtocolError(() => decodeBackendKeyData(...whole(k)), /secret key of 2 bytes: expected 4 to 256/);
  });

  it('a CommandComplete of another type is refused', () => {
    expectProtocolError(() => decodeCommandComplete(...whole(server.readyForQuery('I'))), /expected type 'C', got 'Z'/);
  });
});
