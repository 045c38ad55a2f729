// The PostgreSQL ceiling: a fake server (the backend side) that completes any
// startup without authentication and answers every query with one
// pre-encoded int4 row, never touching a database. Whatever a Node.js cache
// hit path does, it cannot beat this on the same machine, so bench/run.ts
// reports sqlcached as a fraction of it.
//
// Protocol: https://www.postgresql.org/docs/current/protocol-message-formats.html
//
//   startup ──SSLRequest/GSSENCRequest──▶ 'N', still startup
//   startup ──StartupMessage──▶ AuthenticationOk … ReadyForQuery ──▶ ready
//   ready ──Query | Parse/Bind/Describe/Execute/Sync/Close/Flush──▶ ready
//   any ──Terminate | CancelRequest──▶ closed
//
// Never an error, so there is no "discard until Sync" state. The transaction
// status is always 'I': nothing here keeps a transaction.

import type net from 'node:net';
import { isMain, listenCeiling, runCeilingCli, type CeilingServer } from './ceiling-listener.js';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

// ---- encoding (used once per answer shape, at startup or on a rare path) ----

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}
function message(type: string, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(payload.length + 4), payload]);
}

interface Column {
  name: string;
  typeOid: number;
  typeSize: number;
}
const INT4: Column = { name: '?column?', typeOid: 23, typeSize: 4 };

function rowDescription(columns: Column[]): Buffer {
  const fields = columns.map((c) => Buffer.concat([cstr(c.name), int32(0), int16(0), int32(c.typeOid), int16(c.typeSize), int32(-1), int16(0)]));
  return message('T', int16(columns.length), ...fields);
}
/** A text-format DataRow; null is SQL NULL. */
function dataRow(values: (string | null)[]): Buffer {
  const cells = values.map((v) => (v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])));
  return message('D', int16(values.length), ...cells);
}
function commandComplete(tag: string): Buffer {
  return message('C', cstr(tag));
}
function parameterDescription(count: number): Buffer {
  return message('t', int16(count), ...Array.from({ length: count }, () => int32(INT4.typeOid)));
}

const READY_FOR_QUERY = message('Z', Buffer.from('I'));
const PARSE_COMPLETE = message('1');
const BIND_COMPLETE = message('2');
const CLOSE_COMPLETE = message('3');
const NO_DATA = message('n');
const EMPTY_QUERY_RESPONSE = message('I');
const SSL_REFUSED = Buffer.from('N');

/** One shape of answer, every variant pre-encoded: what Describe, Execute and a simple Query send. */
interface Answer {
  /** RowDescription, or NoData for a statement without rows. */
  describe: Buffer;
  /** DataRow + CommandComplete (extended protocol; the RowDescription came from Describe). */
  execute: Buffer;
  /** The whole simple-Query reply, ReadyForQuery included. */
  simple: Buffer;
}

function rowsAnswer(columns: Column[], row: (string | null)[]): Answer {
  const describe = rowDescription(columns);
  const execute = Buffer.concat([dataRow(row), commandComplete('SELECT 1')]);
  return { describe, execute, simple: Buffer.concat([describe, execute, READY_FOR_QUERY]) };
}

const ONE_ROW = rowsAnswer([INT4], ['1']);

/**
 * pgbench (built-in scripts) reads three columns of its partition probe, and
 * PQgetvalue past the last column is NULL, which it hands to atoi(): a crash
 * with the one-column row. Answer "one unpartitioned pgbench_accounts".
 */
const PARTITION_PROBE = rowsAnswer(
  [{ name: 'n', typeOid: 23, typeSize: 4 }, { name: 'partstrat', typeOid: 18, typeSize: 1 }, { name: 'count', typeOid: 20, typeSize: 8 }],
  ['1', null, '0'],
);
const PARTITION_PROBE_MARK = Buffer.from('pg_partitioned_table');

const startupReply = (applicationName: string): Buffer =>
  Buffer.concat([
    message('R', int32(0)), // AuthenticationOk
    ...[
      ['server_version', '15.0'],
      ['server_encoding', 'UTF8'],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO, MDY'],
      ['integer_datetimes', 'on'],
      ['standard_conforming_strings', 'on'],
      ['TimeZone', 'UTC'],
      ['application_name', applicationName],
    ].map(([k, v]) => message('S', cstr(k as string), cstr(v as string))),
    message('K', int32(process.pid), int32(0x5eed)), // BackendKeyData
    READY_FOR_QUERY,
  ]);
const STARTUP_REPLY = startupReply('');

// ---- statement shapes (off the hot path: only for text that is not a SELECT) ----

const ROWS_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE', 'SHOW', '(']);
const TAGS: Record<string, string> = { INSERT: 'INSERT 0 1', UPDATE: 'UPDATE 1', DELETE: 'DELETE 1', MERGE: 'MERGE 1', START: 'BEGIN', END: 'COMMIT', ABORT: 'ROLLBACK' };
const commandAnswers = new Map<string, Answer>();

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isWordByte = (c: number): boolean => ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c === 0x5f;

/** True when the text at buf[start..end) begins with `select` in any case: the hot path's one test. */
function startsWithSelect(buf: Buffer, start: number, end: number): boolean {
  return (
    end - start >= 6 &&
    (buf[start]! | 0x20) === 0x73 && // s
    (buf[start + 1]! | 0x20) === 0x65 && // e
    (buf[start + 2]! | 0x20) === 0x6c && // l
    (buf[start + 3]! | 0x20) === 0x65 && // e
    (buf[start + 4]! | 0x20) === 0x63 && // c
    (buf[start + 5]! | 0x20) === 0x74 // t
  );
}

/** The answer for the statement text buf[start..end) (no terminating NUL). */
function answerFor(buf: Buffer, start: number, end: number): Answer | null {
  if (startsWithSelect(buf, start, end)) {
    // Checked by length first so the short hot-path statements never search.
    if (end - start > 400 && buf.subarray(start, end).includes(PARTITION_PROBE_MARK)) return PARTITION_PROBE;
    return ONE_ROW;
  }
  // Slow path: skip blanks and comments, take the first keyword.
  let i = start;
  for (;;) {
    while (i < end && isSpace(buf[i]!)) i++;
    if (buf[i] === 0x2d && buf[i + 1] === 0x2d) {
      while (i < end && buf[i] !== 0x0a) i++;
    } else if (buf[i] === 0x2f && buf[i + 1] === 0x2a) {
      const close = buf.indexOf('*/', i + 2);
      i = close < 0 || close >= end ? end : close + 2;
    } else break;
  }
  if (i >= end) return null; // only blanks and comments: EmptyQueryResponse
  let j = i;
  if (buf[i] === 0x28) j = i + 1; // '('
  else while (j < end && isWordByte(buf[j]!)) j++;
  const word = buf.toString('latin1', i, Math.max(j, i + 1)).toUpperCase();
  if (ROWS_KEYWORDS.has(word)) return ONE_ROW;
  const tag = TAGS[word] ?? word;
  let answer = commandAnswers.get(tag);
  if (answer === undefined) {
    const execute = commandComplete(tag);
    answer = { describe: NO_DATA, execute, simple: Buffer.concat([execute, READY_FOR_QUERY]) };
    commandAnswers.set(tag, answer);
  }
  return answer;
}

/** The highest $n in a statement: how many parameters Describe(S) reports. */
function parameterCount(text: Buffer): number {
  let max = 0;
  for (let i = text.indexOf(0x24); i >= 0; i = text.indexOf(0x24, i + 1)) {
    let n = 0;
    let j = i + 1;
    while (j < text.length && text[j]! >= 0x30 && text[j]! <= 0x39) n = n * 10 + text[j++]! - 0x30;
    if (n > max) max = n;
  }
  return max;
}

interface Statement {
  answer: Answer | null;
  text: Buffer;
}

// ---- one connection ----

class PgCeilingSession {
  private started = false;
  /** Bytes of a message cut by the end of a chunk, waiting for the rest. */
  private pending: Buffer | null = null;
  private readonly out: Buffer[] = [];
  private outLength = 0;
  /** The previous chunk's reply: pgbench sends the same message sequence every transaction. */
  private lastParts: Buffer[] = [];
  private lastReply: Buffer = Buffer.alloc(0);

  private unnamed: Statement = { answer: ONE_ROW, text: Buffer.alloc(0) };
  private readonly named = new Map<string, Statement>();
  /** While every named statement is a SELECT, a Bind need not decode the name (pgbench -M prepared). */
  private namedNonRows = 0;
  private unnamedPortal: Answer | null = ONE_ROW;
  private readonly portals = new Map<string, Answer | null>();

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  // HOT PATH: every request from a benchmark client arrives here.
  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    let closing = false;
    while (!closing) {
      if (!this.started) {
        if (buf.length - off < 8) break;
        const len = buf.readInt32BE(off);
        if (len < 8 || len > 10_000) return void this.socket.destroy(); // not PostgreSQL
        if (buf.length - off < len) break;
        closing = this.startup(buf, off, len);
        off += len;
        continue;
      }
      if (buf.length - off < 5) break;
      const len = buf.readInt32BE(off + 1);
      if (len < 4) return void this.socket.destroy();
      const end = off + 1 + len;
      if (end > buf.length) break;
      closing = this.message(buf[off]!, buf, off + 5, end);
      off = end;
    }
    if (off < buf.length && !closing) this.pending = buf.subarray(off);
    this.flush();
    if (closing) this.socket.end();
  }

  /**
   * One write per chunk. Performance: concatenating (and reusing the last
   * concatenation) beat cork + one write per message by ~10% on pgbench -S
   * -M extended, 16 clients, 2 cores (medians ~65k vs ~58k tps over 4 runs).
   */
  private flush(): void {
    const parts = this.out;
    if (parts.length === 0) return;
    if (parts.length === 1) {
      this.socket.write(parts[0]!);
    } else {
      const last = this.lastParts;
      let same = last.length === parts.length;
      for (let i = 0; same && i < parts.length; i++) same = last[i] === parts[i];
      // The same pre-encoded pieces as last time: write the same (immutable) concatenation again.
      if (!same) {
        this.lastReply = Buffer.concat(parts, this.outLength);
        this.lastParts = parts.slice();
      }
      this.socket.write(this.lastReply);
    }
    parts.length = 0;
    this.outLength = 0;
  }

  private reply(b: Buffer): void {
    this.out.push(b);
    this.outLength += b.length;
  }

  /** A message without a type byte. Returns true when the connection is to close. */
  private startup(buf: Buffer, off: number, len: number): boolean {
    const code = buf.readInt32BE(off + 4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.reply(SSL_REFUSED);
      return false;
    }
    if (code === CANCEL_REQUEST) return true;
    // StartupMessage: key\0value\0 … \0. Echo application_name, as a server does.
    const fields = buf.toString('utf8', off + 8, off + len).split('\0');
    const at = fields.indexOf('application_name');
    const appName = at >= 0 ? (fields[at + 1] ?? '') : '';
    this.reply(appName === '' ? STARTUP_REPLY : startupReply(appName));
    this.started = true;
    return false;
  }

  /** One typed message; body is buf[start..end). Returns true on Terminate. */
  private message(type: number, buf: Buffer, start: number, end: number): boolean {
    switch (type) {
      case 0x51: {
        // Q Query: text\0
        const answer = answerFor(buf, start, end - 1);
        this.reply(answer === null ? EMPTY_QUERY_RESPONSE : answer.simple);
        if (answer === null) this.reply(READY_FOR_QUERY);
        return false;
      }
      case 0x50: {
        // P Parse: name\0 text\0 int16 n, n × int32
        const nameEnd = buf.indexOf(0, start);
        const textEnd = buf.indexOf(0, nameEnd + 1);
        const answer = answerFor(buf, nameEnd + 1, textEnd);
        if (nameEnd === start) {
          this.unnamed = { answer, text: buf.subarray(nameEnd + 1, textEnd) };
        } else {
          const name = buf.toString('utf8', start, nameEnd);
          this.closeStatement(name);
          if (answer !== ONE_ROW) this.namedNonRows++;
          // Copied: a named statement outlives the chunk it came in.
          this.named.set(name, { answer, text: Buffer.from(buf.subarray(nameEnd + 1, textEnd)) });
        }
        this.reply(PARSE_COMPLETE);
        return false;
      }
      case 0x42: {
        // B Bind: portal\0 statement\0 …
        const portalEnd = buf.indexOf(0, start);
        const stmtEnd = buf.indexOf(0, portalEnd + 1);
        let answer: Answer | null;
        if (stmtEnd === portalEnd + 1) answer = this.unnamed.answer;
        else if (this.namedNonRows === 0) answer = ONE_ROW;
        else answer = this.named.get(buf.toString('utf8', portalEnd + 1, stmtEnd))?.answer ?? ONE_ROW;
        if (portalEnd === start) this.unnamedPortal = answer;
        else this.portals.set(buf.toString('utf8', start, portalEnd), answer);
        this.reply(BIND_COMPLETE);
        return false;
      }
      case 0x44: {
        // D Describe: 'S' | 'P', name\0
        const name = buf[start + 1] === 0 ? '' : buf.toString('utf8', start + 1, end - 1);
        if (buf[start] === 0x53) {
          const stmt = name === '' ? this.unnamed : this.named.get(name);
          this.reply(parameterDescription(stmt === undefined ? 0 : parameterCount(stmt.text)));
          this.reply(stmt?.answer?.describe ?? NO_DATA);
        } else {
          const answer = name === '' ? this.unnamedPortal : this.portals.get(name);
          this.reply(answer?.describe ?? NO_DATA);
        }
        return false;
      }
      case 0x45: {
        // E Execute: portal\0 int32 max rows
        const answer = buf[start] === 0 ? this.unnamedPortal : this.portals.get(buf.toString('utf8', start, end - 5));
        this.reply(answer === null ? EMPTY_QUERY_RESPONSE : (answer ?? ONE_ROW).execute);
        return false;
      }
      case 0x53: // S Sync
        this.reply(READY_FOR_QUERY);
        return false;
      case 0x43: {
        // C Close: 'S' | 'P', name\0
        const name = buf.toString('utf8', start + 1, end - 1);
        if (buf[start] === 0x53) {
          if (name === '') this.unnamed = { answer: ONE_ROW, text: Buffer.alloc(0) };
          else this.closeStatement(name);
        } else if (name === '') this.unnamedPortal = ONE_ROW;
        else this.portals.delete(name);
        this.reply(CLOSE_COMPLETE);
        return false;
      }
      case 0x58: // X Terminate
        return true;
      default: // H Flush (every chunk is flushed anyway), and anything else: no reply
        return false;
    }
  }

  private closeStatement(name: string): void {
    const old = this.named.get(name);
    if (old === undefined) return;
    if (old.answer !== ONE_ROW) this.namedNonRows--;
    this.named.delete(name);
  }
}

/** Start the PostgreSQL ceiling on 127.0.0.1:port (0 = any free port). */
export function startPgCeiling(port = 0): Promise<CeilingServer> {
  return listenCeiling(port, (socket) => new PgCeilingSession(socket));
}

if (isMain(import.meta.url)) await runCeilingCli(startPgCeiling);
