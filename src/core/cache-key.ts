// The cache key: every part that decides which bytes the database would
// answer, joined into one string that two different tuples can never share.
// Each part is length-prefixed (`${length}:${part}`), so the string decodes
// back to exactly one tuple whatever characters the parts contain.

import type { Dialect } from './types.js';

export interface CacheKeyParts {
  dialect: Dialect;
  /** host:port of the database server. */
  upstream: string;
  database: string;
  user: string;
  /** Serialised session settings that shape output. */
  contextKey: string;
  /** How the result was asked for: simple query, extended protocol with its
   * result formats, MySQL text or binary… (the protocol layer decides). */
  mode: string;
  /** The statement with comments removed, literals kept. */
  keyText: string;
  /** Serialised parameter types and values (empty for simple query). */
  params: string;
}

// Hot path (every lookup): one template literal, the only allocation is the key.
export function cacheKey(p: CacheKeyParts): string {
  return (
    `${p.dialect.length}:${p.dialect}${p.upstream.length}:${p.upstream}${p.database.length}:${p.database}` +
    `${p.user.length}:${p.user}${p.contextKey.length}:${p.contextKey}${p.mode.length}:${p.mode}` +
    `${p.keyText.length}:${p.keyText}${p.params.length}:${p.params}`
  );
}

/**
 * Everything of cacheKey(p) before the params part: the same for every
 * execution of one statement in one session state, so a protocol layer can
 * build it once and finish each key with cacheKeyWithParams. Together they
 * make exactly cacheKey's string (the unit tests check it), so keys built
 * either way match each other and every store, shared ones included.
 *
 * Returned flat: a key appended to it is then two pieces, not a rope of
 * sixteen, when the store's Map flattens and hashes it.
 */
export function cacheKeyPrefix(p: Omit<CacheKeyParts, 'params'>): string {
  const prefix =
    `${p.dialect.length}:${p.dialect}${p.upstream.length}:${p.upstream}${p.database.length}:${p.database}` +
    `${p.user.length}:${p.user}${p.contextKey.length}:${p.contextKey}${p.mode.length}:${p.mode}` +
    `${p.keyText.length}:${p.keyText}`;
  // ToNumber flattens a V8 cons string in place (the flatstr trick); the
  // result (NaN: a prefix starts with a length and a colon) is not wanted.
  void Number(prefix);
  return prefix;
}

/** cacheKey's string from cacheKeyPrefix(p) and p.params. */
export function cacheKeyWithParams(prefix: string, params: string): string {
  return `${prefix}${params.length}:${params}`;
}

/** The inverse of cacheKey (tests, debugging); throws on a malformed key. */
export function decodeCacheKey(key: string): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < key.length) {
    const colon = key.indexOf(':', at);
    const digits = key.slice(at, colon);
    if (colon < 0 || !/^(0|[1-9][0-9]*)$/.test(digits)) throw new Error(`malformed cache key at ${at}`);
    const len = Number(digits);
    if (colon + 1 + len > key.length) throw new Error(`malformed cache key at ${at}`);
    parts.push(key.slice(colon + 1, colon + 1 + len));
    at = colon + 1 + len;
  }
  return parts;
}
