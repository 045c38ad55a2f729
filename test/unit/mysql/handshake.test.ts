// The connection phase: greetings (MariaDB's, with extended capabilities in
// the reserved bytes, and a MySQL 8 one) and HandshakeResponse41 / SSLRequest
// are decoded to the exact fields, and capability rewriting changes only the
// capability bytes.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { decodeGreeting, decodeHandshakeResponse, rewriteGreeting, rewriteHandshakeResponse } from '../../../src/mysql/handshake.js';
import { CLEARED_CAPS, CLEARED_MARIA_CAPS, Cap, MariaCap, MysqlProtocolError } from '../../../src/mysql/protocol.js';
import { classicEof, cstring, deprecateEof, lenenc, mariadbCli, mysql2, payloadOf, u16, u32 } from '../../fixtures/mysql-packets.js';

const MARIADB_VERSION = '5.5.5-10.11.19-MariaDB-0+deb12u1';
/** What MariaDB 10.11 announced: 0x81fff7fe, CLIENT_LONG_PASSWORD (bit 0) cleared. */
const MARIADB_CAPS = 0x81fff7fe;

/** Bytes that differ between two equal-length buffers. */
function diff(a: Buffer, b: Buffer): number[] {
  expect(a.length).toBe(b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

function protocolError(fn: () => unknown): MysqlProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MysqlProtocolError);
    return e as MysqlProtocolError;
  }
  throw new Error('expected a MysqlProtocolError');
}

describe('decodeGreeting, MariaDB 10.11 (captured)', () => {
  it.each([
    ['mysql2', mysql2.connect.greeting, 0x250],
    ['mariadb CLI', mariadbCli.connect.greeting, 0x251],
    ['DEPRECATE_EOF', deprecateEof.connect.greeting, 0x252],
    ['classic EOF', classicEof.connect.greeting, 0x253],
  ])('reads every field of the %s session greeting', (_n, h, id) => {
    const g = decodeGreeting(payloadOf(h));
    expect(g).toEqual({
      serverVersion: MARIADB_VERSION,
      connectionId: id,
      capabilities: MARIADB_CAPS,
      mariaCapabilities: 0x1d, // PROGRESS | STMT_BULK_OPERATIONS | EXTENDED_TYPE_INFO | CACHE_METADATA
      charset: 45,
      status: 0x0002,
      at: { capLow: 47, capHigh: 52, mariaCaps: 61 },
    });
  });

  it('points at the capability bytes themselves', () => {
    const p = payloadOf(mysql2.connect.greeting);
    const g = decodeGreeting(p);
    expect(p.readUInt16LE(g.at.capLow)).toBe(0xf7fe);
    expect(p.readUInt16LE(g.at.capHigh)).toBe(0x81ff);
    expect(p.readUInt32LE(g.at.mariaCaps!)).toBe(0x1d);
  });

  it('rewrites only the capability bytes, and leaves the input alone', () => {
    const p = payloadOf(mysql2.connect.greeting);
    const before = Buffer.from(p);
    const g = decodeGreeting(p);
    const out = rewriteGreeting(p, g, CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(p.equals(before)).toBe(true);
    const again = decodeGreeting(out);
    // 0x81fff7fe without COMPRESS 0x20 (zstd, query attributes, optional
    // metadata, MFA are not announced by MariaDB; SESSION_TRACK stays).
    expect(again.capabilities).toBe(0x81fff7de);
    expect(again.capabilities).toBe((MARIADB_CAPS & ~CLEARED_CAPS) >>> 0);
    // 0x1d without PROGRESS, STMT_BULK_OPERATIONS, CACHE_METADATA: EXTENDED_TYPE_INFO stays.
    expect(again.mariaCapabilities).toBe(MariaCap.ExtendedTypeInfo);
    expect(again.serverVersion).toBe(MARIADB_VERSION);
    // 0xfe→0xde in the low half, 0xff→0x7f in the high half, 0x1d→0x08 in the extended ones.
    expect(diff(p, out)).toEqual([47, 61]);
  });
});

// Built from the HandshakeV10 layout as MySQL 8.0 sends it: CLIENT_LONG_PASSWORD
// set, the 10 reserved bytes all zero, caching_sha2_password.
function mysql8Greeting(): Buffer {
  return Buffer.concat([
    Buffer.from([10]),
    cstring('8.0.36'),
    u32(77),
    Buffer.from('abcdefgh'), // auth-plugin-data-part-1
    Buffer.from([0]),
    u16(0xffff),
    Buffer.from([255]), // utf8mb4_0900_ai_ci
    u16(0x0002),
    u16(0xdfff),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.from('ijklmnopqrst\0'),
    cstring('caching_sha2_password'),
  ]);
}

describe('decodeGreeting, MySQL 8 (built by hand)', () => {
  it('reads the fields and finds no MariaDB extended capabilities', () => {
    const g = decodeGreeting(mysql8Greeting());
    expect(g).toEqual({
      serverVersion: '8.0.36',
      connectionId: 77,
      capabilities: 0xdfffffff,
      mariaCapabilities: 0,
      charset: 255,
      status: 2,
      at: { capLow: 21, capHigh: 26, mariaCaps: null },
    });
  });

  it('rewrites the two capability halves and never the reserved bytes', () => {
    const p = mysql8Greeting();
    const out = rewriteGreeting(p, decodeGreeting(p), CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(decodeGreeting(out).capabilities).toBe((0xdfffffff & ~CLEARED_CAPS) >>> 0);
    expect(decodeGreeting(out).capabilities).toBe(0xc1ffffdf);
    // COMPRESS in the low half; OPTIONAL_RESULTSET_METADATA, ZSTD,
    // QUERY_ATTRIBUTES and MULTI_FACTOR_AUTHENTICATION in the high half.
    expect(diff(p, out)).toEqual([21, 27]);
    expect(out.subarray(29, 39).equals(Buffer.alloc(10))).toBe(true);
  });

  it('reads a greeting that stops after the low capability bytes (no charset, status or high half)', () => {
    const short = mysql8Greeting().subarray(0, 23);
    const g = decodeGreeting(short);
    expect(g.capabilities).toBe(0xffff);
    expect(g.charset).toBe(0);
    expect(g.at).toEqual({ capLow: 21, capHigh: 21, mariaCaps: null });
    const out = rewriteGreeting(short, g, Cap.Compress, 0);
    expect(out.readUInt16LE(21)).toBe(0xffdf);
    expect(diff(short, out)).toEqual([21]);
  });
});

describe('decodeGreeting refuses what is not a protocol-10 greeting', () => {
  it.each([
    ['an empty payload', Buffer.alloc(0)],
    ['an ERR instead of a greeting', Buffer.concat([Buffer.from([0xff]), u16(1130), Buffer.from("Host '10.0.0.9' is not allowed")])],
    ['protocol 9', Buffer.concat([Buffer.from([9]), mysql8Greeting().subarray(1)])],
    ['a version without its NUL', Buffer.from([10, 0x38, 0x2e, 0x30])],
    ['a greeting cut inside the scramble', mysql8Greeting().subarray(0, 15)],
  ])('%s', (_n, payload) => {
    expect(protocolError(() => decodeGreeting(payload)).code).toBe(1043);
  });
});

describe('decodeHandshakeResponse (captured)', () => {
  it('reads mysql2: lenenc auth data, CONNECT_WITH_DB, plugin name and attributes after it', () => {
    expect(decodeHandshakeResponse(payloadOf(mysql2.connect.handshakeResponse))).toEqual({
      capabilities: 0x08bbf3ce,
      mariaCapabilities: MariaCap.ExtendedTypeInfo, // mysql2 clears CLIENT_LONG_PASSWORD and asks for it
      charset: 224,
      sslRequest: false,
      user: 'root',
      database: 'test',
      authPlugin: 'mysql_native_password',
    });
  });

  it('reads the mariadb CLI: lenenc auth data, extended capabilities 0x1d, attributes after the plugin', () => {
    const r = decodeHandshakeResponse(payloadOf(mariadbCli.connect.handshakeResponse));
    expect(r).toEqual({
      capabilities: 0x00bfa28c,
      mariaCapabilities: 0x1d,
      charset: 33,
      sslRequest: false,
      user: 'root',
      database: 'test',
      authPlugin: 'mysql_native_password',
    });
    expect(r.capabilities & (Cap.PluginAuthLenencData | Cap.ConnectAttrs)).toBe(Cap.PluginAuthLenencData | Cap.ConnectAttrs);
  });

  it.each([
    ['DEPRECATE_EOF', deprecateEof.connect.handshakeResponse, 0x010fa209],
    ['classic EOF', classicEof.connect.handshakeResponse, 0x000fa209],
  ])('reads the raw %s client (CLIENT_LONG_PASSWORD set: no extended capabilities)', (_n, h, caps) => {
    expect(decodeHandshakeResponse(payloadOf(h))).toEqual({
      capabilities: caps,
      mariaCapabilities: 0,
      charset: 45,
      sslRequest: false,
      user: 'root',
      database: 'test',
      authPlugin: 'mysql_native_password',
    });
  });
});

describe('rewriteHandshakeResponse (captured)', () => {
  it('clears the capability bits and MariaDB extensions, and nothing else', () => {
    const p = payloadOf(mysql2.connect.handshakeResponse);
    const out = rewriteHandshakeResponse(p, CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(out.readUInt32LE(0)).toBe(0x00bbf3ce); // without QUERY_ATTRIBUTES; SESSION_TRACK stays
    expect(out.readUInt32LE(28)).toBe(8);
    expect(diff(p, out)).toEqual([3]);
    expect(decodeHandshakeResponse(out).user).toBe('root');
  });

  it('clears the mariadb CLI extensions PROGRESS, STMT_BULK_OPERATIONS and CACHE_METADATA', () => {
    const p = payloadOf(mariadbCli.connect.handshakeResponse);
    const out = rewriteHandshakeResponse(p, CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(out.readUInt32LE(0)).toBe(0x00bfa28c);
    expect(out.readUInt32LE(28)).toBe(MariaCap.ExtendedTypeInfo);
    expect(diff(p, out)).toEqual([28]);
  });

  it('leaves bytes 28..31 alone when the client kept CLIENT_LONG_PASSWORD (a MySQL client)', () => {
    const p = Buffer.from(payloadOf(classicEof.connect.handshakeResponse));
    p.writeUInt32LE(0xffffffff, 28); // not extended capabilities: filler as far as MariaDB is concerned
    const out = rewriteHandshakeResponse(p, CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(out.readUInt32LE(28)).toBe(0xffffffff);
    expect(diff(p, out)).toEqual([]);
  });
});

interface ResponseSpec {
  caps: number;
  maria?: number;
  charset?: number;
  user?: Buffer | string;
  auth?: Buffer;
  /** How the auth data is written (default: from the capabilities). */
  authForm?: 'lenenc' | 'byte' | 'nul' | 'none';
  db?: string;
  plugin?: string;
  attrs?: Buffer;
}

/** A HandshakeResponse41 payload written field by field from the spec. */
function response(s: ResponseSpec): Buffer {
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(s.caps >>> 0, 0);
  fixed.writeUInt32LE(16 << 20, 4);
  fixed[8] = s.charset ?? 45;
  if (s.maria !== undefined) fixed.writeUInt32LE(s.maria, 28);
  const parts = [fixed, typeof s.user === 'string' || s.user === undefined ? cstring(s.user ?? 'app') : s.user];
  const auth = s.auth ?? Buffer.alloc(0);
  const form =
    s.authForm ?? (s.caps & Cap.PluginAuthLenencData ? 'lenenc' : s.caps & Cap.SecureConnection ? 'byte' : 'nul');
  if (form === 'lenenc') parts.push(lenenc(auth.length), auth);
  else if (form === 'byte') parts.push(Buffer.from([auth.length]), auth);
  else if (form === 'nul') parts.push(auth, Buffer.from([0]));
  if (s.db !== undefined) parts.push(cstring(s.db));
  if (s.plugin !== undefined) parts.push(cstring(s.plugin));
  if (s.attrs !== undefined) parts.push(s.attrs);
  return Buffer.concat(parts);
}

const BASE = Cap.LongPassword | Cap.Protocol41 | Cap.SecureConnection | Cap.PluginAuth;
const SCRAMBLE = Buffer.from('0123456789abcdef0123', 'latin1'); // 20 bytes, like mysql_native_password

describe('decodeHandshakeResponse (built by hand)', () => {
  it('reads CONNECT_WITH_DB, a 20-byte auth response, the plugin name and connection attributes', () => {
    const attrs = Buffer.concat([lenenc(14), Buffer.from([12]), Buffer.from('_client_name'), Buffer.from([0])]);
    const r = decodeHandshakeResponse(
      response({ caps: BASE | Cap.ConnectWithDb | Cap.ConnectAttrs, auth: SCRAMBLE, db: 'shop', plugin: 'mysql_native_password', attrs }),
    );
    expect(r).toEqual({
      capabilities: BASE | Cap.ConnectWithDb | Cap.ConnectAttrs,
      mariaCapabilities: 0,
      charset: 45,
      sslRequest: false,
      user: 'app',
      database: 'shop',
      authPlugin: 'mysql_native_password',
    });
  });

  it('skips a lenenc auth response of 300 bytes (0xfc length) to find the database', () => {
    const auth = Buffer.alloc(300, 0x41);
    auth[0] = 0; // a NUL inside the auth data must not end anything
    const r = decodeHandshakeResponse(
      response({ caps: BASE | Cap.PluginAuthLenencData | Cap.ConnectWithDb, auth, db: 'db1', plugin: 'client_ed25519' }),
    );
    expect([r.user, r.database, r.authPlugin]).toEqual(['app', 'db1', 'client_ed25519']);
  });

  it('reads a pre-SECURE_CONNECTION response whose auth data ends with a NUL', () => {
    const r = decodeHandshakeResponse(
      response({ caps: Cap.Protocol41 | Cap.ConnectWithDb, auth: Buffer.from('oldhash'), db: 'legacy' }),
    );
    expect([r.user, r.database, r.authPlugin]).toEqual(['app', 'legacy', null]);
  });

  it('reads a multi-byte UTF-8 user name', () => {
    const r = decodeHandshakeResponse(response({ caps: BASE, user: 'jürgen', auth: SCRAMBLE, plugin: 'mysql_native_password' }));
    expect(r.user).toBe('jürgen');
  });

  it('reads no database when CONNECT_WITH_DB is not set, even if bytes follow', () => {
    const r = decodeHandshakeResponse(response({ caps: BASE, auth: SCRAMBLE, plugin: 'caching_sha2_password' }));
    expect(r.database).toBeNull();
    expect(r.authPlugin).toBe('caching_sha2_password');
  });

  it('reads an empty database name as none', () => {
    const r = decodeHandshakeResponse(response({ caps: BASE | Cap.ConnectWithDb, auth: SCRAMBLE, db: '', plugin: 'mysql_native_password' }));
    expect(r.database).toBeNull();
    expect(r.authPlugin).toBe('mysql_native_password');
  });

  it('reads a response that ends after the auth data (CONNECT_WITH_DB set, no database sent)', () => {
    const r = decodeHandshakeResponse(response({ caps: BASE | Cap.ConnectWithDb, auth: SCRAMBLE }));
    expect([r.database, r.authPlugin]).toEqual([null, null]);
  });

  it('reads a plugin name that runs to the end of the packet without its NUL', () => {
    const p = response({ caps: BASE, auth: SCRAMBLE, plugin: 'mysql_native_password' });
    expect(decodeHandshakeResponse(p.subarray(0, p.length - 1)).authPlugin).toBe('mysql_native_password');
  });

  it('reads MariaDB extended capabilities only when CLIENT_LONG_PASSWORD is cleared', () => {
    const caps = Cap.Protocol41 | Cap.SecureConnection;
    expect(decodeHandshakeResponse(response({ caps, maria: 0x1d, auth: SCRAMBLE })).mariaCapabilities).toBe(0x1d);
    expect(decodeHandshakeResponse(response({ caps: caps | Cap.LongPassword, maria: 0x1d, auth: SCRAMBLE })).mariaCapabilities).toBe(0);
  });

  it('reads a 32-byte SSLRequest', () => {
    const ssl = response({ caps: BASE | Cap.Ssl | Cap.ConnectWithDb, charset: 33 }).subarray(0, 32);
    expect(decodeHandshakeResponse(ssl)).toEqual({
      capabilities: BASE | Cap.Ssl | Cap.ConnectWithDb,
      mariaCapabilities: 0,
      charset: 33,
      sslRequest: true,
      user: '',
      database: null,
      authPlugin: null,
    });
  });

  it('rewrites a MariaDB SSLRequest, extended capabilities included', () => {
    const ssl = response({ caps: Cap.Protocol41 | Cap.Ssl | Cap.SessionTrack, maria: 0x1d }).subarray(0, 32);
    const out = rewriteHandshakeResponse(ssl, CLEARED_CAPS, CLEARED_MARIA_CAPS);
    expect(out.length).toBe(32);
    expect(out.readUInt32LE(0)).toBe(Cap.Protocol41 | Cap.Ssl | Cap.SessionTrack);
    expect(out.readUInt32LE(28)).toBe(MariaCap.ExtendedTypeInfo);
  });
});

describe('decodeHandshakeResponse refuses a malformed response with a MysqlProtocolError (1043, 08S01)', () => {
  const lenencCaps = BASE | Cap.PluginAuthLenencData | Cap.ConnectWithDb;
  it.each([
    ['empty', Buffer.alloc(0)],
    ['31 bytes', response({ caps: BASE }).subarray(0, 31)],
    ['32 bytes without CLIENT_SSL', response({ caps: BASE }).subarray(0, 32)],
    ['no CLIENT_PROTOCOL_41', response({ caps: Cap.LongPassword | Cap.SecureConnection, auth: SCRAMBLE })],
    ['no NUL after the user', Buffer.concat([response({ caps: BASE }).subarray(0, 32), Buffer.from('root')])],
    ['no auth data after the user (SECURE_CONNECTION)', response({ caps: BASE, authForm: 'none' })],
    ['a one-byte auth length past the end', response({ caps: BASE, auth: SCRAMBLE }).subarray(0, 32 + 4 + 1 + 10)],
    ['a lenenc auth length past the end', response({ caps: lenencCaps, auth: SCRAMBLE }).subarray(0, 32 + 4 + 1 + 19)],
    ['a lenenc auth length cut inside its 0xfc form', Buffer.concat([response({ caps: lenencCaps }).subarray(0, 36), Buffer.from([0xfc, 0x2c])])],
    ['a lenenc auth length of 0xff', Buffer.concat([response({ caps: lenencCaps }).subarray(0, 36), Buffer.from([0xff])])],
    ['pre-4.1 auth data without its NUL', Buffer.concat([response({ caps: Cap.Protocol41 }).subarray(0, 36), Buffer.from('abc')])],
    ['a database without its NUL', Buffer.concat([response({ caps: BASE | Cap.ConnectWithDb, auth: SCRAMBLE }), Buffer.from('shop')])],
  ])('%s', (_n, payload) => {
    const e = protocolError(() => decodeHandshakeResponse(payload));
    expect(e.code).toBe(1043);
    expect(e.sqlState).toBe('08S01');
  });

  it('ends the auth data exactly at the packet end without complaint', () => {
    const p = response({ caps: BASE, auth: SCRAMBLE });
    expect(decodeHandshakeResponse(p).user).toBe('app');
    expect(() => decodeHandshakeResponse(p.subarray(0, p.length - 1))).toThrow(MysqlProtocolError);
  });
});
