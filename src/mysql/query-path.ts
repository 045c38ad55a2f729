// The query path of a MySQL session: COM_QUERY and COM_STMT_EXECUTE. Hot
// path for cached reads: shape (memo), qualify, decide, key, one store
// look-up, one write of the cached packets with the session's own status
// flags. A miss goes upstream with a fill plan; anything else goes
// upstream with the tables it writes.

import type { VersionSnapshot } from '../cache/store.js';
import { ResultCapture } from '../core/result-capture.js';
import type { Analysis, CacheDecision, Decision } from '../core/types.js';
import { Command, SESSION_STATUS_BITS, Status } from './protocol.js';
import { groupByDatabase, qualify, WriteSet } from './qualify.js';
import { UNREAD, type FillPlan } from './request.js';
import type { MysqlSession } from './session.js';
import type { PreparedStatement } from './statements.js';

/** The statement's types went to the server with this execute: it knows them now. */
function sentTypes(stmt: PreparedStatement): void {
  stmt.upstreamTypes = stmt.types;
}

/** Compile-time: the fields decide() copies are all a CacheDecision has. */
const CACHE_DECISION_FIELDS: Record<Exclude<keyof CacheDecision, 'action' | 'database' | 'reads' | 'ttlMs' | 'shape' | 'rule'>, never> = {};
void CACHE_DECISION_FIELDS;

type ReadsByDatabase = { database: string; reads: string[]; databases: '' } | { database: null; reads: null; databases: string };

/**
 * A decision's `db.table` reads split into their one database and its table
 * names (sorted), or the databases when there are several. Memoised per reads
 * array: the decision reuses its qualified classification's (frozen) array,
 * and a Map, two arrays and a sort per hit were ~1 % of the samples. The
 * result arrays are frozen, as they are shared between decisions.
 */
const byDatabaseMemo = new WeakMap<readonly string[], ReadsByDatabase>();

function readsByDatabase(reads: readonly string[]): ReadsByDatabase {
  let r = byDatabaseMemo.get(reads);
  if (r !== undefined) return r;
  const groups = groupByDatabase(reads);
  if (groups.size === 1) {
    const [database, tables] = [...groups][0]!;
    r = { database, reads: Object.freeze(tables.sort()) as string[], databases: '' };
  } else {
    r = { database: null, reads: null, databases: [...groups.keys()].join(', ') };
  }
  // Only frozen arrays are keys: a mutable one could change under its memo.
  if (Object.isFrozen(reads)) byDatabaseMemo.set(reads, r);
  return r;
}

/**
 * A hit's command bytes, kept until the next command. They are subarrays of
 * the received chunk, which nothing writes to: kept as they are when that
 * pins little more than the command itself (one query a read, as ORMs and
 * sysbench send), copied when it would pin a large chunk of pipelined commands.
 */
function keepable(b: Buffer): Buffer {
  return b.buffer.byteLength - b.length <= 1024 ? b : Buffer.from(b);
}

export class QueryPath {
  constructor(private readonly s: MysqlSession) {}

  onQuery(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const { text, unsafe } = this.s.decodeText(payload, 1);
    // Bytes the decoder replaced are checked as latin1, as dispatch checks other commands.
    if (this.s.aside.lastHit !== null && this.s.aside.replayHitFirst(payload, raw, unsafe ? undefined : text)) return;
    const a = qualify(this.s.qc.analyse('mysql', text, { backslashEscapes: this.s.backslashEscapes() }), this.s.databaseKnown ? this.s.ctx.database : null, unsafe);
    if (!retried && this.s.aside.maybeLookUp(a, payload, raw)) return;
    const d = unsafe ? this.refuse(a, 'encoding', 'statement text is not in a character set the proxy keys safely') : this.decide(a);
    if (d.action === 'cache') {
      const key = this.s.qc.key(this.s.view(), 'Q', a.shaped.keyText, '');
      return this.cacheable(d, key, raw, a, Command.Query, null);
    }
    if (this.s.debug) this.trace(d);
    this.s.forward(raw, { command: Command.Query, reader: this.s.reader('result'), fill: null, writes: WriteSet.of(d, a.classification), analysis: a, unsafeText: unsafe });
  }

  onExecute(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const exec = this.s.statements.execute(payload);
    const stmt = this.s.statements.get(exec.statementId);
    // Unknown id: the server answers the error. Unread or unsafe text: may write anything.
    if (stmt === undefined || stmt.sql === UNREAD || stmt.unsafe) {
      if (stmt !== undefined) sentTypes(stmt);
      return this.s.forward(raw, { command: Command.StmtExecute, reader: this.s.reader('result'), fill: null, writes: WriteSet.unknown(), analysis: null, unsafeText: stmt?.unsafe === true });
    }
    const a = this.analysed(stmt);
    if (!retried && this.s.aside.maybeLookUp(a, payload, raw)) return;
    let d = this.decide(a);
    if (d.action === 'cache' && exec.flags !== 0) d = this.refuse(a, 'row-limit', 'execute with a cursor');
    if (d.action === 'cache' && exec.params === null) d = this.refuse(a, 'session-state', 'parameters sent as long data');
    if (d.action === 'cache' && exec.params !== null && this.s.qc.isVolatileValue(exec.params)) {
      d = this.refuse(a, 'volatile-literal', 'a parameter holds a clock word');
    }
    if (d.action === 'cache') {
      const key = this.s.qc.key(this.s.view(), 'E', a.shaped.keyText, `${stmt.database ?? ''}\0${exec.params ?? ''}`);
      // Types the server has not seen yet: this execute must teach them, so it
      // is a miss. (Same buffer: what the server was last sent; see execute().)
      const types = stmt.types;
      const teaches = types !== null && types !== stmt.upstreamTypes && (stmt.upstreamTypes === null || !types.equals(stmt.upstreamTypes));
      return this.cacheable(d, key, raw, a, Command.StmtExecute, stmt, teaches);
    }
    if (this.s.debug) this.trace(d);
    // Every path but a hit sends this execute to the server, which then knows its types.
    sentTypes(stmt);
    this.s.forward(raw, { command: Command.StmtExecute, reader: this.s.reader('result'), fill: null, writes: WriteSet.of(d, a.classification), analysis: a });
  }

  /** The statement's qualified analysis: its text and database never change, so it is made once per escape mode. */
  private analysed(stmt: PreparedStatement): Analysis {
    const escapes = this.s.backslashEscapes();
    const memo = stmt.analysed;
    if (memo !== null && memo.escapes === escapes) return memo.analysis;
    // Tables resolve in the database current at prepare time, not now.
    const analysis = qualify(this.s.qc.analyse('mysql', stmt.sql, { backslashEscapes: escapes }), stmt.database, false);
    stmt.analysed = { escapes, analysis };
    return analysis;
  }

  /** `stmt`: the prepared statement of an execute (its types reach the server on a miss); `skipLookup`: a miss without asking the store. */
  private cacheable(d: CacheDecision, key: string, raw: Buffer[], a: Analysis, command: number, stmt: PreparedStatement | null, skipLookup = false): void {
    const started = performance.now();
    const entry = skipLookup ? undefined : this.s.qc.lookup(d, key);
    if (entry instanceof Promise) {
      this.s.await(entry, (e) => this.onEntry(e, d, key, raw, a, command, stmt, started));
      return;
    }
    this.onEntry(entry, d, key, raw, a, command, stmt, started);
  }

  private onEntry(
    e: { head: Buffer | null; body: Buffer } | undefined,
    d: CacheDecision,
    key: string,
    raw: Buffer[],
    a: Analysis,
    command: number,
    stmt: PreparedStatement | null,
    started: number,
  ): void {
    if (e !== undefined && e.head !== null) {
      this.serveHit(d, e.head, e.body, started);
      this.s.aside.lastHit = raw.map(keepable);
      return;
    }
    this.s.qc.stats.miss(d, this.s.meter);
    if (this.s.debug) this.trace(d, 'miss');
    const snap = this.s.qc.snapshot(d);
    const send = (versions: VersionSnapshot): void => {
      const fill: FillPlan = { decision: d, key, snapshot: versions, capture: new ResultCapture(this.s.qc.maxEntrySize), statusAt: -1, sentAt: performance.now() };
      if (stmt !== null) sentTypes(stmt);
      this.s.forward(raw, { command, reader: this.s.reader('result'), fill, writes: null, analysis: a });
    };
    if (snap instanceof Promise) this.s.await(snap, send);
    else send(snap);
  }

  /** Replays a cached result with the session's own status flags in its last packet. */
  serveHit(d: CacheDecision, head: Buffer, body: Buffer, started: number): void {
    const at = head.readUInt32LE(0);
    const original = body.readUInt16LE(at);
    const status = ((original & ~(SESSION_STATUS_BITS | Status.SessionStateChanged)) | (this.s.status & SESSION_STATUS_BITS)) & 0xffff;
    // One write() of one buffer, never cork + three writes: uncork's writev
    // (a WriteWrap, an array of chunks, a 3-iovec syscall) was 62 % of a
    // sysbench point-select hit's samples; with one write the proxy's user
    // CPU went from ~11.6–12.1 to ~9.7–11.3 µs a query (A/B, same session).
    // Usually the session's flags are those the entry was stored with and the
    // stored bytes go out as they are; otherwise one copy is patched (the
    // entry is shared and is never changed in place).
    if (status === original) {
      this.s.client.write(body);
    } else {
      const out = Buffer.allocUnsafe(body.length);
      body.copy(out);
      out.writeUInt16LE(status, at);
      this.s.client.write(out);
    }
    const us = (performance.now() - started) * 1000;
    this.s.qc.stats.hit(d, us, this.s.meter);
    if (this.s.debug) this.trace(d, 'hit', us);
  }

  /** The per-statement debug line (same fields as the PostgreSQL session's). */
  private trace(d: Decision, outcome?: 'hit' | 'miss', us?: number): void {
    let decision: string;
    if (outcome !== undefined) decision = outcome;
    else if (d.action === 'bypass' && (d.writesUnknown || d.writes.length > 0)) decision = `write:${d.writesUnknown ? '*' : d.writes.join(',')}`;
    else decision = d.action === 'bypass' ? `bypass:${d.reason}` : 'cache';
    this.s.log.debug(us === undefined ? { fingerprint: d.shape, decision } : { fingerprint: d.shape, decision, us: Math.round(us) }, 'statement');
  }

  decide(a: Analysis): Decision {
    const d = this.s.qc.decide(a, this.s.view());
    if (d.action !== 'cache') return d;
    if (!this.s.ctx.settingsKnown) return this.refuse(a, 'session-state', 'session variables not read yet');
    // Table versions live per database: a read over one database (the usual
    // case, qualified or not) is versioned there; one spanning databases is not cached.
    const g = readsByDatabase(d.reads);
    if (g.database === null) return this.refuse(a, 'cross-database', g.databases);
    this.s.noteDatabase(g.database);
    // Every field written out: `{ ...d, … }` went through V8's slow literal
    // path on every hit. CACHE_DECISION_FIELDS fails the build if a field is added.
    return { action: 'cache', database: g.database, reads: g.reads, ttlMs: d.ttlMs, shape: d.shape, rule: d.rule };
  }

  refuse(a: Analysis, reason: 'encoding' | 'session-state' | 'cross-database' | 'row-limit' | 'volatile-literal', detail: string): Decision {
    this.s.qc.stats.bypass(reason, a.shaped.shape, detail, this.s.meter);
    const c = a.classification;
    return { action: 'bypass', reason, detail, shape: a.shaped.shape, writes: [...c.writes], writesUnknown: c.writesUnknown };
  }
}
