// The query path of a MySQL session: COM_QUERY and COM_STMT_EXECUTE. Hot
// path for cached reads: shape (memo), qualify, decide, key, one store
// look-up, one corked write of the cached packets with the session's own
// status flags. A miss goes upstream with a fill plan; anything else goes
// upstream with the tables it writes.

import type { VersionSnapshot } from '../cache/store.js';
import { ResultCapture } from '../core/result-capture.js';
import type { Analysis, CacheDecision, Decision } from '../core/types.js';
import { Command, SESSION_STATUS_BITS, Status } from './protocol.js';
import { groupByDatabase, qualify, WriteSet } from './qualify.js';
import { UNREAD, type FillPlan, type Request } from './request.js';
import type { MysqlSession } from './session.js';

export class QueryPath {
  constructor(private readonly s: MysqlSession) {}

  onQuery(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const { text, unsafe } = this.s.decodeText(payload, 1);
    const a = qualify(this.s.qc.analyse('mysql', text, { backslashEscapes: this.s.backslashEscapes() }), this.s.databaseKnown ? this.s.ctx.database : null, unsafe);
    if (!retried && this.s.aside.maybeLookUp(a, payload, raw)) return;
    const d = unsafe ? this.refuse(a, 'encoding', 'statement text is not in a character set the proxy keys safely') : this.decide(a);
    if (d.action === 'cache') {
      const key = this.s.qc.key(this.s.view(), 'Q', a.shaped.keyText, '');
      return this.cacheable(d, key, raw, a, Command.Query);
    }
    if (this.s.debug) this.trace(d);
    this.s.forward(raw, { command: Command.Query, reader: this.s.reader('result'), fill: null, writes: WriteSet.of(d, a.classification), analysis: a, unsafeText: unsafe });
  }

  onExecute(payload: Buffer, raw: Buffer[], retried: boolean): void {
    const exec = this.s.statements.execute(payload);
    const stmt = this.s.statements.get(exec.statementId);
    const request = (fill: FillPlan | null, d: Decision | null, a: Analysis | null): Request => ({
      command: Command.StmtExecute,
      reader: this.s.reader('result'),
      fill,
      writes: d === null || a === null ? WriteSet.unknown() : WriteSet.of(d, a.classification),
      analysis: a,
    });
    // Every path but a hit sends this execute to the server, which then knows its types.
    const sent = (): void => {
      if (stmt !== undefined) stmt.upstreamTypes = stmt.types;
    };
    // Unknown id: the server answers the error. Unread or unsafe text: may write anything.
    if (stmt === undefined || stmt.sql === UNREAD || stmt.unsafe) {
      sent();
      return this.s.forward(raw, { ...request(null, null, null), unsafeText: stmt?.unsafe === true });
    }
    // Tables resolve in the database current at prepare time, not now.
    const a = qualify(this.s.qc.analyse('mysql', stmt.sql, { backslashEscapes: this.s.backslashEscapes() }), stmt.database, false);
    if (!retried && this.s.aside.maybeLookUp(a, payload, raw)) return;
    let d = this.decide(a);
    if (d.action === 'cache' && exec.flags !== 0) d = this.refuse(a, 'row-limit', 'execute with a cursor');
    if (d.action === 'cache' && exec.params === null) d = this.refuse(a, 'session-state', 'parameters sent as long data');
    if (d.action === 'cache' && exec.params !== null && this.s.qc.isVolatileValue(exec.params)) {
      d = this.refuse(a, 'volatile-literal', 'a parameter holds a clock word');
    }
    if (d.action === 'cache') {
      const key = this.s.qc.key(this.s.view(), 'E', a.shaped.keyText, `${stmt.database ?? ''}\0${exec.params ?? ''}`);
      // Types the server has not seen yet: this execute must teach them, so it is a miss.
      const teaches = stmt.types !== null && (stmt.upstreamTypes === null || !stmt.types.equals(stmt.upstreamTypes));
      return this.cacheable(d, key, raw, a, Command.StmtExecute, { skipLookup: teaches, onForward: sent });
    }
    if (this.s.debug) this.trace(d);
    sent();
    this.s.forward(raw, request(null, d, a));
  }

  private cacheable(
    d: CacheDecision,
    key: string,
    raw: Buffer[],
    a: Analysis,
    command: number,
    opts: { skipLookup?: boolean; onForward?: () => void } = {},
  ): void {
    const started = performance.now();
    const entry = opts.skipLookup === true ? undefined : this.s.qc.lookup(d, key);
    const onEntry = (e: { head: Buffer | null; body: Buffer } | undefined): void => {
      if (e !== undefined && e.head !== null) {
        this.serveHit(d, e.head, e.body, started);
        this.s.aside.lastHit = raw.map((b) => Buffer.from(b));
        return;
      }
      this.s.qc.stats.miss(d, this.s.meter);
      if (this.s.debug) this.trace(d, 'miss');
      const snap = this.s.qc.snapshot(d);
      const send = (versions: VersionSnapshot): void => {
        const fill: FillPlan = { decision: d, key, snapshot: versions, capture: new ResultCapture(this.s.qc.maxEntrySize), statusAt: -1, sentAt: performance.now() };
        opts.onForward?.();
        this.s.forward(raw, { command, reader: this.s.reader('result'), fill, writes: null, analysis: a });
      };
      if (snap instanceof Promise) this.s.await(snap, send);
      else send(snap);
    };
    if (entry instanceof Promise) this.s.await(entry, onEntry);
    else onEntry(entry);
  }

  /** Replays a cached result with the session's own status flags in its last packet. */
  private serveHit(d: CacheDecision, head: Buffer, body: Buffer, started: number): void {
    const at = head.readUInt32LE(0);
    const original = body.readUInt16LE(at);
    const status = ((original & ~(SESSION_STATUS_BITS | Status.SessionStateChanged)) | (this.s.status & SESSION_STATUS_BITS)) & 0xffff;
    const flags = Buffer.from([status & 0xff, status >> 8]);
    this.s.client.cork();
    this.s.client.write(body.subarray(0, at));
    this.s.client.write(flags);
    this.s.client.write(body.subarray(at + 2));
    this.s.client.uncork();
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
    let d = this.s.qc.decide(a, this.s.view());
    if (d.action !== 'cache') return d;
    if (!this.s.ctx.settingsKnown) return this.refuse(a, 'session-state', 'session variables not read yet');
    // Table versions live per database: a read over one database (the usual
    // case, qualified or not) is versioned there; one spanning databases is not cached.
    const groups = groupByDatabase(d.reads);
    if (groups.size !== 1) return this.refuse(a, 'cross-database', [...groups.keys()].join(', '));
    const [database, reads] = [...groups][0]!;
    this.s.noteDatabase(database);
    d = { ...d, database, reads: reads.sort() };
    return d;
  }

  refuse(a: Analysis, reason: 'encoding' | 'session-state' | 'cross-database' | 'row-limit' | 'volatile-literal', detail: string): Decision {
    this.s.qc.stats.bypass(reason, a.shaped.shape, detail, this.s.meter);
    const c = a.classification;
    return { action: 'bypass', reason, detail, shape: a.shaped.shape, writes: [...c.writes], writesUnknown: c.writesUnknown };
  }
}
