// CatalogMemo: facts per scope, expiring so DDL behind the proxy is seen,
// forgotten after DDL through it, bounded by count.

import { describe, expect, it } from 'vitest';
import { CatalogMemo } from '../../../src/core/catalog.js';
import { classification, SCOPE, table } from './build.js';

const OTHER_PATH = '127.0.0.1:5432\0app\0tenant1, public';
const OTHER_DB = '127.0.0.1:5432\0app2\0"$user", public';

function memo(over: { ttlMs?: number; maxEntries?: number } = {}) {
  let now = 0;
  const m = new CatalogMemo({ ...over, now: () => now });
  return { m, at: (t: number) => (now = t) };
}

describe('CatalogMemo', () => {
  it('returns what it learned, per scope: another search path is another scope', () => {
    const { m } = memo();
    m.learnRelations(SCOPE, [table('users')]);
    m.learnFunctions(SCOPE, [['slugify', { volatility: 'immutable', reads: null }]]);
    expect(m.relation(SCOPE, { schema: null, name: 'users' })?.cacheable).toBe(true);
    expect(m.fn(SCOPE, 'slugify')?.volatility).toBe('immutable');
    expect(m.relation(OTHER_PATH, { schema: null, name: 'users' })).toBeUndefined();
    expect(m.fn(OTHER_PATH, 'slugify')).toBeUndefined();
  });

  it('a schema-qualified name and an unqualified one are different facts', () => {
    const { m } = memo();
    m.learnRelations(SCOPE, [[{ schema: 'audit', name: 'users' }, table('users', { cacheable: false })[1]]]);
    expect(m.relation(SCOPE, { schema: null, name: 'users' })).toBeUndefined();
    expect(m.relation(SCOPE, { schema: 'audit', name: 'users' })?.cacheable).toBe(false);
  });

  it('facts expire after ttlMs so DDL made behind the proxy is seen', () => {
    const { m, at } = memo({ ttlMs: 30_000 });
    m.learnRelations(SCOPE, [table('users')]);
    m.learnFunctions(SCOPE, [['f', { volatility: 'stable', reads: null }]]);
    at(29_999);
    expect(m.relation(SCOPE, { schema: null, name: 'users' })).toBeDefined();
    at(30_000);
    expect(m.relation(SCOPE, { schema: null, name: 'users' })).toBeUndefined();
    expect(m.fn(SCOPE, 'f')).toBeUndefined();
    expect(m.size).toBe(0);
  });

  it('learning a fact again refreshes it', () => {
    const { m, at } = memo({ ttlMs: 100 });
    m.learnFunctions(SCOPE, [['f', { volatility: 'stable', reads: null }]]);
    at(90);
    m.learnFunctions(SCOPE, [['f', { volatility: 'volatile', reads: null }]]);
    at(150);
    expect(m.fn(SCOPE, 'f')?.volatility).toBe('volatile');
    expect(m.size).toBe(1);
  });

  it('forget drops every scope of that database and no other', () => {
    const { m } = memo();
    for (const s of [SCOPE, OTHER_PATH, OTHER_DB]) {
      m.learnRelations(s, [table('users')]);
      m.learnFunctions(s, [['f', { volatility: 'immutable', reads: null }]]);
    }
    m.forget('127.0.0.1:5432', 'app');
    expect(m.relation(SCOPE, { schema: null, name: 'users' })).toBeUndefined();
    expect(m.fn(OTHER_PATH, 'f')).toBeUndefined();
    expect(m.relation(OTHER_DB, { schema: null, name: 'users' })).toBeDefined();
    expect(m.size).toBe(2);
  });

  it('forget does not touch a database whose name merely starts the same', () => {
    const { m } = memo();
    m.learnRelations(OTHER_DB, [table('users')]);
    m.forget('127.0.0.1:5432', 'app');
    expect(m.relation(OTHER_DB, { schema: null, name: 'users' })).toBeDefined();
  });

  it('is bounded by count and evicts the least recently used fact', () => {
    const { m } = memo({ maxEntries: 3 });
    m.learnRelations(SCOPE, [table('a'), table('b'), table('c')]);
    m.relation(SCOPE, { schema: null, name: 'a' });
    m.learnFunctions(OTHER_PATH, [['f', { volatility: 'immutable', reads: null }]]);
    expect(m.size).toBe(3);
    expect(m.relation(SCOPE, { schema: null, name: 'b' })).toBeUndefined();
    expect(m.relation(SCOPE, { schema: null, name: 'a' })).toBeDefined();
    expect(m.relation(SCOPE, { schema: null, name: 'c' })).toBeDefined();
    expect(m.fn(OTHER_PATH, 'f')?.volatility).toBe('immutable');
  });

  it('stays consistent under churn: size never exceeds the bound and lookups agree', () => {
    const { m } = memo({ maxEntries: 50 });
    for (let i = 0; i < 2_000; i++) {
      const scope = `${SCOPE}${i % 7}`;
      m.learnRelations(scope, [table(`t${i % 97}`)]);
      if (i % 5 === 0) m.learnFunctions(scope, [[`f${i % 13}`, { volatility: 'stable', reads: null }]]);
      if (i % 11 === 0) m.relation(`${SCOPE}${(i + 3) % 7}`, { schema: null, name: `t${(i + 1) % 97}` });
      if (i % 301 === 0) m.forget('127.0.0.1:5432', 'app');
      expect(m.size).toBeLessThanOrEqual(50);
    }
    const scope = `${SCOPE}3`;
    m.learnRelations(scope, [table('last')]);
    expect(m.relation(scope, { schema: null, name: 'last' })?.name).toBe('last');
  });

  it('knowsAll is true only when every relation and function is known in that scope', () => {
    const { m } = memo();
    m.learnRelations(SCOPE, [table('users')]);
    m.learnFunctions(SCOPE, [['known', { volatility: 'immutable', reads: null }]]);
    const known = classification({ reads: ['users'], relations: [{ schema: null, name: 'users' }], functions: ['known'] });
    const unknownTable = classification({ reads: ['orders'], relations: [{ schema: null, name: 'orders' }] });
    const unknownFunction = classification({ reads: ['users'], relations: [{ schema: null, name: 'users' }], functions: ['f'] });
    expect(m.knowsAll(SCOPE, known)).toBe(true);
    expect(m.knowsAll(SCOPE, unknownTable)).toBe(false);
    expect(m.knowsAll(SCOPE, unknownFunction)).toBe(false);
    expect(m.knowsAll(OTHER_PATH, known)).toBe(false);
  });

  it('missing lists the relations and functions not known yet, once each', () => {
    const { m } = memo();
    m.learnRelations(SCOPE, [table('users')]);
    m.learnFunctions(SCOPE, [['known', { volatility: 'immutable', reads: null }]]);
    const c = classification({
      reads: ['users', 'orders'],
      relations: [
        { schema: null, name: 'users' },
        { schema: null, name: 'orders' },
        { schema: 'x', name: 'orders' },
        { schema: null, name: 'orders' },
      ],
      functions: ['known', 'f', 'f'],
    });
    expect(m.missing(SCOPE, c)).toEqual({
      relations: [
        { schema: null, name: 'orders' },
        { schema: 'x', name: 'orders' },
      ],
      functions: ['f'],
    });
  });

  it('ttlMs 0 disables the memo: nothing is ever known', () => {
    const m = new CatalogMemo({ ttlMs: 0 });
    m.learnRelations(SCOPE, [table('users')]);
    expect(m.relation(SCOPE, { schema: null, name: 'users' })).toBeUndefined();
  });
});
