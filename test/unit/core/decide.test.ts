// decide(): every refusal with its reason, in order, and the writes each
// decision carries so the session can invalidate whatever was refused.

import { beforeEach, describe, expect, it } from 'vitest';
import { CatalogMemo } from '../../../src/core/catalog.js';
import { decide, type DecideEnv } from '../../../src/core/decide.js';
import { Rules } from '../../../src/core/rules.js';
import { analysis, SCOPE, session, table, write } from './build.js';

let env: DecideEnv;
beforeEach(() => {
  const catalog = new CatalogMemo();
  catalog.learnRelations(SCOPE, [table('users'), table('orders'), table('countries')]);
  catalog.learnFunctions(SCOPE, [
    ['slugify', { volatility: 'immutable', reads: null }],
    ['current_tenant', { volatility: 'stable', reads: null }],
    ['touch_user', { volatility: 'volatile', reads: null }],
  ]);
  const rules = new Rules(
    [
      { index: 0, tables: ['countries'], fingerprint: null, cache: true, ttlMs: 3_600_000 },
      { index: 1, tables: ['sessions'], fingerprint: null, cache: false, ttlMs: null },
    ],
    60_000,
  );
  env = { rules, catalog, inTransactions: false };
});

describe('decide: cache', () => {
  it('a plain read of known tables is cached with the default TTL', () => {
    expect(decide(analysis(), session(), env)).toEqual({
      action: 'cache',
      database: 'app',
      reads: ['users'],
      ttlMs: 60_000,
      shape: 'SELECT * FROM users WHERE id = ?',
      rule: null,
    });
  });

  it('a matching rule sets the TTL and is named', () => {
    const d = decide(analysis({ reads: ['countries'] }), session(), env);
    expect(d).toMatchObject({ action: 'cache', ttlMs: 3_600_000, rule: 'rules[0]' });
  });

  it('an immutable user function does not prevent caching', () => {
    expect(decide(analysis({ functions: ['slugify'] }), session(), env).action).toBe('cache');
  });

  it('inside a transaction the read is cached only when cache.in_transactions is true', () => {
    env.inTransactions = true;
    expect(decide(analysis(), session({ inTransaction: true }), env).action).toBe('cache');
  });
});

describe('decide: writes', () => {
  it('a write bypasses as not-a-read and carries the tables it writes', () => {
    expect(decide(write(['users']), session(), env)).toEqual({
      action: 'bypass',
      reason: 'not-a-read',
      shape: 'UPDATE users SET x = ?',
      writes: ['users'],
      writesUnknown: false,
    });
  });

  it('a write invalidates the tables its FK cascades reach', () => {
    env.catalog.learnRelations(SCOPE, [table('customers', { alsoInvalidates: ['orders', 'order_items'] })]);
    const d = decide(write(['customers']), session(), env);
    expect(d).toMatchObject({ writes: ['customers', 'orders', 'order_items'], writesUnknown: false });
  });

  it('a write to a table whose catalog facts are unknown invalidates the whole database', () => {
    const d = decide(write(['users', 'mystery']), session(), env);
    expect(d).toMatchObject({ action: 'bypass', writes: ['users', 'mystery'], writesUnknown: true });
  });

  it('a write to a table with triggers we cannot analyse invalidates the whole database', () => {
    env.catalog.learnRelations(SCOPE, [table('audited', { invalidatesAll: true })]);
    expect(decide(write(['audited']), session(), env)).toMatchObject({ writesUnknown: true });
  });

  it('the classifier saying writesUnknown is kept', () => {
    const d = decide(write([], { kind: 'other', writesUnknown: true, reason: undefined }), session(), env);
    expect(d).toMatchObject({ reason: 'not-a-read', detail: 'other', writesUnknown: true });
  });

  it('a write naming no table at all is treated as writing anything', () => {
    expect(decide(write([]), session(), env)).toMatchObject({ writes: [], writesUnknown: true });
  });

  it('writes are carried by whichever refusal wins (tainted session, transaction)', () => {
    const d = decide(write(['users']), session({ inTransaction: true, taint: { reason: 'session-state', detail: 'SET ROLE' } }), env);
    expect(d).toMatchObject({ writes: ['users'] });
  });

  it('a read flagged cacheable that writes anyway (data-modifying CTE) is never cached', () => {
    const a = analysis({ writes: ['orders'], relations: [{ schema: null, name: 'users' }, { schema: null, name: 'orders' }] });
    expect(decide(a, session(), env)).toMatchObject({ action: 'bypass', reason: 'not-a-read', writes: ['orders'] });
  });
});

describe('decide: refusals, in order', () => {
  // Each case also satisfies every later refusal, so it proves it comes first.
  const everything = session({ taint: { reason: 'temp-table', detail: 'tmp_x' }, inTransaction: true });

  it('1. the classification reason comes first', () => {
    const a = analysis({ cacheable: false, reason: 'volatile-function', detail: 'now()', functions: ['mystery'] });
    expect(decide(a, everything, env)).toMatchObject({ reason: 'volatile-function', detail: 'now()' });
  });

  it('1. not cacheable without a reason and not a read: not-a-read', () => {
    const a = analysis({ kind: 'session-set', cacheable: false, reads: [] });
    expect(decide(a, everything, env)).toMatchObject({ reason: 'not-a-read', detail: 'session-set' });
  });

  it('1. a volatile literal is never cached', () => {
    const a = analysis({}, { volatileLiteral: true });
    expect(decide(a, everything, env)).toMatchObject({ reason: 'volatile-literal' });
  });

  it('1. a cacheable read of no table is not cached (nothing would invalidate it)', () => {
    expect(decide(analysis({ reads: [] }), everything, env)).toMatchObject({ reason: 'no-table' });
  });

  it('2. a tainted session bypasses with the taint reason', () => {
    const a = analysis({ functions: ['mystery'] });
    expect(decide(a, everything, env)).toMatchObject({ reason: 'temp-table', detail: 'tmp_x' });
  });

  it('3. inside a transaction: in-transaction', () => {
    const a = analysis({ functions: ['mystery'] });
    expect(decide(a, session({ inTransaction: true }), env)).toMatchObject({ reason: 'in-transaction' });
  });

  it('4. an unknown function: unknown-function, and it may write anything', () => {
    const a = analysis({ functions: ['current_tenant', 'mystery'], reads: ['nowhere'] });
    expect(decide(a, session(), env)).toEqual({
      action: 'bypass',
      reason: 'unknown-function',
      detail: 'mystery',
      shape: 'SELECT * FROM users WHERE id = ?',
      writes: [],
      writesUnknown: true,
      catalogMayChange: true,
    });
  });

  it('4. a volatile user function: user-function, and it may write anything', () => {
    const d = decide(analysis({ functions: ['touch_user'] }), session(), env);
    expect(d).toMatchObject({ reason: 'user-function', detail: 'touch_user is volatile', writesUnknown: true });
  });

  it('4. a stable user function: user-function, read-only', () => {
    const d = decide(analysis({ functions: ['current_tenant'] }), session(), env);
    expect(d).toMatchObject({ reason: 'user-function', writesUnknown: false });
  });

  it('a function that may write is reported even when an earlier refusal wins', () => {
    const d = decide(analysis({ functions: ['touch_user'] }), session({ inTransaction: true }), env);
    expect(d).toMatchObject({ reason: 'in-transaction', writesUnknown: true });
  });

  it('5. a relation not in the catalog yet: unknown-relation', () => {
    const d = decide(analysis({ reads: ['users', 'mystery'] }, { shape: 'q' }), session(), env);
    expect(d).toMatchObject({ reason: 'unknown-relation', detail: 'mystery', writesUnknown: false });
  });

  it('5. a qualified relation is looked up with its schema', () => {
    const a = analysis({ relations: [{ schema: 'audit', name: 'users' }] });
    expect(decide(a, session(), env)).toMatchObject({ reason: 'unknown-relation', detail: 'audit.users' });
  });

  it('5. a view or partitioned table: the catalog reason, relation-kind by default', () => {
    env.catalog.learnRelations(SCOPE, [
      table('v_users', { cacheable: false }),
      table('events', { cacheable: false, reason: 'relation-kind', detail: 'partitioned table events' }),
    ]);
    expect(decide(analysis({ reads: ['v_users'] }), session(), env)).toMatchObject({ reason: 'relation-kind', detail: 'v_users' });
    expect(decide(analysis({ reads: ['events'] }), session(), env)).toMatchObject({ detail: 'partitioned table events' });
  });

  it('5. relations come after functions', () => {
    const a = analysis({ reads: ['mystery'], functions: ['current_tenant'] });
    expect(decide(a, session(), env)).toMatchObject({ reason: 'user-function' });
  });

  it('6. a cache: false rule: rule, named in detail', () => {
    env.catalog.learnRelations(SCOPE, [table('sessions')]);
    expect(decide(analysis({ reads: ['sessions'] }), session(), env)).toMatchObject({ reason: 'rule', detail: 'rules[1]' });
  });

  it('6. a nocache hint: hint', () => {
    const d = decide(analysis({}, { hints: { nocache: true } }), session(), env);
    expect(d).toMatchObject({ action: 'bypass', reason: 'hint', writes: [], writesUnknown: false });
  });

  it('6. a ttl hint sets the TTL', () => {
    expect(decide(analysis({}, { hints: { ttlMs: 5_000 } }), session(), env)).toMatchObject({ ttlMs: 5_000, rule: 'hint' });
  });
});
