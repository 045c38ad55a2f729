// The proxy's own catalog queries for one session (catalog-lookup.ts builds
// and reads them): sent on the client's upstream connection between its
// requests, their replies swallowed, what they teach kept in the session
// context and the shared CatalogMemo.

import type { Classification } from '../core/types.js';
import { decodeDataRowText, decodeErrorResponse, decodeReadyForQuery } from './backend-codec.js';
import { DependencyGraph } from '../core/dependency-graph.js';
import { lookupSql, readLookup, type LookupRequest } from './catalog-lookup.js';
import { BackendCode, type Frame } from './messages.js';
import type { LookupItem } from './pipeline.js';
import type { PgSession, Step } from './session.js';
import { encodeQuery } from './writer.js';

const GRAPH_RETRY_MS = 5_000;

export class CatalogLookups {
  /** After a failed look-up, none is tried again until then. */
  private pausedUntil = 0;
  /** After a failed graph look-up, the graph is not asked for again until then. */
  private graphPausedUntil = 0;

  constructor(private readonly s: PgSession) {}

  /** What the decision for `c` still needs from the catalog, or null. */
  needed(c: Classification): LookupRequest | null {
    if (this.s.status !== 'I') {
      // Inside a transaction only the settings are read, and only when hits
      // may be served there: a look-up that failed (statement_timeout, a
      // cancel) would abort the client's transaction, and catalog facts
      // read there may be uncommitted DDL that others must not learn.
      if (!this.s.qc.inTransactions || this.s.ctx.settingsKnown || !c.cacheable) return null;
      return { settings: true, relations: [], functions: [] };
    }
    // Functions matter even when nothing is cached: an unknown one may write.
    if (!c.cacheable && c.writes.length === 0 && c.functions.length === 0) return null;
    // The dependency graph, when this statement names a relation or a
    // function (whose body may read some) and the database's graph is
    // missing or due for its refresh.
    const view = this.s.view();
    const graph =
      (c.relations.length > 0 || c.functions.length > 0) &&
      this.s.qc.catalog.graphStale(view.upstream, view.database) &&
      performance.now() >= this.graphPausedUntil;
    // Facts about names hold under one search_path: until it is known, ask
    // for the settings and every name together, and learn them under it.
    if (!this.s.ctx.settingsKnown) return { settings: true, relations: c.relations, functions: c.functions, graph };
    const scope = view.catalogScope;
    if (!graph && this.s.qc.catalog.knowsAll(scope, c)) return null;
    const missing = this.s.qc.catalog.missing(scope, c);
    if (!graph && missing.relations.length === 0 && missing.functions.length === 0) return null;
    return { settings: false, relations: missing.relations, functions: missing.functions, graph };
  }

  /** A look-up may go upstream only between requests, outside a failed transaction. */
  canRun(): boolean {
    return (
      this.s.inflight.length === 0 &&
      this.s.status !== 'E' &&
      !this.s.extended.forwarding() &&
      (this.pausedUntil === 0 || performance.now() >= this.pausedUntil)
    );
  }

  /** Sends the look-up and suspends client processing until it is answered. */
  run(req: LookupRequest): Promise<Step> {
    // The graph goes in a Query of its own: if it fails (a lock timeout, an
    // object dropped while it was read), the other facts still arrive.
    const rest = req.settings || req.relations.length > 0 || req.functions.length > 0;
    const parts: LookupRequest[] =
      req.graph === true && rest ? [{ ...req, graph: false }, { settings: false, relations: [], functions: [], graph: true }] : [req];
    return new Promise((resolve) => {
      const view = this.s.view();
      const generation = this.s.qc.catalog.generation(view.upstream, view.database);
      let left = parts.length;
      for (const part of parts) {
        const done = (): void => {
          if (--left === 0) resolve('retry');
        };
        const item: LookupItem = { type: 'lookup', req: part, rows: [], errored: false, generation, done };
        this.s.inflight.push(item);
        this.s.extended.upstreamUnnamedDestroyed();
        this.s.sendUpstream(encodeQuery(lookupSql(part)));
      }
    });
  }

  private finish(item: LookupItem): void {
    if (item.errored && item.req.graph === true) {
      // Tried again after a pause; meanwhile the conservative facts decide.
      this.graphPausedUntil = performance.now() + GRAPH_RETRY_MS;
      this.s.log.warn({ error: item.error }, 'dependency graph not read: conservative rules apply');
      const view = this.s.view();
      this.s.qc.catalog.graphFailed(view.upstream, view.database, item.error ?? 'the catalog look-up failed');
    } else if (item.errored) {
      this.pausedUntil = performance.now() + 30_000;
    } else {
      const result = readLookup(item.req, item.rows);
      if (result.settings) this.s.ctx.learnSettings(result.settings);
      if (result.shadowed) this.s.ctx.shadowed = result.shadowed;
      if (result.userOperators) this.s.ctx.userOperators = result.userOperators;
      const view = this.s.view();
      const catalog = this.s.qc.catalog;
      // DDL since the look-up was sent: its answer may predate it.
      if (catalog.generation(view.upstream, view.database) === item.generation) {
        catalog.learnRelations(view.catalogScope, result.relations);
        catalog.learnFunctions(view.catalogScope, result.functions);
        if (result.graph !== null) {
          const graph = new DependencyGraph(result.graph, this.s.qc.extraEdges);
          catalog.learnGraph(view.upstream, view.database, graph);
          this.s.log.debug({ database: view.database, ...graph.size }, 'dependency graph loaded');
        }
      }
    }
    item.done();
  }


  onReply(item: LookupItem, f: Frame): void {
    switch (f.type) {
      case BackendCode.DataRow:
        item.rows.push(decodeDataRowText(f.buf, f.start, f.end));
        return;
      case BackendCode.ErrorResponse: {
        item.errored = true;
        const e = decodeErrorResponse(f.buf, f.start, f.end);
        item.error = `${e.code}: ${e.message}`;
        this.s.log.warn({ code: e.code, message: e.message }, 'catalog look-up failed');
        return;
      }
      case BackendCode.NoticeResponse:
        this.s.relayFrame(f);
        return;
      case BackendCode.ReadyForQuery:
        this.s.status = decodeReadyForQuery(f.buf, f.start, f.end);
        this.s.inflight.shift();
        this.finish(item);
        this.s.flushLocals();
        return;
      default:
        return; // RowDescription, CommandComplete: the proxy's own
    }
  }
}
