// Stats: plain counters fed by event verbs (hit, miss, bypass, invalidate…)
// and turned into the /stats JSON by snapshot() and into /metrics by the
// admin port. The verbs run on the hot path: a Map lookup or two, integer
// adds and a bucket search, no string building.
//
// Bounded: at most `maxShapes` fingerprints and `maxTables` tables are kept;
// when full, the least-used tenth is dropped at once (amortised, so a flood
// of one-off shapes costs a sort per `max / 10` new shapes, not a scan each).
// Metric label sets are bounded apart, and never pruned (a Prometheus
// counter must not go backwards): the first `maxTableLabels` tables get their
// own label, later ones share `__other__`.

import type { StoreUsage } from '../cache/store.js';
import { LatencyHistogram, QuantileSketch } from './latency.js';
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
  /** Upper estimate (within a third) of the 95th percentile upstream time. */
  p95_upstream_ms: number;
  mean_hit_us: number;
  /** Result bytes received from the database for this shape, in total. */
  bytes: number;
  /** The TTL the last cached read of this shape got (0 = until invalidated; null: never cacheable). */
  ttl_ms: number | null;
  /** The rule that set it: "rules[i]", "hint", or null for cache.default_ttl. */
  rule: string | null;
  /** Upstream time the hits spared: hits × (mean upstream − mean hit), ms. */
  saved_ms: number;
}

export interface TableStats {
  /** Reads of the table through the proxy: hits, misses and bypassed reads. */
  reads: number;
  hits: number;
  misses: number;
  /** Writes to it seen through the proxy. */
  writes: number;
  /** Times its cached reads were retired: its writes, cascades, admin requests. */
  invalidations: number;
}

export interface ListenerSnapshot {
  name: string;
  protocol: string;
  clients: number;
  upstreams: number;
  hits: number;
  misses: number;
  bypasses: number;
}

/** Cumulative counters at one moment (history for the dashboard's charts). */
export interface StatsSample {
  t: number;
  hits: number;
  misses: number;
  bypasses: number;
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
  /** Top 10 by time saved, and by misses. */
  top_saved: QueryStats[];
  top_misses: QueryStats[];
  listeners: ListenerSnapshot[];
  /** Samples every few seconds, oldest first (the last 15 minutes). */
  history: StatsSample[];
}

/** One listener's own counters and latency histograms (labelled by listener in /metrics). */
export class ListenerStats {
  hits = 0;
  misses = 0;
  bypasses = 0;
  readonly hitLatency = new LatencyHistogram();
  readonly missLatency = new LatencyHistogram();
  /** Set by the listener: client connections open, and upstream connections held. */
  connections: () => { clients: number; upstreams: number } = () => ({ clients: 0, upstreams: 0 });

  constructor(
    readonly name: string,
    readonly protocol: string,
  ) {}
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
  upstream: QuantileSketch;
  hitUs: number;
  bytes: number;
  ttlMs: number | null;
  rule: string | null;
}

export interface StatsOptions {
  maxShapes?: number;
  maxTables?: number;
  /** Distinct tables with their own label in sqlcached_invalidations_total. */
  maxTableLabels?: number;
  /** History samples kept (one per sample() call). */
  maxSamples?: number;
  now?: () => number;
}

const TOP_QUERIES = 100;
const TOP_N = 10;
export const OTHER_LABEL = '__other__';

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
  /** For /metrics: "db\0table" → invalidations, at most maxTableLabels keys plus OTHER. */
  readonly invalidationsByTable = new Map<string, { database: string; table: string; count: number }>();
  private readonly listenerStats = new Map<string, ListenerStats>();
  private readonly history: StatsSample[] = [];
  private readonly maxShapes: number;
  private readonly maxTables: number;
  private readonly maxTableLabels: number;
  private readonly maxSamples: number;
  private readonly now: () => number;
  private readonly started: number;

  constructor(opts: StatsOptions = {}) {
    this.maxShapes = Math.max(1, opts.maxShapes ?? 2_000);
    this.maxTables = Math.max(1, opts.maxTables ?? 10_000);
    this.maxTableLabels = Math.max(0, opts.maxTableLabels ?? 100);
    this.maxSamples = Math.max(2, opts.maxSamples ?? 180);
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  /** The counters of one listener (created on first ask; the listener keeps it). */
  listener(name: string, protocol: string): ListenerStats {
    let l = this.listenerStats.get(name);
    if (l === undefined) {
      l = new ListenerStats(name, protocol);
      this.listenerStats.set(name, l);
    }
    return l;
  }

  listeners(): ListenerStats[] {
    return [...this.listenerStats.values()];
  }

  hit(d: CacheDecision, micros: number, l?: ListenerStats | null): void {
    this.hits++;
    const s = this.shape(d.shape);
    s.calls++;
    s.hits++;
    s.hitUs += micros;
    s.ttlMs = d.ttlMs;
    s.rule = d.rule;
    for (const t of d.reads) {
      const ts = this.table(d.database, t);
      ts.reads++;
      ts.hits++;
    }
    if (l) {
      l.hits++;
      l.hitLatency.observe(micros / 1e6);
    }
  }

  miss(d: CacheDecision, l?: ListenerStats | null): void {
    this.misses++;
    const s = this.shape(d.shape);
    s.calls++;
    s.misses++;
    s.ttlMs = d.ttlMs;
    s.rule = d.rule;
    for (const t of d.reads) {
      const ts = this.table(d.database, t);
      ts.reads++;
      ts.misses++;
    }
    if (l) l.misses++;
  }

  /** A miss's answer came back from the database (whether or not it was stored). */
  upstreamDone(shape: string, ms: number, bytes: number, stored: boolean, l?: ListenerStats | null): void {
    const s = this.shape(shape);
    s.upstreamCalls++;
    s.upstreamMs += ms;
    s.upstream.observe(ms);
    s.bytes += bytes;
    if (stored) this.stores++;
    if (l) l.missLatency.observe(ms / 1000);
  }

  /** `reads` (with `database`): the tables of a read that was not cached, for per-table reads. */
  bypass(
    reason: BypassReason,
    shape: string,
    detail?: string,
    l?: ListenerStats | null,
    reads?: readonly string[] | null,
    database?: string,
  ): void {
    this.bypasses++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    const s = this.shape(shape);
    s.calls++;
    s.bypasses++;
    s.bypassReason = reason;
    s.detail = detail ?? null;
    if (l) l.bypasses++;
    if (reads && database !== undefined) for (const t of reads) this.table(database, t).reads++;
  }

  /** A miss whose result could not be stored: counted apart from bypasses
   * (the call was already counted as a miss), and shown on its shape. */
  notStored(reason: BypassReason, shape: string, detail?: string): void {
    this.notStoredReasons.set(reason, (this.notStoredReasons.get(reason) ?? 0) + 1);
    const s = this.shape(shape);
    s.bypassReason = reason;
    s.detail = detail ?? null;
  }

  /** A write to these tables was acknowledged through the proxy. */
  write(database: string, tables: readonly string[]): void {
    for (const t of tables) this.table(database, t).writes++;
  }

  /** A table (or '*': the whole database; database '*': everything) was invalidated. */
  invalidate(database: string, table: string): void {
    this.invalidations++;
    this.table(database, table).invalidations++;
    const label = `${database}\0${table}`;
    let m = this.invalidationsByTable.get(label);
    if (m === undefined) {
      const full = this.invalidationsByTable.size - (this.invalidationsByTable.has(OTHER_LABEL) ? 1 : 0) >= this.maxTableLabels;
      const key = full ? OTHER_LABEL : label;
      m = this.invalidationsByTable.get(key);
      if (m === undefined) {
        m = full ? { database: OTHER_LABEL, table: OTHER_LABEL, count: 0 } : { database, table, count: 0 };
        this.invalidationsByTable.set(key, m);
      }
    }
    m.count++;
  }

  storeError(): void {
    this.storeErrors++;
  }

  get storeErrorCount(): number {
    return this.storeErrors;
  }

  /** The reasons and counts so far (for /metrics). */
  bypassCounts(): ReadonlyMap<BypassReason, number> {
    return this.reasons;
  }

  /** Counters the metrics read that snapshot() also shows. */
  snapshotCounters(): { stores: number } {
    return { stores: this.stores };
  }

  totals(): { hits: number; misses: number; bypasses: number; invalidations: number } {
    return { hits: this.hits, misses: this.misses, bypasses: this.bypasses, invalidations: this.invalidations };
  }

  /** Record the cumulative counters now (the server calls it every few seconds). */
  sample(): void {
    this.history.push({ t: this.now(), ...this.totals() });
    if (this.history.length > this.maxSamples) this.history.splice(0, this.history.length - this.maxSamples);
  }

  snapshot(usage: StoreUsage): StatsSnapshot {
    const lookups = this.hits + this.misses;
    const tables: Record<string, TableStats> = {};
    for (const [db, byTable] of this.tables) {
      for (const [t, c] of byTable) tables[`${db}.${t}`] = { ...c };
    }
    const all = [...this.shapes].map(([fingerprint, s]) => queryStats(fingerprint, s));
    const top = (by: (q: QueryStats) => number, n: number) =>
      all.filter((q) => by(q) > 0).sort((x, y) => by(y) - by(x)).slice(0, n);
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
      queries: top((q) => q.calls, TOP_QUERIES),
      top_saved: top((q) => q.saved_ms, TOP_N),
      top_misses: top((q) => q.misses, TOP_N),
      listeners: this.listeners().map((l) => ({
        name: l.name,
        protocol: l.protocol,
        ...l.connections(),
        hits: l.hits,
        misses: l.misses,
        bypasses: l.bypasses,
      })),
      history: this.history.slice(),
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
      upstream: new QuantileSketch(),
      hitUs: 0,
      bytes: 0,
      ttlMs: null,
      rule: null,
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
    t = { reads: 0, hits: 0, misses: 0, writes: 0, invalidations: 0 };
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
      for (const [t, c] of byTable) all.push([db, t, c.reads + c.writes + c.invalidations]);
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

function queryStats(fingerprint: string, s: ShapeCounters): QueryStats {
  const meanUpstreamMs = s.upstreamCalls === 0 ? 0 : s.upstreamMs / s.upstreamCalls;
  const meanHitUs = s.hits === 0 ? 0 : s.hitUs / s.hits;
  return {
    fingerprint,
    calls: s.calls,
    hits: s.hits,
    misses: s.misses,
    bypasses: s.bypasses,
    bypass_reason: s.bypassReason,
    detail: s.detail,
    mean_upstream_ms: round3(meanUpstreamMs),
    p95_upstream_ms: round3(s.upstream.quantile(0.95)),
    mean_hit_us: round3(meanHitUs),
    bytes: s.bytes,
    ttl_ms: s.ttlMs,
    rule: s.rule,
    saved_ms: round3(Math.max(0, s.hits * (meanUpstreamMs - meanHitUs / 1000))),
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
