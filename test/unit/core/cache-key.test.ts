// cacheKey: distinct tuples never share a key, whatever the parts contain.

import { describe, expect, it } from 'vitest';
import { cacheKey, decodeCacheKey, type CacheKeyParts } from '../../../src/core/cache-key.js';

const base: CacheKeyParts = {
  dialect: 'postgres',
  upstream: '127.0.0.1:5432',
  database: 'app',
  user: 'alice',
  contextKey: 'TimeZone=UTC',
  mode: 'simple',
  keyText: 'SELECT * FROM users WHERE id = 1',
  params: '',
};
const FIELDS = Object.keys(base) as Array<keyof CacheKeyParts>;

describe('cacheKey', () => {
  it('decodes back to exactly the tuple it was built from', () => {
    expect(decodeCacheKey(cacheKey(base))).toEqual(FIELDS.map((f) => base[f]));
  });

  it('moving a boundary between two adjacent parts changes the key', () => {
    const a = cacheKey({ ...base, database: 'app', user: 'alice' });
    const b = cacheKey({ ...base, database: 'appa', user: 'lice' });
    const c = cacheKey({ ...base, keyText: 'SELECT 1', params: '' });
    const d = cacheKey({ ...base, keyText: 'SELECT ', params: '1' });
    expect(a).not.toBe(b);
    expect(c).not.toBe(d);
  });

  it('parts that imitate the encoding cannot forge another tuple', () => {
    const a = cacheKey({ ...base, database: 'x', user: '1:y' });
    const b = cacheKey({ ...base, database: 'x1:y', user: '' });
    const c = cacheKey({ ...base, database: `x5:alice`, user: '' });
    expect(new Set([a, b, c]).size).toBe(3);
    expect(decodeCacheKey(b)[2]).toBe('x1:y');
  });

  it('adversarial tuples built from a small alphabet never collide', () => {
    // Every assignment of short strings over {'', '1', ':', '1:', ':1', '\0', 'a'} to three
    // adjacent parts: if two distinct tuples shared a key, the Set would be smaller.
    const alphabet = ['', '1', ':', '1:', ':1', '\0', 'a', '11:', '2:ab'];
    const keys = new Map<string, string>();
    for (const user of alphabet) {
      for (const contextKey of alphabet) {
        for (const mode of alphabet) {
          const tuple = JSON.stringify([user, contextKey, mode]);
          const key = cacheKey({ ...base, user, contextKey, mode });
          expect(keys.get(key) ?? tuple).toBe(tuple);
          keys.set(key, tuple);
        }
      }
    }
    expect(keys.size).toBe(alphabet.length ** 3);
  });

  it('every part is in the key: changing any one of them changes it', () => {
    const k = cacheKey(base);
    for (const f of FIELDS) {
      const changed = { ...base, [f]: `${base[f]}x` } as CacheKeyParts;
      expect(cacheKey(changed), f).not.toBe(k);
    }
  });

  it('non-ASCII text is length-prefixed in the same units it is sliced in', () => {
    const parts = { ...base, keyText: "SELECT 'żółw 🐢'", params: 'é' };
    expect(decodeCacheKey(cacheKey(parts))).toEqual(FIELDS.map((f) => parts[f]));
  });

  it('a malformed key is refused by the decoder', () => {
    expect(() => decodeCacheKey('5:ab')).toThrow(/malformed/);
    expect(() => decodeCacheKey('01:a')).toThrow(/malformed/);
    expect(() => decodeCacheKey('x')).toThrow(/malformed/);
  });
});
