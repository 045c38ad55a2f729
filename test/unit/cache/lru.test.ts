// Lru: capacity is a weight (bytes for the memory store), eviction takes the
// least recently used first.

import { describe, expect, it } from 'vitest';
import { Lru } from '../../../src/cache/lru.js';

describe('Lru', () => {
  it('never holds more weight than its capacity', () => {
    const lru = new Lru<string, number>({ capacity: 100 });
    for (let i = 0; i < 50; i++) {
      lru.set(`k${i}`, i, 7 + (i % 13));
      expect(lru.weight).toBeLessThanOrEqual(100);
    }
    let sum = 0;
    for (const k of lru.keys()) sum += 7 + (Number(k.slice(1)) % 13);
    expect(lru.weight).toBe(sum);
  });

  it('evicts the least recently used first, and a get makes an entry recent', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, string>({ capacity: 30, onEvict: (k) => evicted.push(k) });
    lru.set('a', 'A', 10);
    lru.set('b', 'B', 10);
    lru.set('c', 'C', 10);
    expect(lru.get('a')).toBe('A');
    lru.set('d', 'D', 10);
    expect(evicted).toEqual(['b']);
    expect([...lru.keys()]).toEqual(['c', 'a', 'd']);
    expect(lru.evictions).toBe(1);
  });

  it('evicts as many entries as a heavy newcomer needs, oldest first', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>({ capacity: 100, onEvict: (k) => evicted.push(k) });
    for (const k of ['a', 'b', 'c', 'd']) lru.set(k, 0, 25);
    lru.set('big', 0, 60);
    expect(evicted).toEqual(['a', 'b', 'c']);
    expect(lru.entries).toBe(2);
    expect(lru.weight).toBe(85);
  });

  it('peek does not change recency', () => {
    const lru = new Lru<string, number>({ capacity: 2 });
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.peek('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.has('a')).toBe(false);
    expect(lru.has('b')).toBe(true);
  });

  it('refuses a value heavier than the whole capacity and evicts nothing for it', () => {
    const lru = new Lru<string, number>({ capacity: 10 });
    lru.set('a', 1, 5);
    expect(lru.set('huge', 2, 11)).toBe(false);
    expect(lru.has('huge')).toBe(false);
    expect(lru.has('a')).toBe(true);
    expect(lru.evictions).toBe(0);
  });

  it('after a refused replacement the key holds nothing, never the old value', () => {
    const lru = new Lru<string, number>({ capacity: 10 });
    lru.set('a', 1, 5);
    expect(lru.set('a', 2, 11)).toBe(false);
    expect(lru.get('a')).toBeUndefined();
    expect(lru.weight).toBe(0);
  });

  it('replacing a key re-weighs it and is not an eviction', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>({ capacity: 10, onEvict: (k) => evicted.push(k) });
    lru.set('a', 1, 4);
    lru.set('a', 2, 8);
    expect(lru.get('a')).toBe(2);
    expect(lru.weight).toBe(8);
    expect(lru.entries).toBe(1);
    expect(evicted).toEqual([]);
  });

  it('delete and clear release weight without counting evictions', () => {
    const lru = new Lru<string, number>({ capacity: 10 });
    lru.set('a', 1, 4);
    lru.set('b', 1, 4);
    expect(lru.delete('a')).toBe(true);
    expect(lru.delete('a')).toBe(false);
    expect(lru.weight).toBe(4);
    lru.clear();
    expect(lru.weight).toBe(0);
    expect(lru.entries).toBe(0);
    expect(lru.evictions).toBe(0);
  });

  it('rejects a negative or NaN capacity or weight', () => {
    expect(() => new Lru({ capacity: -1 })).toThrow(RangeError);
    const lru = new Lru<string, number>({ capacity: 10 });
    expect(() => lru.set('a', 1, Number.NaN)).toThrow(RangeError);
  });
});
