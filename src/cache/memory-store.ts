// The in-process Store (the default): result bytes in a byte-weighted LRU
// keyed by the full key string, table versions in a TableVersions beside
// them. Everything answers synchronously, so a hit never awaits.
//
// Map equality on the full key string is the proof that an entry belongs to
// the query asking: no hash, so no collision can serve another query's rows.

import type { CacheEntry, Store, StoreUsage, VersionSnapshot } from './store.js';
import { Lru } from './lru.js';
import { TableVersions } from '../core/table-versions.js';

/** Map slot, key string, snapshot arrays and the entry object, roughly. */
const ENTRY_OVERHEAD_BYTES = 200;

/**
 * The bytes a cached Buffer keeps alive: a view into a larger ArrayBuffer
 * (a slice of a socket read, up to 64 KiB) retains all of it for as long as
 * the entry lives, so it weighs that much. Slices of Node's shared 8 KiB
 * pool (Buffer.allocUnsafe, small Buffer.from) weigh their length: many
 * small buffers share a slab, and charging each the whole slab would shrink
 * the cache for bytes it does not own alone. ResultCapture.take() returns
 * buffers of their own, so result bodies weigh exactly their length.
 */
function retainedBytes(buf: Buffer): number {
  return buf.buffer.byteLength > Buffer.poolSize ? buf.buffer.byteLength : buf.length;
}

interface Stored {
  entry: CacheEntry;
  /** Date.now() after which the entry is dropped; 0 = never (TTL 0). */
  expiresAt: number;
}

export interface MemoryStoreOptions {
  /** cache.max_memory (a CacheConfig fits). */
  maxMemoryBytes: number;
  /** Version counters kept before all are forgotten at once (see TableVersions). */
  maxTables?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly lru: Lru<string, Stored>;
  private readonly versions: TableVersions;
  private readonly now: () => number;

  constructor(opts: MemoryStoreOptions) {
    this.lru = new Lru<string, Stored>({ capacity: opts.maxMemoryBytes });
    this.versions = new TableVersions(opts.maxTables === undefined ? {} : { maxTables: opts.maxTables });
    this.now = opts.now ?? Date.now;
  }

  snapshot(database: string, tables: readonly string[]): VersionSnapshot {
    return this.versions.snapshot(database, tables);
  }

  // Hot path: one Map lookup, one clock read, a compare per table. No allocation.
  get(key: string): CacheEntry | undefined {
    const stored = this.lru.get(key);
    if (stored === undefined) return undefined;
    if (stored.expiresAt !== 0 && this.now() >= stored.expiresAt) {
      this.lru.delete(key);
      return undefined;
    }
    if (!this.versions.isCurrent(stored.entry.snapshot)) {
      this.lru.delete(key);
      return undefined;
    }
    return stored.entry;
  }

  put(entry: CacheEntry, maxAgeMs: number): boolean {
    // A bump between the snapshot and now means the bytes may predate a write.
    if (!this.versions.isCurrent(entry.snapshot)) return false;
    const weight =
      entry.key.length + (entry.head === null ? 0 : retainedBytes(entry.head)) + retainedBytes(entry.body) + ENTRY_OVERHEAD_BYTES;
    const expiresAt = maxAgeMs > 0 ? this.now() + maxAgeMs : 0;
    return this.lru.set(entry.key, { entry, expiresAt }, weight);
  }

  bump(database: string, tables: readonly string[]): void {
    this.versions.bump(database, tables);
  }

  bumpDatabase(database: string): void {
    this.versions.bumpDatabase(database);
  }

  bumpAll(): void {
    this.versions.bumpAll();
  }

  /** Drop every entry. Versions are kept (and moved on), never reset, so an
   * entry put with a snapshot taken before the clear cannot come back. */
  clear(): void {
    this.versions.bumpAll();
    this.lru.clear();
  }

  usage(): StoreUsage {
    return { entries: this.lru.entries, bytes: this.lru.weight, evictions: this.lru.evictions };
  }

  close(): Promise<void> {
    this.lru.clear();
    return Promise.resolve();
  }
}
