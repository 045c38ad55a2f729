// MemoryStore: entries guarded by table versions, bounded by bytes, aged
// lazily. Interleavings of snapshot / put / bump are written out in order.

import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import type { CacheEntry, VersionSnapshot } from '../../../src/cache/store.js';

function entry(key: string, snapshot: VersionSnapshot, body = 'rows'): CacheEntry {
  return { key, head: null, body: Buffer.from(body), storedAt: 0, shape: 'SELECT ?', snapshot };
}

function store(maxMemoryBytes = 1 << 20): MemoryStore {
  return new MemoryStore({ maxMemoryBytes });
}

describe('MemoryStore versions', () => {
  it('a result put under current versions is returned', () => {
    const s = store();
    const e = entry('k', s.snapshot('app', ['users']));
    expect(s.put(e, 0)).toBe(true);
    expect(s.get('k')).toBe(e);
  });

  it('a write during a read refuses the put (snapshot → bump → put)', () => {
    const s = store();
    const snap = s.snapshot('app', ['users']);
    s.bump('app', ['users']);
    expect(s.put(entry('k', snap), 0)).toBe(false);
    expect(s.get('k')).toBeUndefined();
  });

  it('a write after the put makes the entry stale and it is never returned again', () => {
    const s = store();
    s.put(entry('k', s.snapshot('app', ['users', 'orders'])), 0);
    s.bump('app', ['orders']);
    expect(s.get('k')).toBeUndefined();
    expect(s.usage().entries).toBe(0);
  });

  it('a write to another table or another database leaves the entry current', () => {
    const s = store();
    const e = entry('k', s.snapshot('app', ['users']));
    s.put(e, 0);
    s.bump('app', ['orders']);
    s.bump('other', ['users']);
    s.bumpDatabase('other');
    expect(s.get('k')).toBe(e);
  });

  it('bumpDatabase makes every entry of that database stale, whatever its tables', () => {
    const s = store();
    s.put(entry('a', s.snapshot('app', ['users'])), 0);
    s.put(entry('b', s.snapshot('app', ['never_bumped'])), 0);
    const other = entry('c', s.snapshot('other', ['users']));
    s.put(other, 0);
    s.bumpDatabase('app');
    expect(s.get('a')).toBeUndefined();
    expect(s.get('b')).toBeUndefined();
    expect(s.get('c')).toBe(other);
  });

  it('bumpAll makes every entry stale in every database', () => {
    const s = store();
    s.put(entry('a', s.snapshot('app', ['users'])), 0);
    s.put(entry('b', s.snapshot('other', ['t'])), 0);
    s.bumpAll();
    expect(s.get('a')).toBeUndefined();
    expect(s.get('b')).toBeUndefined();
  });

  it('a snapshot taken before bumpAll cannot be put after it, even for a table first seen later', () => {
    const s = store();
    const before = s.snapshot('app', ['brand_new']);
    s.bumpAll();
    expect(s.put(entry('k', before), 0)).toBe(false);
  });

  it('a table first seen after bumpAll is cached under the new epoch and still invalidated by its bump', () => {
    const s = store();
    s.bumpAll();
    const e = entry('k', s.snapshot('app', ['first_seen']));
    expect(s.put(e, 0)).toBe(true);
    expect(s.get('k')).toBe(e);
    s.bump('app', ['first_seen']);
    expect(s.get('k')).toBeUndefined();
  });

  it('a snapshot taken before clear() is refused after it', () => {
    const s = store();
    const snap = s.snapshot('app', ['users']);
    s.clear();
    expect(s.put(entry('k', snap), 0)).toBe(false);
  });

  it('a snapshot whose versions were tampered with or truncated never matches', () => {
    const s = store();
    const snap = s.snapshot('app', ['users']);
    expect(s.put(entry('a', { ...snap, versions: [0, 0] }), 0)).toBe(false);
    expect(s.put(entry('b', { ...snap, versions: [0, 0, 1] }), 0)).toBe(false);
    expect(s.put(entry('c', { ...snap, database: 'other', versions: [0, 0, 0] }), 0)).toBe(true);
  });

  it('forgetting counters past maxTables makes every older entry stale', () => {
    const s = new MemoryStore({ maxMemoryBytes: 1 << 20, maxTables: 3 });
    s.bump('app', ['t1']);
    s.put(entry('k', s.snapshot('app', ['t1', 'zzz'])), 0);
    s.bump('app', ['t2', 't3', 't4']);
    expect(s.get('k')).toBeUndefined();
    const e = entry('k2', s.snapshot('app', ['t1']));
    expect(s.put(e, 0)).toBe(true);
    expect(s.get('k2')).toBe(e);
  });
});

describe('MemoryStore memory and age', () => {
  it('weighs an entry as key + head + body + overhead and evicts by bytes', () => {
    const s = store(1000);
    const snap = s.snapshot('app', ['t']);
    const body = 'x'.repeat(300);
    for (let i = 0; i < 5; i++) {
      s.put({ key: `key${i}`, head: Buffer.from('hh'), body: Buffer.from(body), storedAt: 0, shape: 's', snapshot: snap }, 0);
    }
    const u = s.usage();
    expect(u.bytes).toBeLessThanOrEqual(1000);
    expect(u.entries).toBe(1000 / (4 + 2 + 300 + 200) | 0);
    expect(u.evictions).toBe(5 - u.entries);
    expect(s.get('key0')).toBeUndefined();
    expect(s.get('key4')).toBeDefined();
  });

  it('refuses an entry larger than max_memory', () => {
    const s = store(500);
    expect(s.put(entry('k', s.snapshot('app', ['t']), 'x'.repeat(400)), 0)).toBe(false);
    expect(s.usage().entries).toBe(0);
  });

  it('drops an entry at its maxAgeMs, lazily on get', () => {
    let now = 1_000;
    const s = new MemoryStore({ maxMemoryBytes: 1 << 20, now: () => now });
    const e = entry('k', s.snapshot('app', ['t']));
    s.put(e, 50);
    now = 1_049;
    expect(s.get('k')).toBe(e);
    now = 1_050;
    expect(s.get('k')).toBeUndefined();
    expect(s.usage().entries).toBe(0);
  });

  it('maxAgeMs 0 keeps an entry until invalidated', () => {
    let now = 0;
    const s = new MemoryStore({ maxMemoryBytes: 1 << 20, now: () => now });
    const e = entry('k', s.snapshot('app', ['t']));
    s.put(e, 0);
    now = 1e12;
    expect(s.get('k')).toBe(e);
  });

  it('keys that differ only slightly are different entries', () => {
    const s = store();
    const snap = s.snapshot('app', ['t']);
    const a = entry('5:SELECT 1', snap, 'a');
    const b = entry('5:SELECT 1 ', snap, 'b');
    s.put(a, 0);
    s.put(b, 0);
    expect(s.get('5:SELECT 1')).toBe(a);
    expect(s.get('5:SELECT 1 ')).toBe(b);
    expect(s.get('5:select 1')).toBeUndefined();
  });

  it('answers synchronously, so a hit never awaits', () => {
    const s = store();
    const snap = s.snapshot('app', ['t']);
    expect(snap).not.toBeInstanceOf(Promise);
    expect(s.put(entry('k', snap), 0)).not.toBeInstanceOf(Promise);
    expect(s.get('k')).not.toBeInstanceOf(Promise);
    expect(s.kind).toBe('memory');
  });
});
