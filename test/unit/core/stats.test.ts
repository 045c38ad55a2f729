// Stats: the /stats JSON contract, its arithmetic, and its bounds.

import { describe, expect, it } from 'vitest';
import { Stats } from '../../../src/core/stats.js';
import type { CacheDecision } from '../../../src/core/types.js';

const usage = { entries: 3, bytes: 1234, evictions: 2 };

function cached(shape: string, reads = ['users'], database = 'app'): CacheDecision {
  return { action: 'cache', database, reads, ttlMs: 0, shape, rule: null };
}

describe('Stats', () => {
  it('an empty snapshot has every contract field and a hit ratio of 0', () => {
    let now = 10_000;
    const s = new Stats({ now: () => now });
    now = 12_500;
    expect(s.snapshot(usage)).toEqual({
      hits: 0,
      misses: 0,
      bypasses: 0,
      hit_ratio: 0,
      entries: 3,
      bytes: 1234,
      evictions: 2,
      invalidations: 0,
      stores: 0,
      store_errors: 0,
      uptime_s: 2,
      bypass_reasons: {},
      not_stored: {},
      tables: {},
      queries: [],
      top_saved: [],
      top_misses: [],
      listeners: [],
      history: [],
    });
  });

  it('a miss whose result is not stored is counted apart, not as a second call', () => {
    const s = new Stats();
    const d = cached('SELECT * FROM big', ['big']);
    s.miss(d);
    s.notStored('too-large', d.shape);
    const snap = s.snapshot(usage);
    expect(snap).toMatchObject({ misses: 1, bypasses: 0, not_stored: { 'too-large': 1 } });
    expect(snap.queries[0]).toMatchObject({ calls: 1, misses: 1, bypasses: 0, bypass_reason: 'too-large' });
  });

  it('counts hits, misses and bypasses per query, per table and in total', () => {
    const s = new Stats();
    const d = cached('SELECT * FROM users WHERE id = ?', ['users', 'orders']);
    s.hit(d, 10);
    s.hit(d, 20);
    s.miss(d);
    s.upstreamDone(d.shape, 4, 100, true);
    s.bypass('in-transaction', d.shape);
    s.upstreamDone(d.shape, 8, 50, false);
    s.bypass('volatile-function', 'SELECT now()', 'now()');
    s.storeError();
    const snap = s.snapshot(usage);
    expect(snap).toMatchObject({ hits: 2, misses: 1, bypasses: 2, stores: 1, store_errors: 1 });
    expect(snap.hit_ratio).toBeCloseTo(2 / 3);
    expect(snap.bypass_reasons).toEqual({ 'in-transaction': 1, 'volatile-function': 1 });
    expect(snap.tables).toEqual({
      'app.users': { reads: 3, hits: 2, misses: 1, writes: 0, invalidations: 0 },
      'app.orders': { reads: 3, hits: 2, misses: 1, writes: 0, invalidations: 0 },
    });
    expect(snap.queries).toEqual([
      {
        fingerprint: 'SELECT * FROM users WHERE id = ?',
        calls: 4,
        hits: 2,
        misses: 1,
        bypasses: 1,
        bypass_reason: 'in-transaction',
        detail: null,
        mean_upstream_ms: 6,
        p95_upstream_ms: expect.any(Number) as number, // accuracy: the p95 test below
        mean_hit_us: 15,
        bytes: 150,
        ttl_ms: 0,
        rule: null,
        saved_ms: 2 * (6 - 0.015),
      },
      {
        fingerprint: 'SELECT now()',
        calls: 1,
        hits: 0,
        misses: 0,
        bypasses: 1,
        bypass_reason: 'volatile-function',
        detail: 'now()',
        mean_upstream_ms: 0,
        p95_upstream_ms: 0,
        mean_hit_us: 0,
        bytes: 0,
        ttl_ms: null,
        rule: null,
        saved_ms: 0,
      },
    ]);
  });

  it('invalidations are counted per table, whole databases under db.*', () => {
    const s = new Stats();
    s.invalidate('app', 'users');
    s.invalidate('app', '*');
    s.invalidate('*', '*');
    const snap = s.snapshot(usage);
    expect(snap.invalidations).toBe(3);
    expect(snap.tables['app.users']).toEqual({ reads: 0, hits: 0, misses: 0, writes: 0, invalidations: 1 });
    expect(snap.tables['app.*']?.invalidations).toBe(1);
    expect(snap.tables['*.*']?.invalidations).toBe(1);
  });

  it('queries are sorted by calls, descending, top 100 only', () => {
    const s = new Stats();
    for (let i = 0; i < 150; i++) for (let j = 0; j <= i % 10; j++) s.miss(cached(`q${i}`));
    const q = s.snapshot(usage).queries;
    expect(q).toHaveLength(100);
    for (let i = 1; i < q.length; i++) expect(q[i - 1]!.calls).toBeGreaterThanOrEqual(q[i]!.calls);
    expect(q[0]!.calls).toBe(10);
  });

  it('the per-fingerprint map is bounded and keeps the most called', () => {
    const s = new Stats({ maxShapes: 20 });
    for (let k = 0; k < 100; k++) s.hit(cached('hot'), 1);
    for (let i = 0; i < 1_000; i++) s.bypass('no-table', `SELECT ${i}`);
    const q = s.snapshot(usage).queries;
    expect(q.length).toBeLessThanOrEqual(20);
    expect(q[0]).toMatchObject({ fingerprint: 'hot', calls: 100 });
    // Totals are never dropped with the shapes.
    expect(s.snapshot(usage).bypasses).toBe(1_000);
  });

  it('the per-table map is bounded and keeps the busiest tables', () => {
    const s = new Stats({ maxTables: 10 });
    for (let k = 0; k < 50; k++) s.miss(cached('q', ['busy']));
    for (let i = 0; i < 500; i++) s.invalidate(`db${i % 3}`, `t${i}`);
    const tables = s.snapshot(usage).tables;
    expect(Object.keys(tables).length).toBeLessThanOrEqual(10);
    expect(tables['app.busy']?.misses).toBe(50);
  });

  it('the snapshot is JSON as it is (no Maps, no undefined)', () => {
    const s = new Stats();
    s.hit(cached('q'), 3);
    s.bypass('rule', 'q', 'rules[0]');
    const snap = s.snapshot(usage);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it('per listener: hits, misses, bypasses and hit/miss latency histograms; connections as the listener reports them', () => {
    const s = new Stats();
    const pg = s.listener('pg', 'postgres');
    const my = s.listener('mysql', 'mysql');
    expect(s.listener('pg', 'postgres')).toBe(pg);
    pg.connections = () => ({ clients: 3, upstreams: 2 });
    const d = cached('q');
    s.hit(d, 8, pg); // 8 µs: the first bucket (≤ 10 µs)
    s.hit(d, 40, pg); // 40 µs: ≤ 50 µs
    s.miss(d, my);
    s.upstreamDone('q', 3, 10, true, my); // 3 ms: ≤ 5 ms
    s.bypass('rule', 'q', 'rules[0]', my);
    expect(pg.hitLatency.count).toBe(2);
    expect(pg.hitLatency.sum).toBeCloseTo(48e-6);
    expect(pg.hitLatency.cumulative().slice(0, 4)).toEqual([1, 1, 2, 2]);
    expect(my.missLatency.count).toBe(1);
    expect(my.missLatency.cumulative()[7]).toBe(0); // ≤ 2.5 ms
    expect(my.missLatency.cumulative()[8]).toBe(1); // ≤ 5 ms
    expect(s.snapshot(usage).listeners).toEqual([
      { name: 'pg', protocol: 'postgres', clients: 3, upstreams: 2, hits: 2, misses: 0, bypasses: 0 },
      { name: 'mysql', protocol: 'mysql', clients: 0, upstreams: 0, hits: 0, misses: 1, bypasses: 1 },
    ]);
  });

  it('per table: reads include bypassed reads; writes are counted apart from invalidations', () => {
    const s = new Stats();
    s.miss(cached('q', ['users']));
    s.bypass('in-transaction', 'q', undefined, null, ['users'], 'app');
    s.write('app', ['users']);
    s.invalidate('app', 'users');
    s.invalidate('app', 'users');
    expect(s.snapshot(usage).tables['app.users']).toEqual({ reads: 2, hits: 0, misses: 1, writes: 1, invalidations: 2 });
  });

  it('the TTL and rule of the last cached read show on its shape; top_saved and top_misses rank by their measure', () => {
    const s = new Stats();
    const slow = { ...cached('slow'), ttlMs: 5000, rule: 'rules[1]' };
    s.miss(slow);
    s.upstreamDone('slow', 20, 1, true);
    for (let i = 0; i < 3; i++) s.hit(slow, 10);
    const fast = cached('fast');
    for (let i = 0; i < 5; i++) s.miss(fast);
    for (let i = 0; i < 5; i++) s.upstreamDone('fast', 1, 1, true);
    s.hit(fast, 10);
    const snap = s.snapshot(usage);
    expect(snap.queries.find((q) => q.fingerprint === 'slow')).toMatchObject({ ttl_ms: 5000, rule: 'rules[1]', saved_ms: 3 * (20 - 0.01) });
    expect(snap.top_saved.map((q) => q.fingerprint)).toEqual(['slow', 'fast']);
    expect(snap.top_misses.map((q) => q.fingerprint)).toEqual(['fast', 'slow']);
  });

  it('p95 upstream time is an upper estimate within a third of the true value', () => {
    const s = new Stats();
    const d = cached('q');
    for (let i = 1; i <= 100; i++) {
      s.miss(d);
      s.upstreamDone('q', i, 0, true); // 1..100 ms: p95 = 95 ms
    }
    const p95 = s.snapshot(usage).queries[0]!.p95_upstream_ms;
    expect(p95).toBeGreaterThanOrEqual(95);
    expect(p95).toBeLessThanOrEqual(95 * (4 / 3));
  });

  it('history keeps cumulative samples, oldest first, bounded', () => {
    let now = 0;
    const s = new Stats({ now: () => now, maxSamples: 3 });
    for (let i = 1; i <= 5; i++) {
      now = i * 1000;
      s.hit(cached('q'), 1);
      s.sample();
    }
    expect(s.snapshot(usage).history).toEqual([
      { t: 3000, hits: 3, misses: 0, bypasses: 0, invalidations: 0 },
      { t: 4000, hits: 4, misses: 0, bypasses: 0, invalidations: 0 },
      { t: 5000, hits: 5, misses: 0, bypasses: 0, invalidations: 0 },
    ]);
  });

  it('metric labels for invalidated tables are capped; the rest share __other__ and nothing is lost', () => {
    const s = new Stats({ maxTableLabels: 2 });
    for (const t of ['a', 'b', 'c', 'd', 'a']) s.invalidate('app', t);
    const labels = [...s.invalidationsByTable.values()];
    expect(labels).toEqual([
      { database: 'app', table: 'a', count: 2 },
      { database: 'app', table: 'b', count: 1 },
      { database: '__other__', table: '__other__', count: 2 },
    ]);
  });
});
