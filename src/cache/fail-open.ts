// FailOpenStore wraps a Store so its failures never reach a client: a throw,
// a rejection or (async stores) an answer slower than `timeoutMs` becomes a
// miss, a refused put or a no-op, and `onError(err, op)` is called.
//
// A failed bump is different: swallowing it could serve rows that predate an
// acknowledged write. So after any bump/bumpDatabase/bumpAll fails, the
// wrapper is "unsure": every get misses and every put is refused until a
// bumpAll succeeds (it invalidates whatever the lost bump should have). The
// recovering bumpAll is tried on the next bump (any bump is escalated to
// bumpAll) and, at most once per `retryMs`, on a get.
//
// Any failure also opens a circuit for `retryMs`: meanwhile reads do not ask
// the store at all (gets miss, snapshots are unmatchable, puts are refused),
// so a client waits for one timeout at most, not one per store call. Bumps
// are always tried: a write's invalidation is never skipped on a guess. A
// lost bump is made good by a bumpAll retried every `retryMs` until it
// succeeds, whether or not the instance is busy: other instances sharing the
// store may be serving what the lost bump should have invalidated.

import type { CacheEntry, Store, StoreUsage, VersionSnapshot } from './store.js';
import type { MaybePromise } from '../core/types.js';

export type StoreOp = 'snapshot' | 'get' | 'put' | 'bump' | 'bumpDatabase' | 'bumpAll' | 'usage' | 'close';

export interface FailOpenOptions {
  onError: (err: unknown, op: StoreOp) => void;
  /** Longest wait for an async answer (default 250 ms). */
  timeoutMs?: number;
  /** Least time between recovery attempts triggered by gets (default 1 s). */
  retryMs?: number;
  now?: () => number;
}

export class StoreTimeoutError extends Error {
  readonly code = 'SQLCACHED_ERR_STORE_TIMEOUT';
  constructor(op: StoreOp, ms: number) {
    super(`store ${op} took longer than ${ms} ms`);
  }
}

/** A snapshot no store state equals (versions are never negative): a put under it is refused. */
function unmatchable(database: string, tables: readonly string[]): VersionSnapshot {
  return { database, tables: tables.slice(), versions: new Array<number>(tables.length + 2).fill(-1) };
}

export class FailOpenStore implements Store {
  readonly kind: 'memory' | 'redis';
  private readonly timeoutMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  /** Bumped on every failed bump; a recovery only counts if none failed since it started. */
  private failures = 0;
  private unsure = false;
  private lastRecovery = -Infinity;
  /** Until then reads do not ask the store (see the circuit above). */
  private openUntil = -Infinity;
  private closed = false;

  constructor(
    private readonly inner: Store,
    private readonly opts: FailOpenOptions,
  ) {
    this.kind = inner.kind;
    this.timeoutMs = opts.timeoutMs ?? 250;
    this.retryMs = opts.retryMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** True while a lost bump may not have been made good yet. */
  get isUnsure(): boolean {
    return this.unsure;
  }

  snapshot(database: string, tables: readonly string[]): MaybePromise<VersionSnapshot> {
    if (this.isOpen()) return unmatchable(database, tables);
    return this.guard('snapshot', () => this.inner.snapshot(database, tables), () => unmatchable(database, tables));
  }

  get(key: string, database: string): MaybePromise<CacheEntry | undefined> {
    if (this.unsure) {
      if (this.now() - this.lastRecovery >= this.retryMs) void this.recover();
      return undefined;
    }
    if (this.isOpen()) return undefined;
    // Hot path: written out instead of guard() so a sync hit allocates no closure.
    let r: MaybePromise<CacheEntry | undefined>;
    try {
      r = this.inner.get(key, database);
    } catch (err) {
      this.report(err, 'get');
      return undefined;
    }
    if (!(r instanceof Promise)) return r;
    return this.timed('get', r).then(
      (v) => v,
      (err: unknown) => {
        this.report(err, 'get');
        return undefined;
      },
    );
  }

  put(entry: CacheEntry, maxAgeMs: number): MaybePromise<boolean> {
    if (this.unsure || this.isOpen()) return false;
    return this.guard('put', () => this.inner.put(entry, maxAgeMs), () => false);
  }

  bump(database: string, tables: readonly string[]): MaybePromise<void> {
    if (this.unsure) return this.recover();
    return this.bumping('bump', () => this.inner.bump(database, tables));
  }

  bumpDatabase(database: string): MaybePromise<void> {
    if (this.unsure) return this.recover();
    return this.bumping('bumpDatabase', () => this.inner.bumpDatabase(database));
  }

  bumpAll(): MaybePromise<void> {
    return this.recover();
  }

  usage(): StoreUsage {
    try {
      return this.inner.usage();
    } catch (err) {
      this.report(err, 'usage');
      return { entries: 0, bytes: 0, evictions: 0 };
    }
  }


  registerShape(shape: string, tag: string): void {
    if (this.inner.registerShape === undefined) return;
    try {
      this.inner.registerShape(shape, tag);
    } catch (err) {
      this.report(err, 'usage');
    }
  }

  /** The shared store's databases and shapes (empty for a store of one
   * process); null when it fails or may be incomplete: the caller then
   * retires everything rather than miss a name. */
  async registryOrNull(): Promise<{ databases: string[]; shapes: Map<string, string> } | null> {
    if (this.inner.registryContents === undefined) return { databases: [], shapes: new Map() };
    const inner = this.inner;
    return this.guard<{ databases: string[]; shapes: Map<string, string> } | null>('usage', () => inner.registryContents!(), () => null);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    await this.guard('close', () => this.inner.close(), () => undefined);
  }

  /** bumpAll; on success (and no bump failed meanwhile) the wrapper is sure again. */
  private recover(): MaybePromise<void> {
    this.lastRecovery = this.now();
    const started = this.failures;
    return this.bumping('bumpAll', () => this.inner.bumpAll(), () => {
      if (this.failures === started) this.unsure = false;
    });
  }

  private bumping(op: StoreOp, call: () => MaybePromise<void>, done?: () => void): MaybePromise<void> {
    const failed = (err: unknown): void => {
      this.failures++;
      this.unsure = true;
      this.report(err, op);
      this.scheduleRecovery();
    };
    let r: MaybePromise<void>;
    try {
      r = call();
    } catch (err) {
      failed(err);
      return;
    }
    if (!(r instanceof Promise)) {
      done?.();
      return;
    }
    return this.timed(op, r).then(() => done?.(), failed);
  }

  /** Run `call`; a throw, rejection or timeout yields `fallback()` and a report. */
  private guard<T>(op: StoreOp, call: () => MaybePromise<T>, fallback: () => T): MaybePromise<T> {
    let r: MaybePromise<T>;
    try {
      r = call();
    } catch (err) {
      this.report(err, op);
      return fallback();
    }
    if (!(r instanceof Promise)) return r;
    return this.timed(op, r).then(
      (v) => v,
      (err: unknown) => {
        this.report(err, op);
        return fallback();
      },
    );
  }

  private timed<T>(op: StoreOp, p: Promise<T>): Promise<T> {
    const ms = this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreTimeoutError(op, ms)), ms);
      timer.unref?.();
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private recoveryTimer: ReturnType<typeof setTimeout> | null = null;

  /** Retries the recovering bumpAll every retryMs until the wrapper is sure again. */
  private scheduleRecovery(): void {
    if (this.recoveryTimer !== null || this.closed) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = null;
      if (!this.unsure || this.closed) return;
      const r = this.recover();
      const again = (): void => {
        if (this.unsure) this.scheduleRecovery();
      };
      if (r instanceof Promise) r.then(again, again);
      else again();
    }, this.retryMs);
    this.recoveryTimer.unref?.();
  }

  private isOpen(): boolean {
    return this.openUntil > this.now();
  }

  private report(err: unknown, op: StoreOp): void {
    this.openUntil = this.now() + this.retryMs;
    try {
      this.opts.onError(err, op);
    } catch {
      // onError is the caller's logging; it must not turn a store failure into a crash.
    }
  }
}
