// Raw MySQL protocol scripts for the protocol-* tests: command packets no
// client library sends on demand (COM_STMT_SEND_LONG_DATA, COM_STMT_FETCH,
// COM_SET_OPTION, COM_FIELD_LIST, COM_DEBUG, an unknown command byte…), a
// reader that frames a whole response of each kind the way a
// protocol-4.1 client without DEPRECATE_EOF reads it, and a summary of the
// packets that two servers' answers can be compared by (the database
// directly vs the proxy).

import { decodeErr, packet, RawMysql, type ServerPacket } from './mysql-wire.js';

export const COM = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  STATISTICS: 0x09,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
} as const;

export const cmd = (command: number, body: Buffer | string = Buffer.alloc(0), seq = 0): Buffer =>
  packet(seq, Buffer.concat([Buffer.from([command]), typeof body === 'string' ? Buffer.from(body, 'utf8') : body]));

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n, 0);
  return b;
};

export const prepare = (sql: string): Buffer => cmd(COM.STMT_PREPARE, sql);
export const stmtClose = (id: number): Buffer => cmd(COM.STMT_CLOSE, u32(id));
export const stmtReset = (id: number): Buffer => cmd(COM.STMT_RESET, u32(id));
export const stmtFetch = (id: number, rows: number): Buffer => cmd(COM.STMT_FETCH, Buffer.concat([u32(id), u32(rows)]));
export const sendLongData = (id: number, param: number, data: Buffer | string): Buffer =>
  cmd(COM.STMT_SEND_LONG_DATA, Buffer.concat([u32(id), u16(param), typeof data === 'string' ? Buffer.from(data) : data]));
export const setOption = (on: boolean): Buffer => cmd(COM.SET_OPTION, u16(on ? 0 : 1));
export const initDb = (db: string): Buffer => cmd(COM.INIT_DB, db);
export const fieldList = (table: string, wild = ''): Buffer => cmd(COM.FIELD_LIST, Buffer.concat([Buffer.from(`${table}\0`), Buffer.from(wild)]));
export const query = (sql: string): Buffer => cmd(COM.QUERY, sql);

/**
 * COM_STMT_EXECUTE with `params` string parameters (type VAR_STRING, 0xfd),
 * or `null` entries for NULL; `longData` parameters are bound (type given)
 * but their value is left out (sent with COM_STMT_SEND_LONG_DATA before).
 */
export function execute(id: number, params: (string | null)[] = [], flags = 0, longData: number[] = []): Buffer {
  const parts: Buffer[] = [u32(id), Buffer.from([flags]), u32(1)];
  if (params.length > 0) {
    const bitmap = Buffer.alloc((params.length + 7) >> 3);
    params.forEach((p, i) => {
      if (p === null) bitmap[i >> 3]! |= 1 << (i & 7);
    });
    parts.push(bitmap, Buffer.from([1]));
    for (let i = 0; i < params.length; i++) parts.push(Buffer.from([0xfd, 0]));
    params.forEach((p, i) => {
      if (p === null || longData.includes(i)) return;
      const v = Buffer.from(p);
      parts.push(Buffer.from([v.length]), v); // values < 251 bytes
    });
  }
  return cmd(COM.STMT_EXECUTE, Buffer.concat(parts));
}

export type Kind = 'result' | 'prepare' | 'one' | 'fetch' | 'field-list' | 'none';

const isEof = (p: ServerPacket): boolean => p.payload[0] === 0xfe && p.payload.length < 9;
const eofStatus = (p: ServerPacket): number => p.payload.readUInt16LE(3);

/** Given packets from index `from`, how many make up one whole response of `kind` (or null: not complete yet). */
export function responseLength(packets: ServerPacket[], from: number, kind: Kind): number | null {
  let i = from;
  const at = (k: number): ServerPacket | undefined => packets[k];
  if (kind === 'none') return 0;
  if (kind === 'one') return at(i) === undefined ? null : 1;
  if (kind === 'field-list' || kind === 'fetch') {
    for (;;) {
      const p = at(i++);
      if (p === undefined) return null;
      if (p.payload[0] === 0xff || isEof(p)) return i - from;
    }
  }
  if (kind === 'prepare') {
    const p = at(i++);
    if (p === undefined) return null;
    if (p.payload[0] !== 0x00) return 1;
    const cols = p.payload.readUInt16LE(5);
    const params = p.payload.readUInt16LE(7);
    const n = 1 + (params > 0 ? params + 1 : 0) + (cols > 0 ? cols + 1 : 0);
    return packets.length - from >= n ? n : null;
  }
  // result (text or binary), possibly several result sets
  for (;;) {
    const p = at(i++);
    if (p === undefined) return null;
    const h = p.payload[0];
    if (h === 0xff || h === 0xfb) return i - from;
    if (h === 0x00) {
      // OK: status after the two lenencs (small values here)
      const status = p.payload.readUInt16LE(3);
      if ((status & 8) === 0) return i - from;
      continue;
    }
    const ncols = h!;
    i += ncols;
    const eof = at(i++);
    if (eof === undefined) return null;
    if (eofStatus(eof) & 0x40) return i - from; // cursor opened: no rows now
    for (;;) {
      const r = at(i++);
      if (r === undefined) return null;
      if (r.payload[0] === 0xff) return i - from;
      if (isEof(r)) {
        if ((eofStatus(r) & 8) === 0) return i - from;
        break;
      }
    }
  }
}

/** One readable line per packet: OK/ERR/EOF decoded, other packets as printable text. */
export function describePacket(p: ServerPacket, opts: { prepareOk?: boolean; first?: boolean } = {}): string {
  const h = p.payload[0];
  const err = decodeErr(p.payload);
  if (err !== null) return `ERR ${err.code} ${err.sqlState ?? ''} ${err.message.replace(/\(\d+\)/g, '(N)')}`; // statement ids are global
  if (isEof(p)) return `EOF warnings=${p.payload.readUInt16LE(1)} status=0x${eofStatus(p).toString(16)}`;
  if (h === 0xfe) return `AUTH_SWITCH ${p.payload.toString('latin1', 1, Math.max(1, p.payload.indexOf(0, 1)))}`;
  if (opts.prepareOk === true && h === 0x00 && p.payload.length === 12) {
    // statement ids are global in MariaDB: leave the id out
    return `PREPARE_OK cols=${p.payload.readUInt16LE(5)} params=${p.payload.readUInt16LE(7)} warnings=${p.payload.readUInt16LE(10)}`;
  }
  if (h === 0x00 && opts.first !== false && p.payload.length >= 7 && p.payload.length < 64 && p.payload[1]! < 0xfb && p.payload[2]! < 0xfb) {
    return `OK affected=${p.payload[1]} insertId=${p.payload[2]} status=0x${p.payload.readUInt16LE(3).toString(16)} warnings=${p.payload.readUInt16LE(5)}`;
  }
  return `#${p.payload.toString('latin1').replace(/[^\x20-\x7e]/g, '.')}`;
}

/** What a script has learnt so far: the statement ids of its prepares, in order. */
export interface ScriptState {
  stmts: number[];
}

export interface Step {
  send: Buffer | ((s: ScriptState) => Buffer);
  kind: Kind;
  /** Label in the transcript. */
  label?: string;
}

/** Sends each step and waits for its whole answer (or a close / timeout); the transcript lists what came back per step. */
export async function runScript(port: number, steps: Step[], opts: { user?: string; db?: string | null; timeoutMs?: number } = {}): Promise<{ transcript: string[]; raw: RawMysql }> {
  const raw = await RawMysql.connect(port);
  await raw.login(opts.user ?? 'root', opts.db === undefined ? 'test' : opts.db);
  const transcript: string[] = [];
  const state: ScriptState = { stmts: [] };
  for (const s of steps) {
    const from = raw.packets.length;
    raw.write(typeof s.send === 'function' ? s.send(state) : s.send);
    if (s.kind === 'none') {
      transcript.push(`${s.label ?? '?'}: (no answer expected)`);
      continue;
    }
    const ok = await raw.until(() => responseLength(raw.packets, from, s.kind) !== null, opts.timeoutMs ?? 5_000);
    const n = responseLength(raw.packets, from, s.kind);
    const got = raw.packets.slice(from, n === null ? undefined : from + n);
    if (s.kind === 'prepare' && got[0]?.payload[0] === 0x00) state.stmts.push(got[0].payload.readUInt32LE(1));
    transcript.push(`${s.label ?? '?'}: ${got.map((p, i) => describePacket(p, { prepareOk: s.kind === 'prepare' && i === 0, first: i === 0 })).join(' | ')}${ok ? '' : raw.closed ? ' <closed>' : ' <timeout>'}`);
    if (raw.closed && !ok) break;
  }
  return { transcript, raw };
}
