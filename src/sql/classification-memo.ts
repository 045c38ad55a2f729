// A bounded LRU of classifications keyed by dialect + shape: ORMs send a few
// hundred shapes with endless literal values, so the parser runs once per
// shape. Bounded by count (entries are small); a Map keeps insertion order,
// so the first key is the least recently used.

import type { Classification } from '../core/types.js';

export class ClassificationMemo {
  private readonly entries = new Map<string, Classification>();
  hits = 0;
  misses = 0;

  constructor(readonly maxEntries = 10_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`memo size must be a positive integer, got ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Counts a hit or a miss; a hit becomes the most recently used. */
  get(key: string): Classification | undefined {
    const found = this.entries.get(key);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, found);
    return found;
  }

  set(key: string, value: Classification): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
