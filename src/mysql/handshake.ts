// The connection phase: the server's greeting (HandshakeV10) and the client's
// HandshakeResponse41 (or SSLRequest). The proxy reads both for capability
// flags, character set, user and initial database, and rewrites the
// capability flags it cannot carry; the authentication bytes pass untouched.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
// https://mariadb.com/kb/en/connection/

import { Cap, MysqlProtocolError, nulAt, readLenenc } from './protocol.js';

export interface Greeting {
  serverVersion: string;
  connectionId: number;
  /** Low 32 capability bits. */
  capabilities: number;
  /** MariaDB extended capabilities (0 for MySQL). */
  mariaCapabilities: number;
  charset: number;
  status: number;
  /** Offsets of the capability fields in the payload, for rewriting. */
  at: { capLow: number; capHigh: number; mariaCaps: number | null };
}

/** Decodes a greeting payload (`payload` = bytes after the 4-byte header). */
export function decodeGreeting(payload: Buffer): Greeting {
  if (payload.length < 1 || payload[0] !== 10) throw new MysqlProtocolError('not a protocol-10 greeting');
  const versionEnd = nulAt(payload, 1, payload.length);
  if (versionEnd < 0) throw new MysqlProtocolError('greeting: no server version');
  let at = versionEnd + 1;
  if (at + 4 + 8 + 1 + 2 > payload.length) throw new MysqlProtocolError('greeting too short');
  const connectionId = payload.readUInt32LE(at);
  at += 4 + 8 + 1; // connection id, auth data part 1, filler
  const capLow = at;
  let capabilities = payload.readUInt16LE(at);
  at += 2;
  let charset = 0;
  let status = 0;
  let capHigh = -1;
  let mariaCaps: number | null = null;
  let mariaCapabilities = 0;
  if (at + 1 + 2 + 2 + 1 + 10 <= payload.length) {
    charset = payload[at]!;
    status = payload.readUInt16LE(at + 1);
    capHigh = at + 3;
    capabilities |= payload.readUInt16LE(capHigh) << 16;
    capabilities >>>= 0;
    // 1 byte auth data length, then 10 reserved bytes: MariaDB puts its
    // extended capabilities in the last 4 when it clears CLIENT_LONG_PASSWORD.
    if ((capabilities & Cap.LongPassword) === 0) {
      mariaCaps = at + 3 + 2 + 1 + 6;
      mariaCapabilities = payload.readUInt32LE(mariaCaps);
    }
  }
  return {
    serverVersion: payload.toString('latin1', 1, versionEnd),
    connectionId,
    capabilities,
    mariaCapabilities,
    charset,
    status,
    at: { capLow, capHigh: capHigh < 0 ? capLow : capHigh, mariaCaps },
  };
}

/** A copy of the greeting payload with `clear` / `clearMaria` bits removed and `set` bits added. */
export function rewriteGreeting(payload: Buffer, g: Greeting, clear: number, clearMaria: number, set = 0): Buffer {
  const out = Buffer.from(payload);
  const caps = ((g.capabilities & ~clear) | set) >>> 0;
  out.writeUInt16LE(caps & 0xffff, g.at.capLow);
  if (g.at.capHigh !== g.at.capLow) out.writeUInt16LE(caps >>> 16, g.at.capHigh);
  if (g.at.mariaCaps !== null) out.writeUInt32LE((g.mariaCapabilities & ~clearMaria) >>> 0, g.at.mariaCaps);
  return out;
}

export interface HandshakeResponse {
  capabilities: number;
  mariaCapabilities: number;
  charset: number;
  /** Only the 32-byte prefix: the client asks for TLS before the real response. */
  sslRequest: boolean;
  user: string;
  database: string | null;
  authPlugin: string | null;
}

const FIXED_PART = 32; // caps 4, max packet 4, charset 1, filler 23

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  if (payload.length < FIXED_PART) throw new MysqlProtocolError('handshake response too short');
  const capabilities = payload.readUInt32LE(0);
  if ((capabilities & Cap.Protocol41) === 0) throw new MysqlProtocolError('clients older than protocol 4.1 are not supported');
  const charset = payload[8]!;
  const mariaCapabilities = (capabilities & Cap.LongPassword) === 0 ? payload.readUInt32LE(28) : 0;
  const base = { capabilities, mariaCapabilities, charset };
  if (payload.length === FIXED_PART) {
    if ((capabilities & Cap.Ssl) === 0) throw new MysqlProtocolError('handshake response without a user');
    return { ...base, sslRequest: true, user: '', database: null, authPlugin: null };
  }
  let at = FIXED_PART;
  const userEnd = nulAt(payload, at, payload.length);
  if (userEnd < 0) throw new MysqlProtocolError('handshake response: user not terminated');
  const user = payload.toString('utf8', at, userEnd);
  at = userEnd + 1;
  if (capabilities & Cap.PluginAuthLenencData) {
    const n = readLenenc(payload, at, payload.length);
    if (n === null || at + n.size + n.value > payload.length) throw new MysqlProtocolError('handshake response: bad auth data length');
    at += n.size + n.value;
  } else if (capabilities & Cap.SecureConnection) {
    if (at >= payload.length) throw new MysqlProtocolError('handshake response: missing auth data');
    at += 1 + payload[at]!;
  } else {
    const e = nulAt(payload, at, payload.length);
    if (e < 0) throw new MysqlProtocolError('handshake response: auth data not terminated');
    at = e + 1;
  }
  if (at > payload.length) throw new MysqlProtocolError('handshake response: auth data overruns the packet');
  let database: string | null = null;
  if (capabilities & Cap.ConnectWithDb && at < payload.length) {
    const e = nulAt(payload, at, payload.length);
    if (e < 0) throw new MysqlProtocolError('handshake response: database not terminated');
    database = payload.toString('utf8', at, e);
    at = e + 1;
    if (database === '') database = null;
  }
  let authPlugin: string | null = null;
  if (capabilities & Cap.PluginAuth && at < payload.length) {
    const e = nulAt(payload, at, payload.length);
    authPlugin = payload.toString('latin1', at, e < 0 ? payload.length : e);
  }
  return { ...base, sslRequest: false, user, database, authPlugin };
}

/** A copy of a handshake response (or SSLRequest) payload with bits cleared. */
export function rewriteHandshakeResponse(payload: Buffer, clear: number, clearMaria: number): Buffer {
  const out = Buffer.from(payload);
  const caps = out.readUInt32LE(0);
  out.writeUInt32LE((caps & ~clear) >>> 0, 0);
  if ((caps & Cap.LongPassword) === 0 && out.length >= FIXED_PART) {
    out.writeUInt32LE((out.readUInt32LE(28) & ~clearMaria) >>> 0, 28);
  }
  return out;
}
