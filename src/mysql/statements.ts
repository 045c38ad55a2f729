// Server-side prepared statements of one MySQL session, as the proxy must
// know them to key a COM_STMT_EXECUTE: the text, the parameter count and the
// parameter types last bound (an execute may say "same types as before").
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html

import type { Analysis } from '../core/types.js';
import { MysqlProtocolError } from './protocol.js';
import { READS_CONNECTION_STATE } from './request.js';

export interface PreparedStatement {
  sql: string;
  /** The text was not decoded exactly (client character set): never cached, may write anything. */
  unsafe: boolean;
  /** The current database at COM_STMT_PREPARE: the server resolves the statement's tables there, whatever USE comes later. */
  database: string | null;
  paramCount: number;
  /** Types from the last execute that bound them (2 bytes per parameter). */
  types: Buffer | null;
  /**
   * The types the server last received for this statement. An execute that
   * says "same types as before" makes the server use these, so an execute
   * binding other types must reach the server (it is never answered from
   * cache): libmariadb sends types only on a statement's first execute.
   */
  upstreamTypes: Buffer | null;
  /** COM_STMT_SEND_LONG_DATA since the last execute/reset: values not in the execute packet. */
  longData: boolean;
  /**
   * The text's qualified analysis, under the backslash-escape mode it was
   * lexed in. The text and its database never change and the analysis is a
   * pure function of them, so an execute reuses it instead of shaping the
   * text again (the scanner was ~2–4 % of a prepared hit's samples).
   */
  analysed: { escapes: boolean; analysis: Analysis } | null;
  /** Whether the text reads per-connection state (READS_CONNECTION_STATE); null until asked. */
  readsState: boolean | null;
}

/** Whether `stmt`'s text reads what the previous statement left on the connection (memoised: the text never changes). */
export function readsConnectionState(stmt: PreparedStatement): boolean {
  return (stmt.readsState ??= READS_CONNECTION_STATE.test(stmt.sql));
}

export interface ExecuteRequest {
  statementId: number;
  /** Cursor type requested (0 = none). */
  flags: number;
  /** Parameter types and values as one key string, or null when they cannot be keyed. */
  params: string | null;
}

/** MariaDB: an execute of statement id 0xFFFFFFFF runs the last one prepared. */
const LAST_PREPARED = 0xffffffff;

export class PreparedStatements {
  private readonly byId = new Map<number, PreparedStatement>();
  private lastId = -1;

  prepared(id: number, sql: string, paramCount: number, database: string | null = null, unsafe = false): void {
    this.byId.set(id, { sql, database, unsafe, paramCount, types: null, upstreamTypes: null, longData: false, analysed: null, readsState: null });
    this.lastId = id;
  }

  /** MariaDB runs id 0xFFFFFFFF only if no prepare failed since the last one that worked. */
  prepareFailed(): void {
    this.lastId = -1;
  }

  get(id: number): PreparedStatement | undefined {
    return this.byId.get(id === LAST_PREPARED ? this.lastId : id);
  }

  close(id: number): void {
    this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
    this.lastId = -1;
  }

  /** The statement id a COM_STMT_CLOSE / RESET / SEND_LONG_DATA names. */
  static idOf(payload: Buffer): number {
    if (payload.length < 5) throw new MysqlProtocolError('statement command too short', 1047, '08S01');
    return payload.readUInt32LE(1);
  }

  /**
   * Reads an execute payload; remembers newly bound types. The key string
   * holds the types and the raw null bitmap and values (latin1: one char per
   * byte, so distinct bytes never make equal strings).
   */
  execute(payload: Buffer): ExecuteRequest {
    if (payload.length < 10) throw new MysqlProtocolError('COM_STMT_EXECUTE too short', 1047, '08S01');
    const statementId = payload.readUInt32LE(1);
    const flags = payload[5]!;
    const stmt = this.get(statementId);
    if (stmt === undefined) return { statementId, flags, params: null };
    if (stmt.paramCount === 0) return { statementId, flags, params: '' };
    const bitmapLength = (stmt.paramCount + 7) >> 3;
    let at = 10;
    if (at + bitmapLength + 1 > payload.length) return { statementId, flags, params: null };
    const bitmap = payload.subarray(at, at + bitmapLength);
    at += bitmapLength;
    const bound = payload[at++] === 1;
    if (bound) {
      if (at + 2 * stmt.paramCount > payload.length) return { statementId, flags, params: null };
      const types = payload.subarray(at, at + 2 * stmt.paramCount);
      // Clients that bind types on every execute (mysql2) usually bind the
      // same ones: the buffer already held is kept, so its identity with
      // upstreamTypes still says "the server knows these" without a compare.
      if (stmt.types === null || !stmt.types.equals(types)) stmt.types = Buffer.from(types);
      at += 2 * stmt.paramCount;
    }
    const longData = stmt.longData;
    stmt.longData = false;
    if (stmt.types === null || longData) return { statementId, flags, params: null };
    const params = `${stmt.types.toString('latin1')}\0${bitmap.toString('latin1')}\0${payload.toString('latin1', at)}`;
    return { statementId, flags, params };
  }
}
