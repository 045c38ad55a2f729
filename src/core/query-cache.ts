// QueryCache: the one object a session (PostgreSQL or MySQL) talks to.
// analyse → decide → key → lookup (hit: replay) | snapshot → upstream → fill;
// writes → afterWrite before the acknowledgement is relayed.
//
// The store is always used through FailOpenStore: its failures become misses
// (and store_errors), never a client error, and a lost bump makes every
// lookup miss until it is made good.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { SHAPE_TAG_PREFIX, type CacheEntry, type Store, type StoreUsage, type VersionSnapshot } from '../cache/store.js';
import type { Config } from '../config/schema.js';
import type { Analysis } from '../sql/classifier.js';
import { FailOpenStore, type StoreOp } from '../cache/fail-open.js';
import { hasClockWord } from '../sql/volatile-literal.js';
import { cacheKey, cacheKeyPrefix } from './cache-key.js';
import { CatalogMemo } from './catalog.js';
import type { ExtraEdge } from './dependency-graph.js';
import { decide } from './decide.js';
import { Rules } from './rules.js';
import { Stats } from './stats.js';
import type { CacheDecision, Decision, Dialect, MaybePromise, SessionView } from './types.js';

/** What QueryCache needs of the classifier (src/sql/classifier.ts's Classifier fits). */
export interface StatementClassifier {
  analyse(dialect: Dialect, sql: string, opts?: { backslashEscapes?: boolean }): Analysis;
}

export interface QueryCacheOptions {
  config: Config;
  store: Store;
  classifier: StatementClassifier;
  log: Logger;
  /** Catalog facts lifetime (default 30 s). */
  catalogTtlMs?: number;
  /** Longest wait for an async store (default 250 ms). */
  storeTimeoutMs?: number;
}

/** Databases remembered for `invalidate({table})`; past this, such a request bumps everything. */
const MAX_KNOWN_DATABASES = 10_000;
/** Shapes remembered for `invalidatePattern`; past this, such a request bumps everything. */
const MAX_KNOWN_SHAPES = 100_000;

export class QueryCache {
  readonly stats: Stats;
  readonly catalog: CatalogMemo;
  private readonly store: FailOpenStore;
  private readonly classifier: StatementClassifier;
  private readonly log: Logger;
  private config: Config;
  private rules: Rules;
  /** Every database a result was snapshotted or a write seen for. */
  private readonly databases = new Set<string>();
  private databasesOverflow = false;
  /**
   * Invalidation by shape pattern, O(1) per shape: every result is versioned
   * under one more pseudo-table, its shape's tag, beside the tables it read.
   * Bumping the tags of the matching shapes retires their results the way a
   * write retires a table's. shape → tag, for every shape snapshotted.
   */
  private readonly shapeTags = new Map<string, string>();
  /** `dependencies:` edges: written table → tables whose reads it invalidates. */
  private extraEdgeMap: Map<string, string[]>;
  private shapesOverflow = false;

  constructor(opts: QueryCacheOptions) {
    this.config = opts.config;
    this.classifier = opts.classifier;
    this.log = opts.log;
    this.stats = new Stats({ maxTableLabels: opts.config.admin.metricsTableLimit });
    // Catalog facts and dependency graphs are re-read every dependencies.refresh.
    this.catalog = new CatalogMemo({ ttlMs: opts.catalogTtlMs ?? opts.config.dependencies.refreshMs });
    this.extraEdgeMap = extraEdgeMap(opts.config);
    this.rules = new Rules(opts.config.rules, opts.config.cache.defaultTtlMs);
    const failOpen: ConstructorParameters<typeof FailOpenStore>[1] = {
      onError: (err: unknown, op: StoreOp) => {
        this.stats.storeError();
        this.log.warn({ err, op }, 'cache store failed');
      },
    };
    if (opts.storeTimeoutMs !== undefined) failOpen.timeoutMs = opts.storeTimeoutMs;
    this.store = new FailOpenStore(opts.store, failOpen);
  }

  /** A bound parameter such as 'now' or 'tomorrow 13:00' is evaluated per
   * call when it lands in a date/time type: such a bind is never cached. */
  isVolatileValue(text: string): boolean {
    return hasClockWord(text);
  }

  /** The config in force now (reload replaces it). */
  get currentConfig(): Config {
    return this.config;
  }

  get inTransactions(): boolean {
    return this.config.cache.inTransactions;
  }

  /** cache.max_entry_size in force now: result capture stops buffering past it. */
  get maxEntrySize(): number {
    return this.config.cache.maxEntrySizeBytes;
  }

  analyse(dialect: Dialect, sql: string, opts?: { backslashEscapes?: boolean }): Analysis {
    return this.classifier.analyse(dialect, sql, opts);
  }

  /** The decision for one statement; bypasses are counted here. */
  decide(a: Analysis, s: SessionView): Decision {
    const d = decide(a, s, {
      rules: this.rules,
      catalog: this.catalog,
      inTransactions: this.config.cache.inTransactions,
      extraEdges: this.extraEdgeMap,
    });
    if (d.action === 'bypass') {
      const c = a.classification;
      this.stats.bypass(d.reason, d.shape, d.detail, s.listener, c.kind === 'read' ? c.reads : null, s.database);
    }
    return d;
  }

  key(s: SessionView, mode: string, keyText: string, params: string): string {
    return cacheKey({
      dialect: s.dialect,
      upstream: s.upstream,
      database: s.database,
      user: s.user,
      contextKey: s.contextKey,
      mode,
      keyText,
      params,
    });
  }

  /**
   * key() without its params part, for a protocol layer that runs one
   * statement many times: keyPrefix(s, mode, keyText) + the params part
   * (cacheKeyWithParams) is exactly key(s, mode, keyText, params). Building
   * the whole 8-part key per lookup was ~16 % of the CPU of an extended-
   * protocol hit with its flattening, hashing and compares (perf, pgbench
   * -M extended, 2 lookups a batch).
   */
  keyPrefix(s: SessionView, mode: string, keyText: string): string {
    return cacheKeyPrefix({
      dialect: s.dialect,
      upstream: s.upstream,
      database: s.database,
      user: s.user,
      contextKey: s.contextKey,
      mode,
      keyText,
    });
  }

  // Hot path: synchronous for the memory store. The caller counts hit/miss
  // (stats.hit/miss) with its own timing.
  lookup(d: CacheDecision, key: string): MaybePromise<CacheEntry | undefined> {
    const r = this.store.get(key, d.database);
    if (r instanceof Promise) return r.then((e) => this.fresh(d, key, e));
    return this.fresh(d, key, r);
  }

  /** Versions to send the read under: take it before the query goes upstream. */
  snapshot(d: CacheDecision): MaybePromise<VersionSnapshot> {
    this.remember(d.database);
    return this.store.snapshot(d.database, [...d.reads, this.tagOf(d.shape)]);
  }

  /**
   * Store a complete, successful result read under `snap`. Takes ownership of
   * `head` and `body`: the caller must not reuse or change them afterwards.
   * Refuses results over cache.max_entry_size; never throws.
   */
  fill(d: CacheDecision, key: string, snap: VersionSnapshot, head: Buffer | null, body: Buffer): void {
    const size = body.length + (head === null ? 0 : head.length);
    if (size > this.config.cache.maxEntrySizeBytes) return;
    // The versions must be those of this decision's tables, or a write to a
    // table it read could miss the entry.
    if (snap.database !== d.database || !versionedAs(snap.tables, d.reads, this.shapeTags.get(d.shape) ?? shapeTag(d.shape))) return;
    this.remember(d.database); // invalidate({table}) must reach every database that has entries
    const entry: CacheEntry = { key, head, body, storedAt: Date.now(), shape: d.shape, snapshot: snap };
    try {
      // Freshness is decided at lookup against the TTL in force then, so a
      // reload that lengthens a TTL reaches entries already stored. The
      // memory store keeps entries until LRU eviction; a shared store
      // (Redis) gets an expiry so it never keeps what no TTL could serve.
      const r = this.store.put(entry, this.store.kind === 'memory' ? 0 : d.ttlMs);
      if (r instanceof Promise) r.catch((err: unknown) => this.log.warn({ err }, 'cache fill failed'));
    } catch (err) {
      this.log.warn({ err }, 'cache fill failed');
    }
  }

  /**
   * A write was acknowledged by the database: call before relaying the
   * acknowledgement. The tables it wrote are bumped, or the whole database
   * when they are unknown or it is DDL naming no table; after DDL (or what
   * may run DDL) the catalog facts of that database are forgotten.
   */
  afterWrite(
    upstream: string,
    database: string,
    writes: readonly string[],
    writesUnknown: boolean,
    ddl: boolean,
  ): MaybePromise<void> {
    // The session sets `ddl` for DDL and for code that may run DDL (CALL, DO,
    // volatile functions): forgetting after every unknown write would also
    // drop what concurrent look-ups are learning, which keeps writes unknown.
    if (ddl) this.catalog.forget(upstream, database);
    this.remember(database);
    // Any DDL invalidates the whole database: beyond the tables it names it
    // can change what other statements return (a renamed table in a regclass
    // column, a table's row type used in a cast, event triggers that write).
    // DDL is rare in production; a stale row after one is not.
    this.stats.write(database, writes);
    if (writesUnknown || ddl) {
      this.stats.invalidate(database, '*');
      return this.store.bumpDatabase(database);
    }
    if (writes.length === 0) return;
    for (const t of writes) this.stats.invalidate(database, t);
    return this.store.bump(database, writes);
  }

  /** POST /invalidate. A table name is also bumped lower-cased (over-invalidating is safe). */
  async invalidate(req: { database?: string; table?: string; all?: boolean }): Promise<{ invalidated: string[] }> {
    if (req.all === true) {
      this.stats.invalidate('*', '*');
      await this.store.bumpAll();
      return { invalidated: ['*'] };
    }
    const { database, table } = req;
    if (table === undefined) {
      if (database === undefined) return { invalidated: [] };
      this.stats.invalidate(database, '*');
      await this.store.bumpDatabase(database);
      return { invalidated: [`${database}.*`] };
    }
    const names = table === table.toLowerCase() ? [table] : [table, table.toLowerCase()];
    // Databases this instance saw, and (shared store) those any instance saw;
    // when that list may be incomplete, everything goes.
    const shared = database === undefined ? await this.store.registryOrNull() : null;
    if (database === undefined && (this.databasesOverflow || shared === null)) {
      this.stats.invalidate('*', '*');
      await this.store.bumpAll();
      return { invalidated: ['*'] };
    }
    const dbs = database === undefined ? [...new Set([...this.databases, ...(shared?.databases ?? [])])] : [database];
    const invalidated: string[] = [];
    for (const db of dbs) {
      for (const t of names) {
        this.stats.invalidate(db, t);
        invalidated.push(`${db}.${t}`);
      }
      await this.store.bump(db, names);
    }
    return { invalidated };
  }

  /**
   * POST /invalidate {"pattern"}: retire every cached result whose shape
   * matches (`%` = any run of characters, `\%` a percent sign; whitespace
   * runs match one space). One bump of each matching shape's tag per
   * database: the work grows with shapes, never with entries.
   */
  async invalidatePattern(pattern: string): Promise<{ invalidated: string[]; shapes: number }> {
    const matches = shapePattern(pattern);
    const shared = await this.store.registryOrNull();
    if (shared === null || this.shapesOverflow || (this.databasesOverflow && this.shapeTags.size > 0)) {
      this.stats.invalidate('*', '*');
      await this.store.bumpAll();
      return { invalidated: ['*'], shapes: -1 };
    }
    const matched = new Map<string, string>();
    for (const known of [this.shapeTags, shared.shapes]) {
      for (const [shape, tag] of known) if (matches(shape)) matched.set(shape, tag);
    }
    if (matched.size === 0) return { invalidated: [], shapes: 0 };
    const tags = [...new Set(matched.values())];
    const dbs = [...new Set([...this.databases, ...shared.databases])];
    for (const db of dbs) await this.store.bump(db, tags);
    this.log.info({ pattern, shapes: matched.size, databases: dbs.length }, 'invalidated by pattern');
    return { invalidated: [...matched.keys()], shapes: matched.size };
  }

  /** Rules, TTLs and in_transactions apply at once, to stored entries too
   * (TTL is checked at lookup). cache.max_memory needs a restart. */
  reload(config: Config): void {
    this.rules = new Rules(config.rules, config.cache.defaultTtlMs);
    this.config = config;
    const edges = extraEdgeMap(config);
    if (JSON.stringify([...edges]) !== JSON.stringify([...this.extraEdgeMap])) {
      this.extraEdgeMap = edges;
      // Graphs hold the YAML edges too: rebuilt on the next statement.
      this.catalog.clear();
    }
  }

  /** `dependencies:` edges, in the form DependencyGraph takes. */
  get extraEdges(): ExtraEdge[] {
    return [...this.extraEdgeMap].map(([writes, invalidates]) => ({ writes, invalidates: [...invalidates] }));
  }

  usage(): StoreUsage {
    return this.store.usage();
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** Still fresh under the TTL in force now, and really this key's entry. */
  private fresh(d: CacheDecision, key: string, e: CacheEntry | undefined): CacheEntry | undefined {
    if (e === undefined || e.key !== key) return undefined;
    // Written so a negative or NaN TTL reads as expired, never as "forever".
    if (d.ttlMs !== 0 && !(Date.now() - e.storedAt < d.ttlMs)) return undefined;
    return e;
  }

  /** The shape's tag, remembered (and registered with a shared store) on first use. */
  private tagOf(shape: string): string {
    let tag = this.shapeTags.get(shape);
    if (tag !== undefined) return tag;
    tag = shapeTag(shape);
    // A shared store keeps its own (bounded) registry: it hears of every shape.
    this.store.registerShape(shape, tag);
    if (this.shapeTags.size >= MAX_KNOWN_SHAPES) {
      this.shapesOverflow = true;
      return tag;
    }
    this.shapeTags.set(shape, tag);
    return tag;
  }

  private remember(database: string): void {
    if (this.databases.has(database)) return;
    if (this.databases.size >= MAX_KNOWN_DATABASES) {
      this.databasesOverflow = true;
      return;
    }
    this.databases.add(database);
  }
}

/** The snapshot was taken for exactly these reads plus the shape's tag. */
function versionedAs(tables: readonly string[], reads: readonly string[], tag: string): boolean {
  if (tables.length !== reads.length + 1 || tables[reads.length] !== tag) return false;
  for (let i = 0; i < reads.length; i++) if (tables[i] !== reads[i]) return false;
  return true;
}

/**
 * A shape's pseudo-table name. \u0001 cannot start a table name anyone
 * writes (and a collision would only over-invalidate); no NUL, which the
 * Redis store uses as a separator.
 */
export function shapeTag(shape: string): string {
  return `${SHAPE_TAG_PREFIX}${createHash('sha256').update(shape).digest('base64url').slice(0, 22)}`;
}

/**
 * A shape pattern: `%` matches any run of characters, `\%` a percent sign,
 * a whitespace run one space (as in shapes); everything else is literal and
 * case-sensitive, anchored at both ends. Matched by prefix, suffix and
 * in-order indexOf of the literal parts: linear, where a RegExp of many `%`
 * can backtrack for seconds on a long shape.
 */
export function shapePattern(pattern: string): (shape: string) => boolean {
  const folded = pattern.trim().replace(/\s+/g, ' ');
  const parts: string[] = [''];
  for (let i = 0; i < folded.length; i++) {
    const ch = folded[i] as string;
    if (ch === '\\' && (folded[i + 1] === '%' || folded[i + 1] === '\\')) {
      parts[parts.length - 1] += folded[++i] as string;
    } else if (ch === '%') {
      parts.push('');
    } else {
      parts[parts.length - 1] += ch;
    }
  }
  if (parts.length === 1) {
    const exact = parts[0] as string;
    return (shape) => shape === exact;
  }
  const head = parts[0] as string;
  const tail = parts[parts.length - 1] as string;
  const middle = parts.slice(1, -1).filter((p) => p !== '');
  return (shape) => {
    if (shape.length < head.length + tail.length || !shape.startsWith(head) || !shape.endsWith(tail)) return false;
    let at = head.length;
    const end = shape.length - tail.length;
    for (const part of middle) {
      const found = shape.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** The config's `dependencies:` edges by written table (names as given, so
 * `orders` also matches a MySQL write of `app.orders`: decide.ts). */
function extraEdgeMap(config: Config): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of config.dependencies.edges) m.set(e.writes, [...new Set([...(m.get(e.writes) ?? []), ...e.invalidates])]);
  return m;
}
