// The simple query protocol for one session: a Query message is one request
// whose reply runs to ReadyForQuery. Hot path for cached reads: shape (memo),
// decide, key, one store look-up, one corked write of the cached bytes and a
// ReadyForQuery carrying the session's real transaction status.

import type { VersionSnapshot } from '../cache/store.js';
import type { Analysis, CacheDecision, Decision } from '../core/types.js';
import { decodeReadyForQuery } from './backend-codec.js';
import { decodeQuery } from './frontend-codec.js';
import { BackendCode, type Frame } from './messages.js';
import { hasWrites, isNeutral, mayChangeSettings, type FillPlan, type InFlight } from './pipeline.js';
import { ResultCapture } from '../core/result-capture.js';
import type { PgSession, Step } from './session.js';
import { readyForQuery } from './writer.js';

export class SimpleQuery {
  constructor(private readonly s: PgSession) {}

  onQuery(f: Frame, retried: boolean): Promise<Step> | undefined {
    const sql = decodeQuery(f.buf, f.start, f.end).sql;
    const a = this.s.qc.analyse('postgres', sql, { backslashEscapes: this.s.ctx.backslashEscapes });
    const c = a.classification;
    if (this.s.extended.batchOpen()) {
      // Between Parse/Bind… and their Sync: it runs inside that batch.
      const d = this.s.decide(a);
      this.s.extended.absorbQuery(f, a, d.action === 'cache' ? this.s.refuse(a, 'pipeline', 'a Query inside an extended-protocol batch') : d);
      return undefined;
    }
    if (!retried && this.s.lookups.canRun()) {
      const need = this.s.lookups.needed(c);
      if (need !== null) return this.s.lookups.run(need);
    }
    const d = sql.includes('\uFFFD') ? this.s.refuse(a, 'encoding') : this.s.decide(a);
    const bytes = f.buf.subarray(f.start, f.end);
    if (d.action === 'cache') {
      const key = this.s.qc.key(this.s.view(), 'Q', a.shaped.keyText, '');
      const started = performance.now();
      const entry = this.s.qc.lookup(d, key);
      if (entry instanceof Promise) {
        return entry.then(async (e): Promise<Step> => {
          if (e) this.serveHit(d, e.body, started);
          else await this.forwardMiss(d, key, bytes, a);
          return 'done';
        });
      }
      if (entry !== undefined) {
        this.serveHit(d, entry.body, started);
        return undefined;
      }
      return this.forwardMiss(d, key, bytes, a);
    }
    this.s.trace(d, null);
    this.forwardSimple(bytes, a, d, null);
    return undefined;
  }

  private serveHit(d: CacheDecision, body: Buffer, started: number): void {
    this.s.extended.forgetUnnamed(); // a Query ends the unnamed statement
    this.s.sendLocal([body, readyForQuery(this.s.status)]);
    const micros = (performance.now() - started) * 1000;
    this.s.qc.stats.hit(d, micros, this.s.meter);
    this.s.trace(d, 'hit', micros);
  }

  private forwardMiss(d: CacheDecision, key: string, bytes: Buffer, a: Analysis): Promise<Step> | undefined {
    this.s.qc.stats.miss(d, this.s.meter);
    this.s.trace(d, 'miss');
    const snap = this.s.qc.snapshot(d);
    const plan = (s: VersionSnapshot): FillPlan => ({
      decision: d,
      key,
      snapshot: s,
      capture: new ResultCapture(this.s.qc.maxEntrySize),
      sentAt: performance.now(),
    });
    if (snap instanceof Promise) {
      return snap.then((s): Step => {
        this.forwardSimple(bytes, a, d, plan(s));
        return 'done';
      });
    }
    this.forwardSimple(bytes, a, d, plan(snap));
    return undefined;
  }

  private forwardSimple(bytes: Buffer, a: Analysis, d: Decision, fill: FillPlan | null): void {
    const c = a.classification;
    this.s.extended.beforeSimpleQuery(a);
    this.s.inflight.push({
      type: 'simple',
      fill,
      fills: [],
      writes: this.s.writesOf(c, d),
      // exec_simple_query commits the last statement before its EndCommand.
      committedAtCommandComplete: c.statementCount === 1,
      effects: c.sessionEffects,
      neutral: isNeutral(c),
      settingsMayChange: mayChangeSettings(c),
      errored: false,
    });
    this.s.extended.upstreamUnnamedDestroyed();
    this.s.sendUpstream(bytes);
  }

  onReply(item: Extract<InFlight, { type: 'simple' | 'relay' }>, f: Frame): void {
    const fill = item.type === 'simple' ? item.fill : null;
    switch (f.type) {
      case BackendCode.CommandComplete:
        // The write is done: bump before the client can see it acknowledged.
        if (hasWrites(item.writes)) this.s.bump(item.writes);
        break;
      case BackendCode.ErrorResponse:
        item.errored = true;
        fill?.capture.refuse('error-result');
        break;
      case BackendCode.CopyInResponse:
      case BackendCode.CopyOutResponse:
      case BackendCode.CopyBothResponse:
        fill?.capture.refuse('not-a-read');
        break;
      case BackendCode.ReadyForQuery:
        if (fill) item.fills.push(fill);
        this.s.requestDone(item, decodeReadyForQuery(f.buf, f.start, f.end));
        this.s.relayFrame(f);
        this.s.inflight.shift();
        this.s.flushLocals();
        return;
    }
    fill?.capture.add(f.buf, f.start, f.end);
    this.s.relayFrame(f);
  }
}
