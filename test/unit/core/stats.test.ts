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
      'app.users': { hits: 2, misses: 1, invalidations: 0 },
      'app.orders': { hits: 2, misses: 1, invalidations: 0 },
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
        mean_hit_us: 15,
        bytes: 150,
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
        mean_hit_us: 0,
        bytes: 0,
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
    expect(snap.tables['app.users']).toEqual({ hits: 0, misses: 0, invalidations: 1 });
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
});
