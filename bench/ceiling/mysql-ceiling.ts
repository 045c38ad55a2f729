// The MySQL/MariaDB ceiling: a fake server (the server side) that accepts any
// login without checking it and answers every query and every prepared
// execute with one pre-encoded row (one INT column, value 1), never touching
// a database. The MariaDB rows of bench/run.ts are reported against it.
//
// Protocol: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basics.html
//
//   connect ──▶ Handshake v10 (seq 0) ──▶ auth
//   auth ──HandshakeResponse41 (seq 1)──▶ OK (seq 2) ──▶ command
//   command ──COM_*──▶ reply, seq 1… ──▶ command     COM_QUIT ──▶ closed
//
// Every command starts a new sequence at 0, so each reply's sequence ids are
// fixed and the replies are encoded once. No SSL, no auth switch, no cursors.

import type net from 'node:net';
import { isMain, listenCeiling, runCeilingCli, type CeilingServer } from './ceiling-listener.js';

// Capability flags: https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
const CLIENT_LONG_PASSWORD = 0x1; // also MariaDB's "CLIENT_MYSQL": keeps libmariadb off the extended-capability bytes
const CLIENT_LONG_FLAG = 0x4;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_MULTI_RESULTS = 0x20000;
const CLIENT_PS_MULTI_RESULTS = 0x40000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;
const CLIENT_DEPRECATE_EOF = 0x1000000;
const SERVER_CAPABILITIES =
  CLIENT_LONG_PASSWORD |
  CLIENT_LONG_FLAG |
  CLIENT_CONNECT_WITH_DB |
  CLIENT_PROTOCOL_41 |
  CLIENT_TRANSACTIONS |
  CLIENT_SECURE_CONNECTION |
  CLIENT_MULTI_RESULTS |
  CLIENT_PS_MULTI_RESULTS |
  CLIENT_PLUGIN_AUTH |
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CLIENT_DEPRECATE_EOF;
const SERVER_STATUS_AUTOCOMMIT = 0x0002;
const UTF8MB4_GENERAL_CI = 45;
const BINARY_CHARSET = 63;
const MYSQL_TYPE_LONG = 0x03;
const MYSQL_TYPE_VAR_STRING = 0xfd;

const COM_QUIT = 0x01;
const COM_QUERY = 0x03;
const COM_STMT_PREPARE = 0x16;
const COM_STMT_EXECUTE = 0x17;
const COM_STMT_SEND_LONG_DATA = 0x18;
const COM_STMT_CLOSE = 0x19;

// ---- encoding (all at startup, except a prepare's statement id) ----

/** One packet: 3-byte little-endian length, sequence id, payload. */
function packet(seq: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const header = Buffer.alloc(4);
  header.writeUIntLE(body.length, 0, 3);
  header[3] = seq;
  return Buffer.concat([header, body]);
}
function bytes(...b: number[]): Buffer {
  return Buffer.from(b);
}
function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
/** A length-encoded string; everything here is shorter than 251 bytes. */
function lenencString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([bytes(b.length), b]);
}

/** OK packet (0x00), or with 0xFE the OK that replaces EOF under CLIENT_DEPRECATE_EOF. */
function okPacket(seq: number, header = 0x00): Buffer {
  return packet(seq, bytes(header, 0, 0), int16(SERVER_STATUS_AUTOCOMMIT), int16(0));
}
function eofPacket(seq: number): Buffer {
  return packet(seq, bytes(0xfe), int16(0), int16(SERVER_STATUS_AUTOCOMMIT));
}
/** ColumnDefinition41. */
function columnDefinition(seq: number, name: string, type: number, charset: number, length: number, flags: number): Buffer {
  return packet(
    seq,
    lenencString('def'),
    lenencString(''), // schema
    lenencString(''), // table
    lenencString(''), // org_table
    lenencString(name),
    lenencString(''), // org_name
    bytes(0x0c),
    int16(charset),
    int32(length),
    bytes(type),
    int16(flags),
    bytes(0), // decimals
    int16(0),
  );
}
const NOT_NULL_BINARY = 0x0001 | 0x0080;
const column = (seq: number): Buffer => columnDefinition(seq, '1', MYSQL_TYPE_LONG, BINARY_CHARSET, 11, NOT_NULL_BINARY);
const parameter = (seq: number): Buffer => columnDefinition(seq, '?', MYSQL_TYPE_VAR_STRING, BINARY_CHARSET, 0, 0x0080);

/** Result set: column count, the column, [EOF], the row, then EOF (or OK-as-EOF). */
function resultSet(row: Buffer, deprecateEof: boolean): Buffer {
  const head = [packet(1, bytes(1)), column(2)];
  return deprecateEof
    ? Buffer.concat([...head, packet(3, row), okPacket(4, 0xfe)])
    : Buffer.concat([...head, eofPacket(3), packet(4, row), eofPacket(5)]);
}
const TEXT_ROW = lenencString('1');
/** Binary row: 0x00, NULL bitmap of (columns + 7 + 2) / 8 bytes, then the INT as 4 bytes. */
const BINARY_ROW = Buffer.concat([bytes(0x00, 0x00), int32(1)]);

/** Everything a connection sends, in the two variants CLIENT_DEPRECATE_EOF selects between. */
interface Replies {
  deprecateEof: boolean;
  textResult: Buffer;
  binaryResult: Buffer;
  /** COM_STMT_PREPARE reply by parameter count; the statement id at PREPARE_ID_OFFSET is patched per prepare. */
  prepare: Buffer[];
}
const PREPARE_ID_OFFSET = 5; // 4-byte header + the 0x00 status byte

function replies(deprecateEof: boolean): Replies {
  return { deprecateEof, textResult: resultSet(TEXT_ROW, deprecateEof), binaryResult: resultSet(BINARY_ROW, deprecateEof), prepare: [] };
}
const WITH_EOF = replies(false);
const WITHOUT_EOF = replies(true);

function prepareReply(r: Replies, params: number): Buffer {
  let cached = r.prepare[params];
  if (cached === undefined) {
    let seq = 1;
    const parts = [packet(seq++, bytes(0x00), int32(0), int16(1), int16(params), bytes(0), int16(0))];
    for (let i = 0; i < params; i++) parts.push(parameter(seq++));
    if (params > 0 && !r.deprecateEof) parts.push(eofPacket(seq++));
    parts.push(column(seq++));
    if (!r.deprecateEof) parts.push(eofPacket(seq++));
    cached = Buffer.concat(parts);
    r.prepare[params] = cached;
  }
  return cached;
}

const OK_AFTER_AUTH = okPacket(2);
const OK = okPacket(1);

let connectionIds = 0;
function handshake(connectionId: number): Buffer {
  const scramble = Buffer.from('ceilingceilingceilin', 'latin1'); // 20 bytes; nothing is checked against it
  return packet(
    0,
    bytes(10), // protocol version
    Buffer.from('10.11.0-ceiling\0', 'latin1'),
    int32(connectionId),
    scramble.subarray(0, 8),
    bytes(0),
    int16(SERVER_CAPABILITIES & 0xffff),
    bytes(UTF8MB4_GENERAL_CI),
    int16(SERVER_STATUS_AUTOCOMMIT),
    int16(SERVER_CAPABILITIES >>> 16),
    bytes(scramble.length + 1),
    Buffer.alloc(10), // reserved
    scramble.subarray(8),
    bytes(0),
    Buffer.from('mysql_native_password\0', 'latin1'),
  );
}

/** True for COM_QUERY text that returns rows; anything else gets OK. Hot path: a select is decided by 6 bytes. */
function returnsRows(buf: Buffer, start: number, end: number): boolean {
  if (
    end - start >= 6 &&
    (buf[start]! | 0x20) === 0x73 && // s
    (buf[start + 1]! | 0x20) === 0x65 && // e
    (buf[start + 2]! | 0x20) === 0x6c && // l
    (buf[start + 3]! | 0x20) === 0x65 && // e
    (buf[start + 4]! | 0x20) === 0x63 && // c
    (buf[start + 5]! | 0x20) === 0x74 // t
  )
    return true;
  let i = start;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09 || buf[i] === 0x28)) i++;
  const word = buf.toString('latin1', i, Math.min(end, i + 8)).toLowerCase();
  return /^(select|show|with|values|desc|explain|table)\b/.test(word);
}

/** Prepared-statement parameters: the `?` bytes, which is enough for the statements benchmarks send. */
function countParameters(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(0x3f, start); i >= 0 && i < end; i = buf.indexOf(0x3f, i + 1)) n++;
  return n;
}

// ---- one connection ----

class MysqlCeilingSession {
  private authenticated = false;
  private r: Replies = WITH_EOF;
  private statementIds = 0;
  /** Bytes of a packet cut by the end of a chunk, waiting for the rest. */
  private pending: Buffer | null = null;
  private readonly out: Buffer[] = [];
  private outLength = 0;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.write(handshake(++connectionIds));
  }

  // HOT PATH: every command from a benchmark client arrives here.
  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    let closing = false;
    while (!closing && buf.length - off >= 4) {
      const end = off + 4 + buf.readUIntLE(off, 3);
      if (end > buf.length) break;
      closing = this.packet(buf, off + 4, end);
      off = end;
    }
    if (off < buf.length && !closing) this.pending = buf.subarray(off);
    if (this.out.length === 1) this.socket.write(this.out[0]!);
    else if (this.out.length > 1) this.socket.write(Buffer.concat(this.out, this.outLength));
    this.out.length = 0;
    this.outLength = 0;
    if (closing) this.socket.end();
  }

  private reply(b: Buffer): void {
    this.out.push(b);
    this.outLength += b.length;
  }

  /** One packet, payload buf[start..end). Returns true when the connection is to close. */
  private packet(buf: Buffer, start: number, end: number): boolean {
    if (!this.authenticated) {
      // HandshakeResponse41: the client's capabilities come first. Whatever it
      // sent as credentials, it is in.
      const clientCaps = end - start >= 4 ? buf.readUInt32LE(start) : 0;
      this.r = clientCaps & CLIENT_DEPRECATE_EOF ? WITHOUT_EOF : WITH_EOF;
      this.authenticated = true;
      this.reply(OK_AFTER_AUTH);
      return false;
    }
    switch (buf[start]) {
      case COM_QUERY:
        this.reply(returnsRows(buf, start + 1, end) ? this.r.textResult : OK);
        return false;
      case COM_STMT_EXECUTE:
        this.reply(this.r.binaryResult);
        return false;
      case COM_STMT_PREPARE: {
        const reply = Buffer.from(prepareReply(this.r, countParameters(buf, start + 1, end)));
        reply.writeUInt32LE(++this.statementIds, PREPARE_ID_OFFSET);
        this.reply(reply);
        return false;
      }
      case COM_STMT_CLOSE: // no reply, by the protocol
      case COM_STMT_SEND_LONG_DATA:
        return false;
      case COM_QUIT:
        return true;
      default: // COM_PING, COM_INIT_DB, COM_STMT_RESET, COM_SET_OPTION, … : OK
        this.reply(OK);
        return false;
    }
  }
}

/** Start the MySQL ceiling on 127.0.0.1:port (0 = any free port). */
export function startMysqlCeiling(port = 0): Promise<CeilingServer> {
  return listenCeiling(port, (socket) => new MysqlCeilingSession(socket));
}

if (isMain(import.meta.url)) await runCeilingCli(startMysqlCeiling);
