// What a MySQL session runs on its own upstream connection besides the
// client's commands, reading the answer itself: the settings and catalog
// look-ups (the proxy holds no password) and, after a cache hit, the hit's
// command again when the next statement reads per-connection state. The
// command they run for waits in `deferred` and is dispatched after.

import type { Analysis } from '../core/types.js';
import type { Packet } from './framer.js';
import { DependencyGraph } from '../core/dependency-graph.js';
import { decodeTextRow, graphLookupSql, lookupPacket, readMysqlGraph, relationFacts, relationLookupSql, settingsLookupSql } from './lookups.js';
import { Command } from './protocol.js';
import { READS_CONNECTION_STATE } from './request.js';
import type { ResponseReader } from './responses.js';
import type { MysqlSession } from './session.js';
import { readsConnectionState as statementReadsState } from './statements.js';

/**
 * A look-up resets ROW_COUNT(), FOUND_ROWS() and the warnings: never in front
 * of a statement that reads them (its write invalidates more instead). Asked
 * only once a look-up is due: a regex over every hit's shape was ~0.4 % of
 * the samples.
 */
function readsConnectionState(a: Analysis): boolean {
  return READS_CONNECTION_STATE.test(a.shaped.shape);
}

/** A user who cannot see the whole catalog will not see it in a second either. */
const GRAPH_RETRY_MS = 30_000;

export class AsideQueries {
  /** The command an aside query runs for, dispatched again when it answers. */
  private deferred: { payload: Buffer; raw: Buffer[]; last: boolean } | null = null;
  private lookup: { reader: ResponseReader; rows: string[][]; done: (rows: string[][] | null) => void; collect: boolean } | null = null;
  /** The last command answered from cache: the server did not run it, so its per-connection
   * state (FOUND_ROWS(), ROW_COUNT(), warnings) is the previous statement's. */
  lastHit: Buffer[] | null = null;

  /** After a failed graph look-up, the graph is not asked for again until then. */
  private graphPausedUntil = 0;

  constructor(private readonly s: MysqlSession) {}

  /** Starts a settings or catalog look-up the decision needs; true if it did. */
  maybeLookUp(a: Analysis, payload: Buffer, raw: Buffer[]): boolean {
    if (this.s.inTransaction() || this.s.ctx.taint !== null) return false;
    const c = a.classification;
    const readable = c.kind === 'read' && c.cacheable;
    if (!readable && c.writes.length === 0 && this.s.databaseKnown) return false;
    if ((readable && !this.s.ctx.settingsKnown) || !this.s.databaseKnown) {
      if (readsConnectionState(a)) return false;
      // Then the catalog, if it is needed too: settings are known after this
      // one (or the session is tainted), so the second round cannot loop.
      this.runLookup(settingsLookupSql(this.s.mariadb), payload, raw, false, (rows) => {
        if (rows !== null && rows.length === 1) {
          this.s.ctx.settingsLookedUp(rows[0]!);
          this.s.databaseKnown = true;
        }
        else this.s.ctx.apply({ type: 'taint', reason: 'session-state', detail: 'session variables could not be read' });
      });
      return true;
    }
    // The dependency graph of the server first (a round of its own, before
    // the relation facts), when it is missing or due for its refresh.
    const upstream = this.s.view().upstream;
    const catalog = this.s.qc.catalog;
    if (c.relations.length > 0 && performance.now() >= this.graphPausedUntil && catalog.graphStale(upstream, '')) {
      if (readsConnectionState(a)) return false;
      const generation = catalog.generation(upstream, '');
      this.runLookup(graphLookupSql(), payload, raw, false, (rows) => {
        const edges = rows === null ? 'the catalog look-up failed' : readMysqlGraph(rows);
        if (typeof edges === 'string') {
          this.s.log.warn({ reason: edges }, 'dependency graph not read: conservative rules apply');
          catalog.graphFailed(upstream, '', edges);
          this.graphPausedUntil = performance.now() + GRAPH_RETRY_MS;
        } else if (catalog.generation(upstream, '') === generation) {
          catalog.learnGraph(upstream, '', new DependencyGraph(edges, this.s.qc.extraEdges));
        } else {
          // DDL since it was sent: its answer may predate it. Next statement.
          this.graphPausedUntil = performance.now() + 1;
        }
      });
      return true;
    }
    if (catalog.knowsAll(this.s.scope, c)) return false;
    if (readsConnectionState(a)) return false;
    const missing = this.s.qc.catalog.missing(this.s.scope, c).relations;
    const refs = missing.filter((r): r is { schema: string; name: string } => r.schema !== null);
    if (refs.length === 0) return false;
    this.runLookup(relationLookupSql(refs), payload, raw, true, (rows) => {
      if (rows !== null) this.s.qc.catalog.learnRelations(this.s.scope, relationFacts(refs, rows));
    });
    return true;
  }

  private runLookup(sql: string, payload: Buffer, raw: Buffer[], last: boolean, then: (rows: string[][] | null) => void): void {
    this.runAside([lookupPacket(sql)], payload, raw, last, then, true);
  }

  /** Sends `packets` upstream and reads their answer here, then dispatches the deferred command. */
  private runAside(packets: Buffer[], payload: Buffer, raw: Buffer[], last: boolean, then: (rows: string[][] | null) => void, collect = false): void {
    this.s.phase = 'lookup';
    this.deferred = { payload, raw, last };
    this.lookup = { reader: this.s.reader('result'), rows: [], done: then, collect };
    this.s.writeUpstream(packets);
  }

  /**
   * After a hit, the server's per-connection state (FOUND_ROWS(), ROW_COUNT(),
   * warnings) is still the previous statement's. A statement that reads it
   * gets the hit's command run upstream first (its answer dropped), so it sees
   * what it would have seen without the cache. True if it did.
   */
  replayHitFirst(payload: Buffer, raw: Buffer[], text?: string): boolean {
    const hit = this.lastHit;
    this.lastHit = null;
    if (hit === null) return false;
    const command = payload[0];
    let reads = false;
    if (command === Command.Query) reads = READS_CONNECTION_STATE.test(text ?? payload.toString('latin1', 1));
    else if (command === Command.StmtExecute && payload.length >= 5) {
      const stmt = this.s.statements.get(payload.readUInt32LE(1));
      reads = stmt !== undefined && statementReadsState(stmt);
    }
    if (!reads) return false;
    this.runAside(hit, payload, raw, false, () => undefined);
    return true;
  }

  onPacket(p: Packet): void {
    const l = this.lookup!;
    const isRow = l.reader.inRows && !p.continuation;
    const ev = l.reader.next(p);
    if (ev.done) {
      this.lookup = null;
      if (l.reader.status >= 0) this.s.status = l.reader.status;
      l.done(ev.error === null ? l.rows : null);
      if (ev.error !== null) this.s.log.warn({ error: ev.error }, 'look-up failed');
      const cmd = this.deferred!;
      this.deferred = null;
      this.s.phase = 'idle';
      this.s.dispatch(cmd.payload, cmd.raw, cmd.last);
      // A hit leaves the session idle: commands the client pipelined behind it wait in the framer.
      if (this.s.phase === 'idle') setImmediate(() => this.s.pumpClient());
      return;
    }
    // In the rows state, every packet that does not end the result is a row.
    if (isRow && l.collect) l.rows.push(decodeTextRow(p));
  }
}
