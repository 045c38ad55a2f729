// The extended query protocol (Parse/Bind/Describe/Execute/Close/Flush/Sync)
// for one session: the statements the client believes exist, the ones the
// server really has, and the batch being received until Sync.
//
// A batch of the usual shape — [Parse] [Describe S] Bind [Describe P]
// Execute Sync, one cacheable read — is held until its Sync and, when every
// reply it needs is cached, answered entirely by the proxy: ParseComplete,
// BindComplete, descriptions, rows, ReadyForQuery, without touching the
// server. Anything else switches the batch to forwarding: held messages go
// upstream (preceded by a Parse of any statement the client only believes
// exists, whose ParseComplete is swallowed) and the rest follow as they come.

import type { Analysis, CacheDecision, Decision } from '../core/types.js';
import type { CacheEntry } from '../cache/store.js';
import { cacheKeyWithParams } from '../core/cache-key.js';
import { decodeBind, decodeClose, decodeDescribe, decodeExecute, decodeParse } from './frontend-codec.js';
import { FrontendCode, type Bind, type Frame } from './messages.js';
import { emptyWrites, hasWrites, isNeutral, mayChangeSettings, mergeWrites, type BatchItem, type Expectation, type FillPlan } from './pipeline.js';
import { ResultCapture } from '../core/result-capture.js';
import type { PgSession, Step } from './session.js';
import { newBatch, opaqueStatement, Stage, type Batch, type Portal, type Statement } from './extended-batch.js';
import { onBatchReply } from './extended-replies.js';
import { bindComplete, encodeParse, encodeSync, parseComplete, readyForQuery } from './writer.js';

export class ExtendedQuery {
  /** The statements the client believes exist. */
  private readonly statements = new Map<string, Statement>();
  /** name → signature of what the server really has prepared. */
  private readonly upstreamHas = new Map<string, string>();
  /** name → the last Parse of it sent upstream (the client's or the
   * proxy's lazy one), and the batch that carries it: upstreamHas learns of
   * it only at ParseComplete, and a pipelined batch behind it must not send
   * the same Parse again (the server would answer "already exists"). */
  private readonly sentParses = new Map<string, { signature: string | null; item: BatchItem }>();
  private batch: Batch | null = null;
  /** The statement the last Parse made (see statement()). */
  private lastParsed: Statement | null = null;

  constructor(private readonly s: PgSession) {}

  forwarding(): boolean {
    return this.batch !== null && this.batch.item !== null;
  }

  /** A simple Query (the client's or the proxy's) drops the unnamed statement. */
  upstreamUnnamedDestroyed(): void {
    this.upstreamHas.delete('');
  }

  /** Extended messages received and not yet ended by a Sync. */
  batchOpen(): boolean {
    return this.batch !== null;
  }

  forgetUnnamed(): void {
    this.statements.delete('');
  }

  /**
   * A simple Query while extended messages wait for their Sync: the server
   * runs them in order, and the Query's ReadyForQuery (relayed at once) ends
   * their implicit transaction too. The Query joins the batch, which stays
   * open until the client's Sync. After an error in the batch the server
   * ignores it, as it ignores everything until Sync.
   */
  absorbQuery(f: Frame, a: Analysis, d: Decision): void {
    const b = this.batch;
    if (b === null) return;
    if (b.item === null) this.startForwarding(b);
    const item = b.item!;
    const c = a.classification;
    if (c.kind === 'other' || c.kind === 'session-set') this.materialize(b);
    const w = this.s.writesOf(c, d);
    mergeWrites(item.writes, w);
    item.effects.push(...c.sessionEffects);
    item.neutral &&= isNeutral(c);
    if (mayChangeSettings(c)) item.settingsMayChange = true;
    item.expect.push({ kind: 'query', fill: null, writes: hasWrites(w) ? w : null });
    this.upstreamUnnamedDestroyed();
    this.statements.delete('');
    this.s.sendUpstream(f.buf.subarray(f.start, f.end));
  }

  /** A FunctionCall while a batch is open joins it like a Query (it ends
   * with its own ReadyForQuery); it may write anything. */
  absorbFunctionCall(f: Frame): boolean {
    const b = this.batch;
    if (b === null) return false;
    if (b.item === null) this.startForwarding(b);
    const item = b.item!;
    const w = emptyWrites();
    w.unknown = true;
    mergeWrites(item.writes, w);
    item.neutral = false;
    item.expect.push({ kind: 'query', fill: null, writes: w });
    this.s.sendUpstream(f.buf.subarray(f.start, f.end));
    return true;
  }

  /** A simple Query outside any batch: the unnamed statement goes with it;
   * one that may name prepared statements (EXECUTE, DEALLOCATE, EXPLAIN
   * EXECUTE…) first gets every statement the client believes exists. */
  beforeSimpleQuery(a: Analysis): void {
    const c = a.classification;
    if ((c.kind === 'other' || c.kind === 'session-set') && this.virtualStatements().length > 0) {
      const b = newBatch();
      this.startForwarding(b, true);
      this.materialize(b);
      b.item!.expect.push({ kind: 'sync', fill: null, writes: null });
      this.s.sendUpstream(encodeSync());
    }
    this.statements.delete('');
  }

  private virtualStatements(): Statement[] {
    const out: Statement[] = [];
    for (const st of this.statements.values()) if (this.upstreamHas.get(st.name) !== st.signature) out.push(st);
    return out;
  }

  /** Prepare upstream every statement the client believes exists. */
  private materialize(b: Batch): void {
    for (const st of this.virtualStatements()) this.ensureUpstream(b, st);
  }

  /** DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL, acknowledged. */
  deallocate(name: string | null): void {
    if (name === null) {
      this.statements.clear();
      this.upstreamHas.clear();
      this.sentParses.clear();
    } else {
      this.statements.delete(name);
      this.upstreamHas.delete(name);
      this.sentParses.delete(name);
    }
  }

  /** SQL-level PREPARE name, acknowledged. */
  prepared(name: string): void {
    const st = opaqueStatement(name);
    this.statements.set(name, st);
    this.upstreamHas.set(name, st.signature);
  }

  onMessage(f: Frame, retried: boolean): Promise<Step> | undefined {
    const batch = (this.batch ??= newBatch());
    if (batch.item !== null) {
      this.forward(batch, f);
      return undefined;
    }
    if (f.type === FrontendCode.Sync && batch.stage === Stage.Executed) return this.onHeldSync(batch, f, retried);
    if (f.type === FrontendCode.Flush && batch.held.length === 0) {
      // Nothing to flush yet: it has no reply, so it opens nothing.
      this.batch = null;
      this.s.sendUpstream(f.buf.subarray(f.start, f.end));
      return undefined;
    }
    if (!retried) batch.held.push(f);
    if (f.type === FrontendCode.Flush && (batch.stage === Stage.Parsed || batch.stage === Stage.DescribedStatement)) {
      const step = this.onHeldFlush(batch, retried);
      if (step !== 'forward') return step;
    }
    if (!this.stillServable(batch, f)) {
      // Leaving hold mode: while nothing has gone upstream yet, learn what
      // the decision needs first (postgres.js sends Parse, Describe, Flush).
      const st = batch.parse ?? batch.bind?.statement;
      if (!retried && st !== undefined && this.s.lookups.canRun()) {
        const need = this.s.lookups.needed(st.analysis.classification);
        if (need !== null) return this.s.lookups.run(need);
      }
      this.startForwarding(batch);
    }
    return undefined;
  }

  /** Advances the held batch through the servable shape; false when it leaves it. */
  private stillServable(b: Batch, f: Frame): boolean {
    switch (f.type) {
      case FrontendCode.Parse: {
        if (b.stage !== Stage.Start) return false;
        const p = decodeParse(f.buf, f.start, f.end);
        if (p.name !== '' && this.statements.has(p.name)) return false; // the server would refuse it
        b.parse = this.statement(p.name, p.sql, p.paramTypes);
        b.stage = Stage.Parsed;
        return true;
      }
      case FrontendCode.Describe: {
        const d = decodeDescribe(f.buf, f.start, f.end);
        if (d.target === 'S') {
          if (b.stage > Stage.Parsed) return false;
          const st = b.parse ?? this.statements.get(d.name);
          if (st === undefined || st.name !== d.name) return false;
          b.describeStatement = true;
          b.stage = Stage.DescribedStatement;
          return true;
        }
        if (b.stage !== Stage.Bound || d.name !== b.bindPortal) return false;
        b.describePortal = true;
        b.stage = Stage.DescribedPortal;
        return true;
      }
      case FrontendCode.Bind: {
        if (b.stage > Stage.DescribedStatement) return false;
        const bind = decodeBind(f.buf, f.start, f.end);
        // Inside a transaction a named portal outlives the Sync: one the
        // server never bound could be used later. Only unnamed ones are served.
        if (bind.portal !== '' && this.s.status !== 'I') return false;
        const st = b.parse !== null ? b.parse : this.statements.get(bind.statement);
        if (st === undefined || st.name !== bind.statement) return false;
        b.bind = this.portal(st, f, bind);
        b.bindPortal = bind.portal;
        b.stage = Stage.Bound;
        return true;
      }
      case FrontendCode.Execute: {
        if (b.stage !== Stage.Bound && b.stage !== Stage.DescribedPortal) return false;
        const ex = decodeExecute(f.buf, f.start, f.end);
        if (ex.portal !== b.bindPortal) return false;
        if (ex.maxRows !== 0) {
          this.s.qc.stats.bypass('row-limit', b.bind!.statement.analysis.shaped.shape, undefined, this.s.meter);
          return false;
        }
        if (b.bind!.volatile) {
          this.s.qc.stats.bypass('volatile-literal', b.bind!.statement.analysis.shaped.shape, undefined, this.s.meter);
          return false;
        }
        const a = b.bind!.statement.analysis;
        const c = a.classification;
        if (!c.cacheable && c.writes.length === 0) return false;
        b.stage = Stage.Executed;
        // A statement that still needs a catalog look-up waits for Sync (the
        // look-up goes first); otherwise a refusal goes upstream at once and
        // a cacheable read waits for Sync, where it may be answered.
        if (this.s.lookups.needed(c) !== null) return true;
        const d = this.decideOnce(b, b.bind!.statement);
        return d.action === 'cache';
      }
      default:
        return false; // Close, Flush, a second Sync shape…
    }
  }

  private statement(name: string, sql: string, paramTypes: number[]): Statement {
    const escapes = this.s.ctx.backslashEscapes;
    // Drivers Parse the same unnamed statement before every Bind (pgbench
    // -M extended, node-postgres, JDBC until prepareThreshold): the last
    // one parsed is taken again when nothing that makes a Statement
    // differs, so its analysis and key prefixes are reused too.
    const last = this.lastParsed;
    if (last !== null && last.sql === sql && last.name === name && last.escapes === escapes && sameTypes(last.paramTypes, paramTypes)) {
      return last;
    }
    const analysis = this.s.qc.analyse('postgres', sql, { backslashEscapes: escapes });
    const typesKey = paramTypes.join(',');
    const st: Statement = { name, sql, paramTypes, typesKey, signature: `${typesKey}\u0000${sql}`, analysis, escapes, keys: null };
    this.lastParsed = st;
    return st;
  }

  private portal(statement: Statement, f: Frame, bind: Bind): Portal {
    let volatile = false;
    // Format codes: none = all text, one = for every parameter, else one each.
    const formats = bind.paramFormats;
    for (let i = 0; i < bind.params.length && !volatile; i++) {
      const value = bind.params[i];
      const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
      // Date/time input may be padded; past 256 bytes it is not a date.
      if (value != null && format === 0 && value.length <= 256) volatile = this.s.qc.isVolatileValue(value.toString('latin1'));
    }
    return { statement, params: f.buf.toString('latin1', bind.keyStart, bind.keyEnd), volatile, started: false };
  }

  private decideOnce(b: Batch, st: Statement): Decision {
    let d = b.decisions?.get(st);
    if (d === undefined) {
      d = st.sql.includes('\uFFFD') ? this.s.refuse(st.analysis, 'encoding') : this.s.decide(st.analysis);
      (b.decisions ??= new Map()).set(st, d);
      if (d.action === 'bypass') this.s.trace(d, null);
    }
    return d;
  }

  /**
   * QueryCache.key(view, mode, keyText, `${typesKey}\0${params}`), with the
   * part before the params built once per statement, mode and session view
   * (a new view object whenever anything a key holds changes).
   */
  private keyFor(st: Statement, mode: 'E' | 'DS' | 'DP', params: string): string {
    const view = this.s.view();
    let keys = st.keys;
    if (keys === null || keys.view !== view) keys = st.keys = { view, E: null, DS: null, DP: null };
    const prefix = (keys[mode] ??= this.s.qc.keyPrefix(view, mode, st.analysis.shaped.keyText));
    return cacheKeyWithParams(prefix, `${st.typesKey}\u0000${params}`);
  }

  // ---- Flush after Parse [+ Describe S]: postgres.js asks for the statement's
  // description before it binds. Answered from cache when it can be, the
  // batch stays held and its Execute may still be a hit at Sync. ----

  private onHeldFlush(b: Batch, retried: boolean): Promise<Step> | 'forward' | undefined {
    const st = b.parse;
    if (st === null) return 'forward';
    if (!retried && this.s.lookups.canRun()) {
      const need = this.s.lookups.needed(st.analysis.classification);
      if (need !== null) return this.s.lookups.run(need);
    }
    const d = this.decideOnce(b, st);
    if (d.action !== 'cache') return 'forward';
    let described: CacheEntry | undefined;
    if (b.describeStatement) {
      const found = this.s.qc.lookup(d, this.keyFor(st, 'DS', ''));
      if (found === undefined || found instanceof Promise) return 'forward';
      described = found;
    }
    // The statement now exists for the client only; a Bind that has to go
    // upstream brings it along (lazy Parse in forward()).
    this.statements.set(st.name, st);
    b.parse = null;
    b.describeStatement = false;
    b.held = [];
    this.s.sendLocal(described ? [parseComplete(), described.body] : [parseComplete()]);
    return undefined;
  }

  // ---- Sync of a held batch: the one place a batch is answered from cache ----

  private onHeldSync(b: Batch, sync: Frame, retried: boolean): Promise<Step> | undefined {
    const portal = b.bind!;
    const st = portal.statement;
    if (!retried && this.s.lookups.canRun()) {
      const need = this.s.lookups.needed(st.analysis.classification);
      if (need !== null) return this.s.lookups.run(need);
    }
    if (retried) b.decisions?.delete(st); // decide again with what the look-up taught
    const d = this.decideOnce(b, st);
    if (d.action !== 'cache') return this.forwardAll(b, sync);
    const keys = {
      execute: this.keyFor(st, 'E', portal.params),
      statement: b.describeStatement ? this.keyFor(st, 'DS', '') : null,
      portal: b.describePortal ? this.keyFor(st, 'DP', portal.params) : null,
    };
    const started = performance.now();
    const found = [
      this.s.qc.lookup(d, keys.execute),
      keys.statement === null ? undefined : this.s.qc.lookup(d, keys.statement),
      keys.portal === null ? undefined : this.s.qc.lookup(d, keys.portal),
    ];
    const answer = (entries: Array<CacheEntry | undefined>): Step | Promise<Step> => {
      const [rows, described, portalDescribed] = entries;
      const hit = rows !== undefined && (keys.statement === null || described !== undefined) && (keys.portal === null || portalDescribed !== undefined);
      if (hit) {
        this.serveHit(b, d, rows, described, portalDescribed, started);
        return 'done';
      }
      // An asynchronous store gives its versions later: take them before the
      // batch goes upstream, so the fill plans can store what comes back.
      const snapshot = this.s.qc.snapshot(d);
      if (snapshot instanceof Promise) {
        return snapshot.then((v): Step => {
          (b.snapshots ??= new Map()).set(d, v);
          this.forwardAll(b, sync);
          return 'done';
        });
      }
      this.forwardAll(b, sync); // its Execute's fill plan counts the miss
      return 'done';
    };
    if (found.some((x) => x instanceof Promise)) return Promise.all(found).then(answer);
    const step = answer(found as Array<CacheEntry | undefined>);
    return step instanceof Promise ? step : undefined;
  }

  private serveHit(
    b: Batch,
    d: CacheDecision,
    rows: CacheEntry,
    described: CacheEntry | undefined,
    portalDescribed: CacheEntry | undefined,
    started: number,
  ): void {
    const out: Buffer[] = [];
    if (b.parse !== null) {
      out.push(parseComplete());
      // The client now believes in this statement; the server learns of it
      // only if a later request needs it (lazy Parse in forward()).
      this.statements.set(b.parse.name, b.parse);
    }
    if (described) out.push(described.body);
    out.push(bindComplete());
    if (portalDescribed) out.push(portalDescribed.body);
    out.push(rows.body, readyForQuery(this.s.status));
    this.batch = null;
    this.s.sendLocal(out);
    const micros = (performance.now() - started) * 1000;
    this.s.qc.stats.hit(d, micros, this.s.meter);
    this.s.trace(d, 'hit', micros);
  }

  private forwardAll(b: Batch, sync: Frame): undefined {
    this.startForwarding(b);
    this.forward(b, sync);
    return undefined;
  }

  private startForwarding(b: Batch, internal = false): void {
    b.item = {
      type: 'batch',
      internal,
      expect: [],
      next: 0,
      writes: emptyWrites(),
      committedAtCommandComplete: false, // the implicit transaction commits at Sync
      effects: [],
      neutral: true,
      errored: false,
      fills: [],
    };
    this.s.inflight.push(b.item);
    const held = b.held;
    b.held = [];
    for (const f of held) this.forward(b, f);
  }

  // ---- forwarding mode ----

  /** The statement a name means for this batch: its own pending Parse or
   * Close first, then what the client was told before. */
  private current(b: Batch, name: string): Statement | undefined {
    const pending = b.pending?.get(name);
    return pending === undefined ? this.statements.get(name) : (pending ?? undefined);
  }

  /** Prepares `st` upstream first when the server does not have this text
   * under this name (the client Parsed it in a batch answered from cache). */
  private ensureUpstream(b: Batch, st: Statement): void {
    const has = b.pendingUpstream?.has(st.name) === true ? b.pendingUpstream.get(st.name) : this.upstreamHas.get(st.name);
    if (has === st.signature) return;
    // An earlier batch still in flight prepares it: it runs first.
    const sent = this.sentParses.get(st.name);
    if (sent !== undefined && sent.item !== b.item && sent.signature === st.signature && this.s.inflight.includes(sent.item)) return;
    this.s.sendUpstream(encodeParse(st.name, st.sql, st.paramTypes));
    this.sentParses.set(st.name, { signature: st.signature, item: b.item! });
    (b.pendingUpstream ??= new Map()).set(st.name, st.signature);
    b.item!.expect.push({
      kind: 'lazy-parse',
      fill: null,
      writes: null,
      commit: () => this.upstreamHas.set(st.name, st.signature),
    });
  }

  private forward(b: Batch, f: Frame): void {
    const item = b.item!;
    const expect = (kind: Expectation['kind'], fill: FillPlan | null = null, writes: Expectation['writes'] = null, commit?: () => void): void => {
      item.expect.push(commit === undefined ? { kind, fill, writes } : { kind, fill, writes, commit });
    };
    switch (f.type) {
      case FrontendCode.Parse: {
        const p = decodeParse(f.buf, f.start, f.end);
        const st = b.parse?.name === p.name && b.parse.sql === p.sql ? b.parse : this.statement(p.name, p.sql, p.paramTypes);
        const c = st.analysis.classification;
        if (c.kind === 'other' || c.kind === 'session-set') this.materialize(b); // EXECUTE x, DEALLOCATE x…
        (b.pending ??= new Map()).set(p.name, st);
        (b.pendingUpstream ??= new Map()).set(p.name, st.signature);
        if (p.name !== '') this.sentParses.set(p.name, { signature: st.signature, item });
        // The name takes this text only if the server accepts the Parse.
        expect('parse', null, null, () => {
          this.statements.set(p.name, st);
          this.upstreamHas.set(p.name, st.signature);
        });
        break;
      }
      case FrontendCode.Bind: {
        const bind = decodeBind(f.buf, f.start, f.end);
        const st = this.current(b, bind.statement);
        if (st !== undefined) {
          this.ensureUpstream(b, st);
          (b.portals ??= new Map()).set(bind.portal, this.portal(st, f, bind));
        } else {
          b.portals?.delete(bind.portal);
        }
        expect('bind');
        break;
      }
      case FrontendCode.Describe: {
        const d = decodeDescribe(f.buf, f.start, f.end);
        let fill: FillPlan | null = null;
        if (d.target === 'S') {
          const st = this.current(b, d.name);
          if (st !== undefined) {
            this.ensureUpstream(b, st);
            fill = this.fillPlan(b, st, 'DS', '');
          }
        } else {
          const portal = b.portals?.get(d.name);
          if (portal !== undefined && !portal.volatile) fill = this.fillPlan(b, portal.statement, 'DP', portal.params);
        }
        expect('describe', fill);
        break;
      }
      case FrontendCode.Execute: {
        const ex = decodeExecute(f.buf, f.start, f.end);
        const portal = b.portals?.get(ex.portal);
        if (portal === undefined) {
          // A portal from an earlier batch (cursor): anything may happen.
          const w = emptyWrites();
          w.unknown = true;
          mergeWrites(item.writes, w);
          item.neutral = false;
          expect('execute', null, w);
          break;
        }
        const st = portal.statement;
        const c = st.analysis.classification;
        const d = this.decideOnce(b, st);
        const w = this.s.writesOf(c, d);
        mergeWrites(item.writes, w);
        item.effects.push(...c.sessionEffects);
        item.neutral &&= isNeutral(c);
    if (mayChangeSettings(c)) item.settingsMayChange = true;
        // Only a portal's first Execute to the end is its whole result.
        const whole = ex.maxRows === 0 && !portal.started && !portal.volatile;
        portal.started = true;
        expect('execute', whole ? this.fillPlan(b, st, 'E', portal.params) : null, hasWrites(w) ? w : null);
        break;
      }
      case FrontendCode.Close: {
        const c = decodeClose(f.buf, f.start, f.end);
        if (c.target === 'S') {
          (b.pending ??= new Map()).set(c.name, null);
          (b.pendingUpstream ??= new Map()).set(c.name, null);
          this.sentParses.set(c.name, { signature: null, item });
          expect('close', null, null, () => {
            this.statements.delete(c.name);
            this.upstreamHas.delete(c.name);
          });
        } else {
          b.portals?.delete(c.name);
          expect('close');
        }
        break;
      }
      case FrontendCode.Sync:
        expect('sync');
        this.batch = null;
        break;
      default:
        break; // Flush: no reply of its own
    }
    this.s.sendUpstream(f.buf.subarray(f.start, f.end));
  }

  /** A capture for a reply worth storing, if the statement is cacheable now. */
  private fillPlan(b: Batch, st: Statement, mode: 'E' | 'DS' | 'DP', params: string): FillPlan | null {
    const d = this.decideOnce(b, st);
    if (d.action !== 'cache') return null;
    // An asynchronous store's snapshot taken now would arrive after the
    // request left, too late to guard against a concurrent write: only one
    // taken before the batch was forwarded (onHeldSync) will do.
    const snapshot = b.snapshots?.get(d) ?? this.s.qc.snapshot(d);
    if (snapshot instanceof Promise) return null;
    const key = this.keyFor(st, mode, params);
    if (mode === 'E') {
      this.s.qc.stats.miss(d, this.s.meter);
      this.s.trace(d, 'miss');
    }
    return { decision: d, key, snapshot, capture: new ResultCapture(this.s.qc.maxEntrySize), sentAt: performance.now() };
  }

  onReply(item: BatchItem, f: Frame): void {
    onBatchReply(this.s, item, f);
  }
}

function sameTypes(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
