// Stats: plain counters fed by event verbs (hit, miss, bypass, invalidate…)
// and turned into the /stats JSON by snapshot(). The verbs run on the hot
// path: a Map lookup or two and integer adds, no string building.
//
// Bounded: at most `maxShapes` fingerprints and `maxTables` tables are kept;
// when full, the least-used tenth is dropped at once (amortised, so a flood
// of one-off shapes costs a sort per `max / 10` new shapes, not a scan each).

import type { StoreUsage } from '../cache/store.js';
import type { BypassReason, CacheDecision } from './types.js';

export interface QueryStats {
  fingerprint: string;
  calls: number;
  hits: number;
  misses: number;
  bypasses: number;
  /** The latest reason this shape was not cached (null if never). */
  bypass_reason: BypassReason | null;
  detail: string | null;
  mean_upstream_ms: number;
  mean_hit_us: number;
  /** Result bytes received from the database for this shape, in total. */
  bytes: number;
}

export interface TableStats {
  hits: number;
  misses: number;
  invalidations: number;
}

/** The /stats JSON (admin contract). */
export interface StatsSnapshot {
  hits: number;
  misses: number;
  bypasses: number;
  hit_ratio: number;
  entries: number;
  bytes: number;
  evictions: number;
  invalidations: number;
  /** Results the session handed to the cache after a miss (upstreamDone stored=true). */
  stores: number;
  store_errors: number;
  uptime_s: number;
  bypass_reasons: Partial<Record<BypassReason, number>>;
  /** Misses whose result was not stored, by why (too-large, error-result…). */
  not_stored: Partial<Record<BypassReason, number>>;
  /** "db.table" → counters; invalidations of a whole database are under "db.*". */
  tables: Record<string, TableStats>;
  /** Top 100 fingerprints by calls, descending. */
  queries: QueryStats[];
}

interface ShapeCounters {
  calls: number;
  hits: number;
  misses: number;
  bypasses: number;
  bypassReason: BypassReason | null;
  detail: string | null;
  upstreamCalls: number;
  upstreamMs: number;
  hitUs: number;
  bytes: number;
}

export interface StatsOptions {
  maxShapes?: number;
  maxTables?: number;
  now?: () => number;
}

const TOP_QUERIES = 100;

export class Stats {
  private hits = 0;
  private misses = 0;
  private bypasses = 0;
  private invalidations = 0;
  private stores = 0;
  private storeErrors = 0;
  private readonly reasons = new Map<BypassReason, number>();
  private readonly notStoredReasons = new Map<BypassReason, number>();
  private readonly shapes = new Map<string, ShapeCounters>();
  /** database → table → counters (nested so the hot path builds no "db.table" string). */
  private readonly tables = new Map<string, Map<string, TableStats>>();
  private tableCount = 0;
  private readonly maxShapes: number;
  private readonly maxTables: number;
  private readonly now: () => number;
  private readonly started: number;

  constructor(opts: StatsOptions = {}) {
    this.maxShapes = Math.max(1, opts.maxShapes ?? 2_000);
    this.maxTables = Math.max(1, opts.maxTables ?? 10_000);
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  hit(d: CacheDecision, micros: number): void {
    this.hits++;
    const s = this.shape(d.shape);
    s.calls++;
    s.hits++;
    s.hitUs += micros;
    for (const t of d.reads) this.table(d.database, t).hits++;
  }

  miss(d: CacheDecision): void {
    this.misses++;
    const s = this.shape(d.shape);
    s.calls++;
    s.misses++;
    for (const t of d.reads) this.table(d.database, t).misses++;
  }

  upstreamDone(shape: string, ms: number, bytes: number, stored: boolean): void {
    const s = this.shape(shape);
    s.upstreamCalls++;
    s.upstreamMs += ms;
    s.bytes += bytes;
    if (stored) this.stores++;
  }

  bypass(reason: BypassReason, shape: string, detail?: string): void {
    this.bypasses++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    const s = this.shape(shape);
    s.calls++;
    s.bypasses++;
    s.bypassReason = reason;
    s.detail = detail ?? null;
  }

  /** A table (or '*': the whole database; database '*': everything) was invalidated. */
  /** A miss whose result could not be stored: counted apart from bypasses
   * (the call was already counted as a miss), and shown on its shape. */
  notStored(reason: BypassReason, shape: string, detail?: string): void {
    this.notStoredReasons.set(reason, (this.notStoredReasons.get(reason) ?? 0) + 1);
    const s = this.shape(shape);
    s.bypassReason = reason;
    s.detail = detail ?? null;
  }

  invalidate(database: string, table: string): void {
    this.invalidations++;
    this.table(database, table).invalidations++;
  }

  storeError(): void {
    this.storeErrors++;
  }

  snapshot(usage: StoreUsage): StatsSnapshot {
    const lookups = this.hits + this.misses;
    const tables: Record<string, TableStats> = {};
    for (const [db, byTable] of this.tables) {
      for (const [t, c] of byTable) tables[`${db}.${t}`] = { ...c };
    }
    const top = [...this.shapes].sort((x, y) => y[1].calls - x[1].calls).slice(0, TOP_QUERIES);
    return {
      hits: this.hits,
      misses: this.misses,
      bypasses: this.bypasses,
      hit_ratio: lookups === 0 ? 0 : this.hits / lookups,
      entries: usage.entries,
      bytes: usage.bytes,
      evictions: usage.evictions,
      invalidations: this.invalidations,
      stores: this.stores,
      store_errors: this.storeErrors,
      uptime_s: Math.floor((this.now() - this.started) / 1000),
      bypass_reasons: Object.fromEntries(this.reasons),
      not_stored: Object.fromEntries(this.notStoredReasons),
      tables,
      queries: top.map(([fingerprint, s]) => ({
        fingerprint,
        calls: s.calls,
        hits: s.hits,
        misses: s.misses,
        bypasses: s.bypasses,
        bypass_reason: s.bypassReason,
        detail: s.detail,
        mean_upstream_ms: s.upstreamCalls === 0 ? 0 : round3(s.upstreamMs / s.upstreamCalls),
        mean_hit_us: s.hits === 0 ? 0 : round3(s.hitUs / s.hits),
        bytes: s.bytes,
      })),
    };
  }

  private shape(shape: string): ShapeCounters {
    let s = this.shapes.get(shape);
    if (s !== undefined) return s;
    if (this.shapes.size >= this.maxShapes) this.pruneShapes();
    s = {
      calls: 0,
      hits: 0,
      misses: 0,
      bypasses: 0,
      bypassReason: null,
      detail: null,
      upstreamCalls: 0,
      upstreamMs: 0,
      hitUs: 0,
      bytes: 0,
    };
    this.shapes.set(shape, s);
    return s;
  }

  private table(database: string, table: string): TableStats {
    let byTable = this.tables.get(database);
    let t = byTable?.get(table);
    if (t !== undefined) return t;
    if (this.tableCount >= this.maxTables) {
      this.pruneTables();
      byTable = this.tables.get(database);
    }
    if (byTable === undefined) {
      byTable = new Map();
      this.tables.set(database, byTable);
    }
    t = { hits: 0, misses: 0, invalidations: 0 };
    byTable.set(table, t);
    this.tableCount++;
    return t;
  }

  private pruneShapes(): void {
    const drop = Math.max(1, Math.ceil(this.maxShapes / 10));
    const least = [...this.shapes].sort((x, y) => x[1].calls - y[1].calls).slice(0, drop);
    for (const [shape] of least) this.shapes.delete(shape);
  }

  private pruneTables(): void {
    const drop = Math.max(1, Math.ceil(this.maxTables / 10));
    const all: Array<[string, string, number]> = [];
    for (const [db, byTable] of this.tables) {
      for (const [t, c] of byTable) all.push([db, t, c.hits + c.misses + c.invalidations]);
    }
    all.sort((x, y) => x[2] - y[2]);
    for (const [db, t] of all.slice(0, drop)) {
      const byTable = this.tables.get(db);
      if (byTable === undefined) continue;
      byTable.delete(t);
      this.tableCount--;
      if (byTable.size === 0) this.tables.delete(db);
    }
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
