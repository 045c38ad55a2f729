// The Store interface: where result bytes and table versions live. The
// memory store is the default; the Redis store (a later issue) shares one
// truth between proxy instances. Every method may answer synchronously so
// the in-memory hit path never awaits.

import type { MaybePromise } from '../core/types.js';

/**
 * The table versions a read was sent under: one counter per table plus the
 * database-wide and store-wide epochs, so "invalidate everything for a
 * database" and "invalidate all" are O(1) bumps like a table's.
 */
export interface VersionSnapshot {
  readonly database: string;
  readonly tables: readonly string[];
  /** [global epoch, database epoch, ...one per table in `tables`]. */
  readonly versions: readonly number[];
}

export interface CacheEntry {
  /** The full key material; a hit compares it, so an index collision can
   * never serve another query's rows. */
  readonly key: string;
  /** Protocol-defined bytes replayed before the rows (PostgreSQL: the
   * RowDescription/NoData answering a Describe; absent for simple query). */
  readonly head: Buffer | null;
  /** Protocol-defined result bytes, replayed verbatim. */
  readonly body: Buffer;
  /** Date.now() when stored: freshness is decided at lookup against the TTL in force then. */
  readonly storedAt: number;
  /** The literal-free shape, for stats and invalidation by pattern. */
  readonly shape: string;
  readonly snapshot: VersionSnapshot;
}

/** Every version tag of a statement shape starts so (core/query-cache.ts shapeTag):
 * \u0001 starts no table name anyone writes, and it is not the NUL the Redis
 * store separates tables with. */
export const SHAPE_TAG_PREFIX = '\u0001s:';

export interface StoreUsage {
  entries: number;
  bytes: number;
  evictions: number;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /** Current versions of these tables: taken before a read is sent upstream. */
  snapshot(database: string, tables: readonly string[]): MaybePromise<VersionSnapshot>;
  /**
   * The entry for `key`, only if its snapshot still equals the current
   * versions (anything else is stale and may be dropped). TTL is not checked
   * here: the caller decides freshness against the rule in force now.
   * `database` is the one whose table versions the entry was read under
   * (a shared store keeps an entry beside those versions).
   */
  get(key: string, database: string): MaybePromise<CacheEntry | undefined>;
  /**
   * Store `entry` only if the versions in `entry.snapshot` are still current
   * (closes the race where a slow read stores a pre-write result after the
   * write's invalidation). `maxAgeMs` > 0 lets the store drop it after that
   * long. Returns whether it was stored.
   */
  put(entry: CacheEntry, maxAgeMs: number): MaybePromise<boolean>;
  /** A write was acknowledged: every entry that read these tables is stale. */
  bump(database: string, tables: readonly string[]): MaybePromise<void>;
  /** A write to tables we cannot name: everything for this database is stale. */
  bumpDatabase(database: string): MaybePromise<void>;
  /** Everything is stale. */
  bumpAll(): MaybePromise<void>;
  usage(): StoreUsage;
  /** A shared store: remember that results of `shape` are versioned under `tag`
   * (fire and forget), so invalidation by pattern on any instance finds it. */
  registerShape?(shape: string, tag: string): void;
  /** A shared store: every database and shape (shape → tag) any instance
   * cached results for; null when that list may be incomplete right now. */
  registryContents?(): Promise<{ databases: string[]; shapes: Map<string, string> } | null>;
  close(): Promise<void>;
}
