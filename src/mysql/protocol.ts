// Constants and primitive codecs of the MySQL/MariaDB client/server protocol.
// Spec: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html and
// https://mariadb.com/kb/en/clientserver-protocol/
//
// Hand-written: mysql2 only plays the client (its createServer is not a
// production server side, see DESIGN.md), and the relay needs byte ranges,
// not decoded rows.

/** A packet's payload at most; a longer logical packet continues in the next. */
export const MAX_PAYLOAD = 0xffffff;

export const Command = {
  Quit: 0x01,
  InitDb: 0x02,
  Query: 0x03,
  FieldList: 0x04,
  Statistics: 0x09,
  ProcessKill: 0x0c,
  Debug: 0x0d,
  Ping: 0x0e,
  ChangeUser: 0x11,
  StmtPrepare: 0x16,
  StmtExecute: 0x17,
  StmtSendLongData: 0x18,
  StmtClose: 0x19,
  StmtReset: 0x1a,
  SetOption: 0x1b,
  StmtFetch: 0x1c,
  ResetConnection: 0x1f,
} as const;

// Capability flags (the low 32 bits; MariaDB's extended ones follow).
export const Cap = {
  LongPassword: 1, // MariaDB: cleared by a MariaDB server to say "extended capabilities follow"
  ConnectWithDb: 0x8,
  Compress: 0x20,
  LocalFiles: 0x80,
  Protocol41: 0x200,
  Ssl: 0x800,
  SecureConnection: 0x8000,
  MultiStatements: 0x10000,
  MultiResults: 0x20000,
  PsMultiResults: 0x40000,
  PluginAuth: 0x80000,
  ConnectAttrs: 0x100000,
  PluginAuthLenencData: 0x200000,
  SessionTrack: 0x800000,
  DeprecateEof: 0x1000000,
  OptionalResultsetMetadata: 0x2000000,
  Zstd: 0x4000000,
  QueryAttributes: 0x8000000,
  MultiFactorAuth: 0x10000000,
} as const;

/** MariaDB extended capabilities, as the upper 32 bits (already shifted down). */
export const MariaCap = {
  Progress: 1,
  ComMulti: 2,
  StmtBulkOperations: 4,
  ExtendedTypeInfo: 8,
  CacheMetadata: 16,
  BulkUnitResults: 32,
} as const;

/**
 * Capabilities the proxy takes away from both sides, and why:
 * - compression and zstd: the relay reads packets, not compressed frames;
 * - query attributes / optional metadata (MySQL 8): change COM_QUERY and
 *   result layouts we key and replay;
 * - multi-factor auth: not relayed yet.
 * CLIENT_SSL is cleared unless the listener terminates TLS (startup.ts).
 * Session tracking stays: some clients (mysql2) assume it whatever the server
 * says and would misread OK packets without it; a result whose end reports a
 * session state change is simply not stored.
 */
export const CLEARED_CAPS =
  Cap.Compress | Cap.QueryAttributes | Cap.OptionalResultsetMetadata | Cap.Zstd | Cap.MultiFactorAuth;

/**
 * MariaDB extensions taken away: progress reports interleave packets into a
 * result; COM_MULTI and bulk execution are commands the session would have to
 * frame; cached metadata lets a server skip column definitions a replay needs.
 * Extended type info only changes column definitions: it stays, and the
 * negotiated capabilities are part of every key.
 */
export const CLEARED_MARIA_CAPS =
  MariaCap.Progress | MariaCap.ComMulti | MariaCap.StmtBulkOperations | MariaCap.CacheMetadata | MariaCap.BulkUnitResults;

export const Status = {
  InTrans: 0x1,
  Autocommit: 0x2,
  MoreResultsExist: 0x8,
  CursorExists: 0x40,
  NoBackslashEscapes: 0x200,
  InTransReadonly: 0x2000,
  SessionStateChanged: 0x4000,
} as const;

/** The status bits that describe the session, not the result: rewritten on replay. */
export const SESSION_STATUS_BITS = Status.InTrans | Status.Autocommit | Status.InTransReadonly | Status.NoBackslashEscapes;

/** Thrown for bytes that break the protocol; the connection is closed after it. */
export class MysqlProtocolError extends Error {
  constructor(
    message: string,
    /** MySQL error code to answer with (1043 bad handshake, 1047 unknown command, 1153 packet too large). */
    readonly code = 1043,
    readonly sqlState = '08S01',
  ) {
    super(message);
  }
}

/** A length-encoded integer at `at`: its value (lengths stay far below 2^53) and the bytes it took. */
export function readLenenc(buf: Buffer, at: number, end: number): { value: number; size: number } | null {
  if (at >= end) return null;
  const first = buf[at]!;
  if (first < 0xfb) return { value: first, size: 1 };
  if (first === 0xfc) return at + 3 <= end ? { value: buf.readUInt16LE(at + 1), size: 3 } : null;
  if (first === 0xfd) return at + 4 <= end ? { value: buf.readUIntLE(at + 1, 3), size: 4 } : null;
  if (first === 0xfe) {
    if (at + 9 > end) return null;
    const v = buf.readBigUInt64LE(at + 1);
    return { value: v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v), size: 9 };
  }
  return null; // 0xfb is NULL in a row, 0xff an error: not a length
}

export function lenencBytes(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n <= 0xffffff) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

/** A NUL-terminated string's end (the NUL's index), or -1. */
export function nulAt(buf: Buffer, at: number, end: number): number {
  const i = buf.indexOf(0, at);
  return i < 0 || i >= end ? -1 : i;
}

/** Frames `payload` as packets with sequence ids from `seq`, splitting at 16 MiB. */
export function packet(seq: number, payload: Buffer): Buffer {
  if (payload.length < MAX_PAYLOAD) {
    const out = Buffer.allocUnsafe(4 + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, 4);
    return out;
  }
  const parts: Buffer[] = [];
  let at = 0;
  let s = seq;
  for (;;) {
    const n = Math.min(MAX_PAYLOAD, payload.length - at);
    const head = Buffer.allocUnsafe(4);
    head.writeUIntLE(n, 0, 3);
    head[3] = s++ & 0xff;
    parts.push(head, payload.subarray(at, at + n));
    at += n;
    if (n < MAX_PAYLOAD) break; // a full-size last piece needs an empty one after it
  }
  return Buffer.concat(parts);
}
