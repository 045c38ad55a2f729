// QueryCache: the one object a session (PostgreSQL or MySQL) talks to.
// analyse → decide → key → lookup (hit: replay) | snapshot → upstream → fill;
// writes → afterWrite before the acknowledgement is relayed.
//
// The store is always used through FailOpenStore: its failures become misses
// (and store_errors), never a client error, and a lost bump makes every
// lookup miss until it is made good.

import type { Logger } from 'pino';
import type { CacheEntry, Store, StoreUsage, VersionSnapshot } from '../cache/store.js';
import type { Config } from '../config/schema.js';
import type { Analysis } from '../sql/classifier.js';
import { FailOpenStore, type StoreOp } from '../cache/fail-open.js';
import { hasClockWord } from '../sql/volatile-literal.js';
import { cacheKey } from './cache-key.js';
import { CatalogMemo } from './catalog.js';
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

  constructor(opts: QueryCacheOptions) {
    this.config = opts.config;
    this.classifier = opts.classifier;
    this.log = opts.log;
    this.stats = new Stats();
    this.catalog = new CatalogMemo(opts.catalogTtlMs === undefined ? {} : { ttlMs: opts.catalogTtlMs });
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
    });
    if (d.action === 'bypass') this.stats.bypass(d.reason, d.shape, d.detail);
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
    return this.store.snapshot(d.database, d.reads);
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
    if (snap.database !== d.database || !sameTables(snap.tables, d.reads)) return;
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
   * when they are unknown or it is DDL naming no table; after DDL or unknown
   * writes the catalog facts of that database are forgotten.
   */
  afterWrite(
    upstream: string,
    database: string,
    writes: readonly string[],
    writesUnknown: boolean,
    ddl: boolean,
  ): MaybePromise<void> {
    if (ddl || writesUnknown) this.catalog.forget(upstream, database);
    this.remember(database);
    // Any DDL invalidates the whole database: beyond the tables it names it
    // can change what other statements return (a renamed table in a regclass
    // column, a table's row type used in a cast, event triggers that write).
    // DDL is rare in production; a stale row after one is not.
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
    if (database === undefined && this.databasesOverflow) {
      this.stats.invalidate('*', '*');
      await this.store.bumpAll();
      return { invalidated: ['*'] };
    }
    // Databases this instance saw, and (shared store) those any instance saw.
    const dbs = database === undefined ? [...new Set([...this.databases, ...(await this.store.databases())])] : [database];
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

  /** Rules, TTLs and in_transactions apply at once, to stored entries too
   * (TTL is checked at lookup). cache.max_memory needs a restart. */
  reload(config: Config): void {
    this.rules = new Rules(config.rules, config.cache.defaultTtlMs);
    this.config = config;
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

  private remember(database: string): void {
    if (this.databases.has(database)) return;
    if (this.databases.size >= MAX_KNOWN_DATABASES) {
      this.databasesOverflow = true;
      return;
    }
    this.databases.add(database);
  }
}

function sameTables(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
