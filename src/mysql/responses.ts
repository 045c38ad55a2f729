// Server responses: OK, ERR and EOF packets, the packets the proxy writes
// itself, and ResponseReader, which follows one command's response packet by
// packet to say where it ends, whether it failed, and where its final status
// flags are (a replay rewrites them).
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html

import { Cap, MAX_PAYLOAD, MysqlProtocolError, Status, lenencBytes, packet, readLenenc } from './protocol.js';
import { payloadLength, payloadStart, type Packet } from './framer.js';

export const OK = 0x00;
export const EOF = 0xfe;
export const ERR = 0xff;
export const LOCAL_INFILE = 0xfb;

/**
 * Offset of the status flags in an OK or EOF payload starting at `at`, or -1.
 * A protocol-4.1 EOF is exactly 5 bytes (header, warnings, status); an OK,
 * also one with the 0xFE header under DEPRECATE_EOF, is at least 7.
 */
export function statusOffset(buf: Buffer, at: number, end: number): number {
  const head = buf[at];
  if (head === EOF && end - at <= 5) return end - at === 5 ? at + 3 : -1;
  if (head !== OK && head !== EOF) return -1;
  const affected = readLenenc(buf, at + 1, end);
  if (affected === null) return -1;
  const insertId = readLenenc(buf, at + 1 + affected.size, end);
  if (insertId === null) return -1;
  const off = at + 1 + affected.size + insertId.size;
  return off + 4 <= end ? off : -1; // status(2), warnings(2)
}

/** Warnings count of an OK/EOF whose status flags are at `statusAt` (from statusOffset). */
export function warningsAt(buf: Buffer, at: number, end: number, statusAt: number): number {
  // EOF puts warnings before the status, OK after it.
  return end - at === 5 && buf[at] === EOF ? buf.readUInt16LE(at + 1) : buf.readUInt16LE(statusAt + 2);
}

export interface ErrInfo {
  code: number;
  sqlState: string;
  message: string;
}

export function decodeErr(buf: Buffer, at: number, end: number): ErrInfo {
  const code = end - at >= 3 ? buf.readUInt16LE(at + 1) : 0;
  if (end - at >= 9 && buf[at + 3] === 0x23 /* # */) {
    return { code, sqlState: buf.toString('latin1', at + 4, at + 9), message: buf.toString('utf8', at + 9, end) };
  }
  return { code, sqlState: 'HY000', message: buf.toString('utf8', Math.min(at + 3, end), end) };
}

/** An ERR packet with SQLSTATE (protocol 4.1). */
export function errPacket(seq: number, code: number, sqlState: string, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const payload = Buffer.allocUnsafe(9 + msg.length);
  payload[0] = ERR;
  payload.writeUInt16LE(code, 1);
  payload[3] = 0x23;
  payload.write(sqlState.padEnd(5, '0').slice(0, 5), 4, 'latin1');
  msg.copy(payload, 9);
  return packet(seq, payload);
}

export function okPacket(seq: number, status: number, deprecateEofForm = false): Buffer {
  const payload = Buffer.concat([Buffer.from([deprecateEofForm ? EOF : OK]), lenencBytes(0), lenencBytes(0), Buffer.from([status & 0xff, status >> 8, 0, 0])]);
  return packet(seq, payload);
}

/** What a command's response looks like, so its end can be found. */
export type ResponseKind =
  | 'result' // COM_QUERY / COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE or result sets, maybe several
  | 'prepare' // COM_STMT_PREPARE: PREPARE_OK + parameter and column definitions, or ERR
  | 'ok' // one OK or ERR packet (PING, INIT_DB, RESET_CONNECTION, STMT_RESET, PROCESS_KILL)
  | 'eof' // one EOF/OK or ERR (SET_OPTION, DEBUG)
  | 'single' // exactly one packet of any form (STATISTICS)
  | 'field-list' // column definitions until EOF, or ERR
  | 'fetch'; // COM_STMT_FETCH: rows of an open cursor, then EOF/OK, or ERR

type State =
  | 'first'
  | 'columns'
  | 'columns-eof'
  | 'rows'
  | 'prepare-params'
  | 'prepare-params-eof'
  | 'prepare-columns'
  | 'prepare-columns-eof'
  | 'infile'
  | 'done';

export interface ResponseEvent {
  /** The response is complete after this packet. */
  done: boolean;
  /** This packet is an ERR ending the response. */
  error: ErrInfo | null;
  /** The server asks the client for a LOCAL INFILE: client packets flow until an empty one. */
  localInfile: boolean;
  /** Offset in `packet.buf` of the status flags of an OK/EOF ending a result (or -1). */
  statusAt: number;
}

/**
 * Follows one response. Feed every server packet with `next`; the event says
 * when it is done. Keeps counters the caller stores with a cached result.
 */
export class ResponseReader {
  private state: State;
  private remaining = 0;
  private prepareColumns = 0;
  /** Result sets seen (0 for an OK-only response). */
  resultSets = 0;
  /** Warnings reported by the OK/EOF packets seen so far. */
  warnings = 0;
  /** The last status flags reported. */
  status = -1;
  /** PREPARE_OK fields. */
  statementId = -1;
  paramCount = 0;
  columnCount = 0;

  constructor(
    private readonly kind: ResponseKind,
    private readonly capabilities: number,
  ) {
    this.state = kind === 'fetch' ? 'rows' : 'first';
  }

  /** The next packet is a row (or the end of the rows). */
  get inRows(): boolean {
    return this.state === 'rows';
  }

  private get deprecateEof(): boolean {
    return (this.capabilities & Cap.DeprecateEof) !== 0;
  }

  next(p: Packet): ResponseEvent {
    const ev: ResponseEvent = { done: false, error: null, localInfile: false, statusAt: -1 };
    if (p.continuation) return ev; // the middle of a 16 MiB row: not a header
    const at = payloadStart(p);
    const len = payloadLength(p);
    const head = len > 0 ? p.buf[at]! : -1;
    switch (this.state) {
      case 'first':
        return this.first(p, at, len, head, ev);
      case 'columns':
        if (--this.remaining === 0) this.state = this.deprecateEof ? 'rows' : 'columns-eof';
        return ev;
      case 'columns-eof':
        if (head !== EOF) throw new MysqlProtocolError('expected EOF after column definitions from the server', 2027, 'HY000');
        this.state = 'rows';
        // COM_STMT_EXECUTE opening a cursor stops here; COM_STMT_FETCH reads the rows.
        if (len >= 5 && p.buf.readUInt16LE(at + 3) & Status.CursorExists) return this.endOfResult(p, at, ev);
        return ev;
      case 'rows':
        if (head === ERR) return this.fail(p, at, ev);
        if (head === EOF && len < MAX_PAYLOAD && (this.deprecateEof || len < 9)) return this.endOfResult(p, at, ev);
        return ev;
      case 'prepare-params':
        if (--this.remaining === 0) return this.afterPrepareParams(ev);
        return ev;
      case 'prepare-params-eof':
        return this.afterPrepareParams(ev, true);
      case 'prepare-columns':
        if (--this.remaining === 0) {
          if (this.deprecateEof) return this.finish(ev);
          this.state = 'prepare-columns-eof';
        }
        return ev;
      case 'prepare-columns-eof':
        return this.finish(ev);
      case 'infile':
        // After the client's file: the OK or ERR of the LOAD DATA, maybe more results.
        this.state = 'first';
        return this.first(p, at, len, head, ev);
      case 'done':
        throw new MysqlProtocolError('the server sent a packet after its response ended', 2027, 'HY000');
    }
  }

  private first(p: Packet, at: number, len: number, head: number, ev: ResponseEvent): ResponseEvent {
    if (head === ERR) return this.fail(p, at, ev);
    switch (this.kind) {
      case 'single':
        return this.finish(ev);
      case 'ok':
      case 'eof': {
        const s = statusOffset(p.buf, at, p.end);
        if (s >= 0) this.noteStatus(p.buf, at, p.end, s);
        return this.finish(ev);
      }
      case 'field-list':
        if (head === EOF && len < 9) return this.finish(ev);
        this.state = 'first';
        return ev;
      case 'prepare': {
        if (head !== OK || len < 12) throw new MysqlProtocolError('malformed PREPARE_OK from the server', 2027, 'HY000');
        this.statementId = p.buf.readUInt32LE(at + 1);
        this.columnCount = p.buf.readUInt16LE(at + 5);
        this.paramCount = p.buf.readUInt16LE(at + 7);
        this.warnings += p.buf.readUInt16LE(at + 10);
        this.prepareColumns = this.columnCount;
        if (this.paramCount > 0) {
          this.state = 'prepare-params';
          this.remaining = this.paramCount;
          return ev;
        }
        return this.afterPrepareParams(ev, true);
      }
      case 'result':
        break;
    }
    if (head === OK) {
      const s = statusOffset(p.buf, at, p.end);
      if (s < 0) throw new MysqlProtocolError('malformed OK packet from the server', 2027, 'HY000');
      this.noteStatus(p.buf, at, p.end, s);
      ev.statusAt = s;
      if (this.status & Status.MoreResultsExist) return ev;
      return this.finish(ev);
    }
    if (head === LOCAL_INFILE) {
      this.state = 'infile';
      ev.localInfile = true;
      return ev;
    }
    const n = readLenenc(p.buf, at, p.end);
    if (n === null || n.value === 0) throw new MysqlProtocolError('malformed result header from the server', 2027, 'HY000');
    this.resultSets++;
    this.remaining = n.value;
    this.state = 'columns';
    return ev;
  }

  private afterPrepareParams(ev: ResponseEvent, eofSeen = false): ResponseEvent {
    // Without DEPRECATE_EOF each non-empty definition block ends with an EOF.
    if (!eofSeen && !this.deprecateEof) {
      this.state = 'prepare-params-eof';
      return ev;
    }
    if (this.prepareColumns > 0) {
      this.state = 'prepare-columns';
      this.remaining = this.prepareColumns;
      return ev;
    }
    return this.finish(ev);
  }

  private endOfResult(p: Packet, at: number, ev: ResponseEvent): ResponseEvent {
    const s = statusOffset(p.buf, at, p.end);
    if (s < 0) throw new MysqlProtocolError('malformed end of result from the server', 2027, 'HY000');
    this.noteStatus(p.buf, at, p.end, s);
    ev.statusAt = s;
    if (this.status & Status.MoreResultsExist) {
      this.state = 'first';
      return ev;
    }
    return this.finish(ev);
  }

  private noteStatus(buf: Buffer, at: number, end: number, s: number): void {
    this.status = buf.readUInt16LE(s);
    this.warnings += warningsAt(buf, at, end, s);
  }

  private fail(p: Packet, at: number, ev: ResponseEvent): ResponseEvent {
    ev.error = decodeErr(p.buf, at, p.end);
    return this.finish(ev);
  }

  private finish(ev: ResponseEvent): ResponseEvent {
    this.state = 'done';
    ev.done = true;
    return ev;
  }
}
