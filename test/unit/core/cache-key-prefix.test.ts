// cacheKeyPrefix + cacheKeyWithParams: the hot path's way of building a key
// must give exactly cacheKey's string, so both meet in every store.

import { describe, expect, it } from 'vitest';
import { cacheKey, cacheKeyPrefix, cacheKeyWithParams, decodeCacheKey, type CacheKeyParts } from '../../../src/core/cache-key.js';

const base: CacheKeyParts = {
  dialect: 'postgres',
  upstream: '127.0.0.1:5432',
  database: 'app',
  user: 'alice',
  contextKey: 'TimeZone=UTC',
  mode: 'E',
  keyText: 'SELECT * FROM users WHERE id = $1',
  params: '23\u0000\u0000\u0000\u0000\u0001\u0000\u0000\u0000\u00017\u0000\u0000',
};

describe('cacheKeyPrefix', () => {
  it('prefix + params part is exactly the whole key, for adversarial parts too', () => {
    const odd = ['', '1', ':', '1:', ':1', '\u0000', 'żółw 🐢', '11:ab'];
    for (const keyText of odd) {
      for (const params of odd) {
        for (const contextKey of odd) {
          const p = { ...base, keyText, params, contextKey };
          const { params: _omit, ...rest } = p;
          expect(cacheKeyWithParams(cacheKeyPrefix(rest), params)).toBe(cacheKey(p));
        }
      }
    }
  });

  it('a key built from a prefix still decodes to every part, params included', () => {
    const { params, ...rest } = base;
    expect(decodeCacheKey(cacheKeyWithParams(cacheKeyPrefix(rest), params))).toEqual(Object.values(base));
  });

  it('every part before the params is in the prefix: changing one changes the key', () => {
    const { params, ...rest } = base;
    const k = cacheKeyWithParams(cacheKeyPrefix(rest), params);
    for (const f of Object.keys(rest) as Array<keyof typeof rest>) {
      const changed = { ...rest, [f]: `${rest[f]}x` } as typeof rest;
      expect(cacheKeyWithParams(cacheKeyPrefix(changed), params), f).not.toBe(k);
    }
    expect(cacheKeyWithParams(cacheKeyPrefix(rest), `${params}x`)).not.toBe(k);
  });
});
