// FailOpenStore: a failing store becomes misses and no-ops, never an error
// to the caller; a lost bump makes lookups miss until a bumpAll lands.

import { describe, expect, it } from 'vitest';
import { FailOpenStore, StoreTimeoutError, type StoreOp } from '../../../src/cache/fail-open.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import type { CacheEntry, Store, VersionSnapshot } from '../../../src/cache/store.js';

const boom = new Error('store down');

/** A memory store whose chosen operations throw, reject or hang. */
class Faulty implements Store {
  readonly kind = 'redis' as const;
  readonly inner = new MemoryStore({ maxMemoryBytes: 1 << 20 });
  mode: 'ok' | 'throw' | 'reject' | 'hang' = 'ok';
  failing = new Set<StoreOp>();
  calls: StoreOp[] = [];

  private run<T>(op: StoreOp, f: () => T): T | Promise<T> {
    this.calls.push(op);
    if (!this.failing.has(op) || this.mode === 'ok') return f();
    if (this.mode === 'throw') throw boom;
    if (this.mode === 'reject') return Promise.reject(boom);
    return new Promise<T>(() => {});
  }
  snapshot(db: string, t: readonly string[]) {
    return this.run('snapshot', () => this.inner.snapshot(db, t));
  }
  get(key: string) {
    return this.run('get', () => this.inner.get(key));
  }
  put(e: CacheEntry, ms: number) {
    return this.run('put', () => this.inner.put(e, ms));
  }
  bump(db: string, t: readonly string[]) {
    return this.run('bump', () => this.inner.bump(db, t));
  }
  bumpDatabase(db: string) {
    return this.run('bumpDatabase', () => this.inner.bumpDatabase(db));
  }
  bumpAll() {
    return this.run('bumpAll', () => this.inner.bumpAll());
  }
  usage() {
    if (this.failing.has('usage') && this.mode !== 'ok') throw boom;
    return this.inner.usage();
  }
  close() {
    return this.failing.has('close') && this.mode !== 'ok' ? Promise.reject(boom) : Promise.resolve();
  }
}

function setup(opts: { timeoutMs?: number; retryMs?: number } = {}) {
  const faulty = new Faulty();
  const errors: Array<[unknown, StoreOp]> = [];
  const store = new FailOpenStore(faulty, { onError: (e, op) => errors.push([e, op]), ...opts });
  return { faulty, store, errors };
}

function entry(key: string, snapshot: VersionSnapshot): CacheEntry {
  return { key, head: null, body: Buffer.from('rows'), storedAt: 0, shape: 's', snapshot };
}

describe('FailOpenStore', () => {
  it('passes a healthy store through synchronously', () => {
    const { store, errors } = setup();
    const snap = store.snapshot('app', ['t']) as VersionSnapshot;
    expect(store.put(entry('k', snap), 0)).toBe(true);
    expect(store.get('k', 'db')).toMatchObject({ key: 'k' });
    expect(errors).toEqual([]);
    expect(store.kind).toBe('redis');
  });

  for (const mode of ['throw', 'reject'] as const) {
    it(`a get that fails (${mode}) is a miss and reported, never an error`, async () => {
      const { faulty, store, errors } = setup();
      faulty.failing.add('get');
      faulty.mode = mode;
      expect(await store.get('k', 'db')).toBeUndefined();
      expect(errors).toEqual([[boom, 'get']]);
    });

    it(`a put that fails (${mode}) is "not stored"`, async () => {
      const { faulty, store, errors } = setup();
      const snap = store.snapshot('app', ['t']) as VersionSnapshot;
      faulty.failing.add('put');
      faulty.mode = mode;
      expect(await store.put(entry('k', snap), 0)).toBe(false);
      expect(errors.map((e) => e[1])).toEqual(['put']);
    });

    it(`a snapshot that fails (${mode}) yields one no put can use`, async () => {
      const { faulty, store } = setup();
      faulty.failing.add('snapshot');
      faulty.mode = mode;
      const snap = await store.snapshot('app', ['t']);
      faulty.mode = 'ok';
      expect(store.put(entry('k', snap), 0)).toBe(false);
    });

    it(`a failed bump (${mode}) makes every get miss until a bumpAll succeeds`, async () => {
      const { faulty, store, errors } = setup({ retryMs: 60_000 });
      const snap = store.snapshot('app', ['users']) as VersionSnapshot;
      store.put(entry('k', snap), 0);
      faulty.failing.add('bump').add('bumpAll');
      faulty.mode = mode;
      await store.bump('app', ['users']);
      expect(errors.map((e) => e[1])).toEqual(['bump']);
      expect(store.isUnsure).toBe(true);
      // The inner store still holds a "current" pre-write entry: it must not be served.
      expect(faulty.inner.get('k')).toBeDefined();
      expect(store.get('k', 'db')).toBeUndefined();
      expect(store.put(entry('k2', store.snapshot('app', ['users']) as VersionSnapshot), 0)).toBe(false);
      // The next bump is escalated to bumpAll; it lands, and the old entry is stale for good.
      faulty.mode = 'ok';
      await store.bump('app', ['other']);
      expect(faulty.calls.at(-1)).toBe('bumpAll');
      expect(store.isUnsure).toBe(false);
      expect(store.get('k', 'db')).toBeUndefined();
    });
  }

  it('an unsure wrapper retries bumpAll from gets, at most once per retryMs', () => {
    let now = 0;
    const faulty = new Faulty();
    const store = new FailOpenStore(faulty, { onError: () => {}, retryMs: 1000, now: () => now });
    faulty.failing.add('bumpDatabase').add('bumpAll');
    faulty.mode = 'throw';
    store.bumpDatabase('app');
    faulty.calls = [];
    store.get('a', 'db');
    store.get('b', 'db');
    expect(faulty.calls).toEqual(['bumpAll']);
    expect(store.isUnsure).toBe(true);
    now = 1000;
    faulty.mode = 'ok';
    expect(store.get('c', 'db')).toBeUndefined();
    expect(faulty.calls).toEqual(['bumpAll', 'bumpAll']);
    expect(store.isUnsure).toBe(false);
  });

  it('a failed recovery keeps the wrapper unsure', async () => {
    const { faulty, store } = setup();
    faulty.failing.add('bumpAll');
    faulty.mode = 'reject';
    await store.bumpAll();
    expect(store.isUnsure).toBe(true);
    await store.bump('app', ['t']);
    expect(store.isUnsure).toBe(true);
    expect(store.get('k', 'db')).toBeUndefined();
  });

  it('an async answer slower than timeoutMs is a miss with a StoreTimeoutError', async () => {
    const { faulty, store, errors } = setup({ timeoutMs: 5 });
    faulty.failing.add('get');
    faulty.mode = 'hang';
    expect(await store.get('k', 'db')).toBeUndefined();
    expect(errors[0]?.[0]).toBeInstanceOf(StoreTimeoutError);
  });

  it('a bump slower than timeoutMs counts as lost', async () => {
    const { faulty, store } = setup({ timeoutMs: 5 });
    faulty.failing.add('bump');
    faulty.mode = 'hang';
    await store.bump('app', ['t']);
    expect(store.isUnsure).toBe(true);
  });

  it('usage and close never throw', async () => {
    const { faulty, store, errors } = setup();
    faulty.failing.add('usage').add('close');
    faulty.mode = 'throw';
    expect(store.usage()).toEqual({ entries: 0, bytes: 0, evictions: 0 });
    await expect(store.close()).resolves.toBeUndefined();
    expect(errors.map((e) => e[1])).toEqual(['usage', 'close']);
  });

  it('an onError that throws does not turn a store failure into a crash', () => {
    const faulty = new Faulty();
    const store = new FailOpenStore(faulty, {
      onError: () => {
        throw new Error('logger broke');
      },
    });
    faulty.failing.add('get');
    faulty.mode = 'throw';
    expect(store.get('k', 'db')).toBeUndefined();
  });
});
