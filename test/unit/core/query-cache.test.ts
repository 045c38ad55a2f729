// QueryCache end to end over a MemoryStore and a stub classifier (a plain
// object answering analyse() from a table): what a session sees.

import { pino } from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import type { CacheEntry, Store, VersionSnapshot } from '../../../src/cache/store.js';
import type { Config } from '../../../src/config/schema.js';
import { QueryCache } from '../../../src/core/query-cache.js';
import type { Analysis, CacheDecision, Decision } from '../../../src/core/types.js';
import { analysis, SCOPE, session, table, write } from './build.js';

const log = pino({ level: 'silent' });

function config(over: Partial<Config['cache']> = {}, rules: Config['rules'] = []): Config {
  return {
    file: null,
    listeners: [],
    cache: {
      store: 'memory',
      maxMemoryBytes: 1 << 20,
      maxEntrySizeBytes: 1024,
      defaultTtlMs: 60_000,
      inTransactions: false,
      redis: { url: 'redis://127.0.0.1:6379', nodes: null, keyPrefix: 'sqlcached', commandTimeoutMs: 250 },
      ...over,
    },
    rules,
    dependencies: { refreshMs: 30_000, edges: [] },
    admin: { listen: { host: '127.0.0.1', port: 9090 }, token: null, metricsTableLimit: 100 },
    reload: { watch: false },
    log: { level: 'silent', pretty: false },
  };
}

const statements: Record<string, Analysis> = {
  'SELECT * FROM users WHERE id = 1': analysis(),
  'SELECT * FROM orders': analysis({ reads: ['orders'] }, { shape: 'SELECT * FROM orders', keyText: 'SELECT * FROM orders' }),
  'UPDATE users SET x = 1': write(['users']),
  'CALL p()': write([], { kind: 'other', writesUnknown: true }),
  'UPDATE not_looked_up SET a = 1': write(['not_looked_up']),
};
const classifier = {
  analyse(_dialect: string, sql: string): Analysis {
    const a = statements[sql];
    if (a === undefined) throw new Error(`no fixture for ${sql}`);
    return a;
  },
};

let qc: QueryCache;
let store: MemoryStore;
beforeEach(() => {
  store = new MemoryStore({ maxMemoryBytes: 1 << 20 });
  qc = new QueryCache({ config: config(), store, classifier, log });
  qc.catalog.learnRelations(SCOPE, [table('users'), table('orders')]);
});

function cacheDecision(sql: string): CacheDecision {
  const d = qc.decide(qc.analyse('postgres', sql), session());
  if (d.action !== 'cache') throw new Error(`expected cache, got ${d.reason}`);
  return d;
}

/** A miss, the way a session does it: snapshot, (upstream), fill. */
function readThrough(sql: string, rows: string): { d: CacheDecision; key: string } {
  const d = cacheDecision(sql);
  const key = qc.key(session(), 'simple', qc.analyse('postgres', sql).shaped.keyText, '');
  expect(qc.lookup(d, key)).toBeUndefined();
  const snap = qc.snapshot(d);
  if (snap instanceof Promise) throw new Error('memory store answers synchronously');
  qc.fill(d, key, snap, null, Buffer.from(rows));
  return { d, key };
}

describe('QueryCache', () => {
  it('a repeated read is answered from cache, synchronously, with the stored bytes', () => {
    const { d, key } = readThrough('SELECT * FROM users WHERE id = 1', 'row1');
    const hit = qc.lookup(d, key);
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as CacheEntry).body.toString()).toBe('row1');
  });

  it('a write through the proxy makes the next read fresh', () => {
    const { d, key } = readThrough('SELECT * FROM users WHERE id = 1', 'old');
    const w = qc.decide(qc.analyse('postgres', 'UPDATE users SET x = 1'), session());
    if (w.action !== 'bypass') throw new Error('a write is never cached');
    qc.afterWrite('127.0.0.1:5432', 'app', w.writes, w.writesUnknown, false);
    expect(qc.lookup(d, key)).toBeUndefined();
  });

  it('a write that lands while a read is upstream keeps the read out of the cache', () => {
    const d = cacheDecision('SELECT * FROM users WHERE id = 1');
    const key = qc.key(session(), 'simple', 'SELECT * FROM users WHERE id = 1', '');
    const snap = qc.snapshot(d) as Exclude<ReturnType<QueryCache['snapshot']>, Promise<unknown>>;
    qc.afterWrite('127.0.0.1:5432', 'app', ['users'], false, false);
    qc.fill(d, key, snap, null, Buffer.from('pre-write rows'));
    expect(qc.lookup(d, key)).toBeUndefined();
    expect(qc.usage().entries).toBe(0);
  });

  it('a write of unknown tables invalidates the database and forgets its catalog facts', () => {
    const { d, key } = readThrough('SELECT * FROM orders', 'o');
    const w = qc.decide(qc.analyse('postgres', 'CALL p()'), session()) as Extract<Decision, { action: 'bypass' }>;
    expect(w.writesUnknown).toBe(true);
    // CALL may run DDL: the session passes it as such (postgres/session.ts writesOf).
    expect(w.catalogMayChange).toBe(true);
    qc.afterWrite('127.0.0.1:5432', 'app', w.writes, w.writesUnknown, w.catalogMayChange === true);
    expect(qc.lookup(d, key)).toBeUndefined();
    expect(qc.catalog.relation(SCOPE, { schema: null, name: 'orders' })).toBeUndefined();
  });

  it('a write unknown only because its table was not looked up yet invalidates the database but keeps the catalog facts', () => {
    const { d, key } = readThrough('SELECT * FROM orders', 'o');
    const w = qc.decide(qc.analyse('postgres', 'UPDATE not_looked_up SET a = 1'), session()) as Extract<Decision, { action: 'bypass' }>;
    expect(w.writesUnknown).toBe(true);
    expect(w.catalogMayChange).toBeUndefined();
    qc.afterWrite('127.0.0.1:5432', 'app', w.writes, w.writesUnknown, w.catalogMayChange === true);
    expect(qc.lookup(d, key)).toBeUndefined();
    expect(qc.catalog.relation(SCOPE, { schema: null, name: 'orders' })).toBeDefined();
  });

  it('DDL naming no table invalidates the whole database', () => {
    const { d, key } = readThrough('SELECT * FROM orders', 'o');
    qc.afterWrite('127.0.0.1:5432', 'app', [], false, true);
    expect(qc.lookup(d, key)).toBeUndefined();
  });

  it('the same statement under another user, database or setting is a different key', () => {
    const sql = 'SELECT * FROM users WHERE id = 1';
    const k = qc.key(session(), 'simple', sql, '');
    expect(qc.key(session({ user: 'bob' }), 'simple', sql, '')).not.toBe(k);
    expect(qc.key(session({ database: 'app2' }), 'simple', sql, '')).not.toBe(k);
    expect(qc.key(session({ contextKey: 'TimeZone=Europe/Paris' }), 'simple', sql, '')).not.toBe(k);
    expect(qc.key(session(), 'extended:binary', sql, '')).not.toBe(k);
  });

  it('TTL is decided at lookup with the rules in force now, for entries already stored', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const { key } = readThrough('SELECT * FROM users WHERE id = 1', 'r');
      vi.setSystemTime(1_000_000 + 20_000);
      expect(qc.lookup(cacheDecision('SELECT * FROM users WHERE id = 1'), key)).toBeDefined();
      qc.reload(config({ defaultTtlMs: 10_000 }));
      const d = cacheDecision('SELECT * FROM users WHERE id = 1');
      expect(d.ttlMs).toBe(10_000);
      expect(qc.lookup(d, key)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('a reloaded cache: false rule takes effect at once and is counted as a bypass', () => {
    readThrough('SELECT * FROM users WHERE id = 1', 'r');
    qc.reload(config({}, [{ index: 0, tables: ['users'], fingerprint: null, cache: false, ttlMs: null }]));
    const d = qc.decide(qc.analyse('postgres', 'SELECT * FROM users WHERE id = 1'), session());
    expect(d).toMatchObject({ action: 'bypass', reason: 'rule', detail: 'rules[0]' });
    expect(qc.stats.snapshot(qc.usage()).bypass_reasons).toEqual({ rule: 1 });
  });

  it('a reloaded in_transactions applies at once', () => {
    const a = qc.analyse('postgres', 'SELECT * FROM users WHERE id = 1');
    expect(qc.decide(a, session({ inTransaction: true })).action).toBe('bypass');
    qc.reload(config({ inTransactions: true }));
    expect(qc.decide(a, session({ inTransaction: true })).action).toBe('cache');
  });

  it('a result over max_entry_size is not stored', () => {
    const { d, key } = readThrough('SELECT * FROM users WHERE id = 1', 'x'.repeat(1025));
    expect(qc.lookup(d, key)).toBeUndefined();
    expect(qc.usage().entries).toBe(0);
  });

  it('a snapshot of other tables or another database is never used to store a result', () => {
    const d = cacheDecision('SELECT * FROM users WHERE id = 1');
    qc.fill(d, 'k1', store.snapshot('app', ['orders']), null, Buffer.from('r'));
    qc.fill(d, 'k2', store.snapshot('app', []), null, Buffer.from('r'));
    qc.fill(d, 'k3', store.snapshot('app2', ['users']), null, Buffer.from('r'));
    expect(qc.usage().entries).toBe(0);
  });

  it('a negative TTL reads as expired, never as "until invalidated"', () => {
    const { d, key } = readThrough('SELECT * FROM users WHERE id = 1', 'r');
    expect(qc.lookup({ ...d, ttlMs: -1 }, key)).toBeUndefined();
    expect(qc.lookup({ ...d, ttlMs: Number.NaN }, key)).toBeUndefined();
  });

  it('an entry whose key differs from the one asked for is never served', () => {
    const lying: Store = Object.assign(Object.create(store) as Store, {
      get: (k: string) => store.get(k) ?? store.get('other key'),
    });
    const q = new QueryCache({ config: config(), store: lying, classifier, log });
    q.catalog.learnRelations(SCOPE, [table('users')]);
    const d = cacheDecision('SELECT * FROM users WHERE id = 1');
    const snap = store.snapshot('app', ['users']);
    store.put({ key: 'other key', head: null, body: Buffer.from('x'), storedAt: Date.now(), shape: 's', snapshot: snap }, 0);
    expect(q.lookup(d, 'my key')).toBeUndefined();
  });

  it('invalidate by table bumps it in every database seen; by database; all', async () => {
    const a = readThrough('SELECT * FROM users WHERE id = 1', 'r');
    const s2 = session({ database: 'app2', catalogScope: `127.0.0.1:5432\0app2\0p` });
    qc.catalog.learnRelations(s2.catalogScope, [table('users'), table('orders')]);
    const d2 = qc.decide(qc.analyse('postgres', 'SELECT * FROM orders'), s2) as CacheDecision;
    const k2 = qc.key(s2, 'simple', 'SELECT * FROM orders', '');
    qc.fill(d2, k2, qc.snapshot(d2) as VersionSnapshot, null, Buffer.from('o'));
    expect(await qc.invalidate({ table: 'Users' })).toEqual({
      invalidated: ['app.Users', 'app.users', 'app2.Users', 'app2.users'],
    });
    expect(qc.lookup(a.d, a.key)).toBeUndefined();
    expect(qc.lookup(d2, k2)).toBeDefined();
    expect(await qc.invalidate({ database: 'app2' })).toEqual({ invalidated: ['app2.*'] });
    expect(qc.lookup(d2, k2)).toBeUndefined();
    expect(await qc.invalidate({ all: true })).toEqual({ invalidated: ['*'] });
    expect(await qc.invalidate({})).toEqual({ invalidated: [] });
    expect(qc.stats.snapshot(qc.usage()).invalidations).toBe(6);
  });

  it('a store that fails is a miss and a counted store error, never an exception', async () => {
    const broken: Store = {
      kind: 'redis',
      snapshot: () => Promise.reject(new Error('down')),
      get: () => {
        throw new Error('down');
      },
      put: () => Promise.reject(new Error('down')),
      bump: () => Promise.reject(new Error('down')),
      bumpDatabase: () => Promise.reject(new Error('down')),
      bumpAll: () => Promise.reject(new Error('down')),
      usage: () => ({ entries: 0, bytes: 0, evictions: 0 }),
      close: () => Promise.resolve(),
    };
    const q = new QueryCache({ config: config(), store: broken, classifier, log });
    q.catalog.learnRelations(SCOPE, [table('users')]);
    const d = cacheDecision('SELECT * FROM users WHERE id = 1');
    expect(await q.lookup(d, 'k')).toBeUndefined();
    const snap = await q.snapshot(d);
    q.fill(d, 'k', snap, null, Buffer.from('r'));
    await q.afterWrite('127.0.0.1:5432', 'app', ['users'], false, false);
    await new Promise((r) => setTimeout(r, 0));
    // The failed get opens the circuit: the snapshot and the put are not even
    // tried; the bump always is (a write's invalidation is never skipped).
    expect(q.stats.snapshot(q.usage()).store_errors).toBe(2);
    expect(await q.lookup(d, 'k')).toBeUndefined();
  });

  it('hit and miss are left to the session: lookup records neither', () => {
    const { d, key } = readThrough('SELECT * FROM users WHERE id = 1', 'r');
    qc.lookup(d, key);
    const snap = qc.stats.snapshot(qc.usage());
    expect([snap.hits, snap.misses]).toEqual([0, 0]);
  });
});
