// A bounded LRU of classifications keyed by shape: ORMs send a few hundred
// shapes with endless literal values, so the parser runs once per shape.
// Bounded by count (entries are small). A Map keeps insertion order, so its
// first key is the least recently refreshed one.
//
// Hot path: a hit is one Map.get. Moving an entry to the back on every hit
// (delete + set) doubled the cost of a hit; instead an entry is refreshed
// only once it has drifted into the older half of the map, which keeps every
// entry used within the last maxEntries/2 insertions safe from eviction.

import type { Classification } from '../core/types.js';

interface Entry {
  value: Classification;
  /** Insertion sequence number when last (re)inserted. */
  seq: number;
}

export class ClassificationMemo {
  private readonly entries = new Map<string, Entry>();
  private seq = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxEntries = 10_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`memo size must be a positive integer, got ${maxEntries}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** Counts a hit or a miss. */
  get(key: string): Classification | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (this.seq - entry.seq >= this.maxEntries / 2) {
      this.entries.delete(key);
      entry.seq = ++this.seq;
      this.entries.set(key, entry);
    }
    return entry.value;
  }

  set(key: string, value: Classification): void {
    this.entries.delete(key);
    this.entries.set(key, { value, seq: ++this.seq });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
