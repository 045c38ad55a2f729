// Table names are qualified with the session's current database, so that
// db1.users and db2.users never share versions; a write is bumped per
// database, and unknown writes or DDL reach every database seen.
import { describe, expect, it } from 'vitest';
import type { QueryCache } from '../../../src/core/query-cache.js';
import type { Analysis, Classification, Decision } from '../../../src/core/types.js';
import { WriteSet, groupByDatabase, qualify } from '../../../src/mysql/qualify.js';

function cls(over: Partial<Classification> = {}): Classification {
  return {
    kind: 'read',
    reads: [],
    writes: [],
    relations: [],
    writesUnknown: false,
    cacheable: true,
    functions: [],
    builtins: [],
    operators: [],
    sessionEffects: [],
    statementCount: 1,
    txnControl: false,
    ...over,
  };
}

function analysis(c: Classification): Analysis {
  return { shaped: { shape: 'SELECT …', keyText: 'SELECT …', hints: {}, volatileLiteral: false }, classification: c };
}

/** Deep-freezes a classification the way shared memo entries are treated: qualify must not write to it. */
function frozen(c: Classification): Classification {
  for (const v of Object.values(c)) if (typeof v === 'object' && v !== null) Object.freeze(v);
  for (const r of c.relations) Object.freeze(r);
  return Object.freeze(c);
}

const readUsers = (): Classification =>
  frozen(cls({ reads: ['users', 'db2.orders'], relations: [{ schema: null, name: 'Users' }, { schema: 'DB2', name: 'Orders' }] }));

describe('qualify', () => {
  it('qualifies unqualified names with the current database, lower-cased, and keeps qualified ones', () => {
    const q = qualify(analysis(readUsers()), 'Shop', false).classification;
    expect(q.reads).toEqual(['shop.users', 'db2.orders']);
    expect(q.relations).toEqual([
      { schema: 'shop', name: 'users' },
      { schema: 'db2', name: 'orders' },
    ]);
    expect([q.cacheable, q.writesUnknown, q.reason]).toEqual([true, false, undefined]);
  });

  it('qualifies writes too', () => {
    const c = frozen(cls({ kind: 'write', cacheable: false, reason: 'not-a-read', writes: ['users'], relations: [{ schema: null, name: 'users' }] }));
    const q = qualify(analysis(c), 'shop', false).classification;
    expect(q.writes).toEqual(['shop.users']);
    expect(q.writesUnknown).toBe(false);
    expect(q.reason).toBe('not-a-read');
  });

  it('gives two databases two different answers for the same classification', () => {
    const c = readUsers();
    const a = qualify(analysis(c), 'db1', false).classification;
    const b = qualify(analysis(c), 'db3', false).classification;
    expect(a.reads[0]).toBe('db1.users');
    expect(b.reads[0]).toBe('db3.users');
    expect(qualify(analysis(c), 'db1', false).classification).toBe(a); // memoised per database
  });

  it('still answers right past 64 databases for one classification', () => {
    const c = readUsers();
    for (let i = 0; i < 70; i++) expect(qualify(analysis(c), `d${i}`, false).classification.reads[0]).toBe(`d${i}.users`);
    expect(qualify(analysis(c), 'd69', false).classification.reads[0]).toBe('d69.users');
  });

  it('makes an unqualified read uncacheable without a current database', () => {
    const q = qualify(analysis(readUsers()), null, false).classification;
    expect(q.cacheable).toBe(false);
    expect(q.reason).toBe('unknown-relation');
    expect(q.detail).toBe('no database selected');
    expect(q.writesUnknown).toBe(false);
    expect(q.reads).toEqual(['users', 'db2.orders']);
    expect(q.relations[0]).toEqual({ schema: '', name: 'users' });
  });

  it('makes an unqualified write a write to unknown tables without a current database', () => {
    const c = frozen(cls({ kind: 'write', cacheable: false, reason: 'not-a-read', writes: ['users'] }));
    const q = qualify(analysis(c), null, false).classification;
    expect(q.writesUnknown).toBe(true);
    expect(q.reason).toBe('not-a-read'); // the first reason stays
  });

  it('refuses to guess a name with two dots', () => {
    const c = frozen(cls({ kind: 'write', cacheable: false, writes: ['a.b.c'] }));
    const q = qualify(analysis(c), 'shop', false).classification;
    expect(q.writes).toEqual(['a.b.c']);
    expect(q.writesUnknown).toBe(true);
    const r = qualify(analysis(frozen(cls({ reads: ['a.b.c'] }))), 'shop', false).classification;
    expect([r.cacheable, r.reason, r.detail]).toEqual([false, 'unknown-relation', 'a table or database name containing a dot']);
  });

  it('refuses a relation whose name or schema contains a dot (a quoted `a.b`)', () => {
    const c = frozen(cls({ reads: ['a.b'], relations: [{ schema: null, name: 'a.b' }] }));
    const q = qualify(analysis(c), 'shop', false).classification;
    expect([q.cacheable, q.writesUnknown]).toEqual([false, true]);
    const d = frozen(cls({ reads: ['x.t'], relations: [{ schema: 'x.y', name: 't' }] }));
    expect(qualify(analysis(d), 'shop', false).classification.cacheable).toBe(false);
  });

  it('returns the same analysis when there is no table to qualify', () => {
    const a = analysis(frozen(cls({ cacheable: false, reason: 'no-table' })));
    expect(qualify(a, 'shop', false)).toBe(a);
    expect(qualify(a, null, false)).toBe(a);
  });

  it('marks a write from text not decoded exactly as unknown, without poisoning the memo', () => {
    const c = frozen(cls({ kind: 'write', cacheable: false, writes: ['users'] }));
    expect(qualify(analysis(c), 'shop', true).classification.writesUnknown).toBe(true);
    expect(qualify(analysis(c), 'shop', false).classification.writesUnknown).toBe(false);
  });

  it('treats even a plain read from text not lexed as the server does as writing unknown tables, never cached', () => {
    // In gbk, `SELECT '縗'; UPDATE t …` looks like one read to our lexer.
    const c = readUsers();
    const q = qualify(analysis(c), 'shop', true).classification;
    expect(q).toMatchObject({ writesUnknown: true, cacheable: false, reason: 'encoding' });
    expect(q.reads).toContain('shop.users');
  });

  it('treats a text that switches database (USE) between statements as writing unknown tables', () => {
    const c = frozen(cls({ kind: 'write', statementCount: 2, writes: ['t'], sessionEffects: [{ type: 'use', database: 'db1' }, { type: 'none' }] }));
    expect(qualify(analysis(c), 'shop', false).classification.writesUnknown).toBe(true);
  });

  it('treats a non-read without writes from text not decoded exactly as writing unknown tables', () => {
    const c = frozen(cls({ kind: 'other', cacheable: false, reads: ['users'] }));
    expect(qualify(analysis(c), 'shop', true).classification.writesUnknown).toBe(true);
  });
});

describe('groupByDatabase', () => {
  it('groups by the part before the first dot, without duplicates, in order', () => {
    const g = groupByDatabase(['db1.a', 'db2.a', 'db1.b', 'db1.a', 'bare', 'db1.x.y']);
    expect([...g.entries()]).toEqual([
      ['db1', ['a', 'b', 'x.y']],
      ['db2', ['a']],
      ['', ['bare']],
    ]);
  });
});

const bypass = (over: Partial<Extract<Decision, { action: 'bypass' }>> = {}): Decision => ({
  action: 'bypass',
  reason: 'not-a-read',
  shape: 'UPDATE …',
  writes: [],
  writesUnknown: false,
  ...over,
});

interface Call {
  db: string;
  tables: readonly string[];
  unknown: boolean;
  ddl: boolean;
}

function fakeCache(result: (db: string) => void | Promise<void> = () => undefined): { qc: QueryCache; calls: Call[]; forgot: [string, string][] } {
  const calls: Call[] = [];
  const forgot: [string, string][] = [];
  const qc = {
    afterWrite(upstream: string, db: string, tables: readonly string[], unknown: boolean, ddl: boolean) {
      expect(upstream).toBe('127.0.0.1:3306');
      calls.push({ db, tables: [...tables], unknown, ddl });
      return result(db);
    },
    catalog: {
      forget(upstream: string, db: string) {
        forgot.push([upstream, db]);
      },
    },
  } as unknown as QueryCache;
  return { qc, calls, forgot };
}

const UP = '127.0.0.1:3306';

describe('WriteSet', () => {
  it('takes nothing from a cache decision', () => {
    const d: Decision = { action: 'cache', database: 'shop', reads: ['shop.users'], ttlMs: 0, shape: 'SELECT …', rule: null };
    expect(WriteSet.of(d, cls()).empty).toBe(true);
  });

  it('takes the tables, unknown writes and DDL from a bypass decision', () => {
    const w = WriteSet.of(bypass({ writes: ['shop.users', 'shop.users', 'db2.log'] }), cls({ kind: 'write' }));
    expect([...w.tables]).toEqual(['shop.users', 'db2.log']);
    expect([w.unknown, w.ddl, w.empty]).toEqual([false, false, false]);
    expect(WriteSet.of(bypass({ writesUnknown: true }), cls({ kind: 'other' })).unknown).toBe(true);
    const ddl = WriteSet.of(bypass(), cls({ kind: 'ddl' }));
    expect([ddl.ddl, ddl.empty]).toEqual([true, false]);
    expect(WriteSet.of(bypass(), cls({ kind: 'session-set' })).empty).toBe(true);
  });

  it('merges tables and flags', () => {
    const a = WriteSet.of(bypass({ writes: ['shop.a'] }), cls({ kind: 'write' }));
    const b = WriteSet.of(bypass({ writes: ['shop.b'] }), cls({ kind: 'ddl' }));
    a.merge(b);
    a.merge(WriteSet.unknown());
    expect([[...a.tables], a.ddl, a.unknown]).toEqual([['shop.a', 'shop.b'], true, true]);
  });

  it('bumps the tables written, per database, and forgets no catalog facts', () => {
    const { qc, calls, forgot } = fakeCache();
    const w = WriteSet.of(bypass({ writes: ['shop.users', 'db2.log', 'shop.orders'] }), cls({ kind: 'write' }));
    expect(w.bump(qc, UP, 'shop', new Set(['shop', 'db2', 'other']), `${UP}\0`)).toBeNull();
    expect(calls).toEqual([
      { db: 'shop', tables: ['users', 'orders'], unknown: false, ddl: false },
      { db: 'db2', tables: ['log'], unknown: false, ddl: false },
    ]);
    expect(forgot).toEqual([]);
  });

  it('bumps every known database, the current one and the ones named, after an unknown write', async () => {
    const pending: string[] = [];
    const { qc, calls, forgot } = fakeCache((db) => (db === 'other' ? Promise.resolve().then(() => void pending.push(db)) : undefined));
    const w = WriteSet.of(bypass({ writes: ['named.t'], writesUnknown: true, catalogMayChange: true }), cls({ kind: 'other' }));
    const r = w.bump(qc, UP, 'Shop', new Set(['other']), `${UP}\0`);
    expect(calls.map((c) => c.db).sort()).toEqual(['named', 'other', 'shop']);
    expect(calls.every((c) => c.unknown && c.tables.length === 0 && !c.ddl)).toBe(true);
    expect(r).toBeInstanceOf(Promise);
    await r;
    expect(pending).toEqual(['other']);
    expect(forgot).toEqual([[UP, '']]);
  });

  it('keeps the catalog facts after a write unknown only because its table was not looked up yet', () => {
    const { qc, calls, forgot } = fakeCache();
    WriteSet.of(bypass({ writes: ['shop.t'], writesUnknown: true }), cls({ kind: 'write' })).bump(qc, UP, 'shop', new Set(), `${UP}\0`);
    expect(calls.map((c) => c.db)).toEqual(['shop']);
    expect(forgot).toEqual([]);
  });

  it('bumps every database after DDL naming no table (DROP DATABASE, CREATE USER)', () => {
    const { qc, calls, forgot } = fakeCache();
    WriteSet.of(bypass(), cls({ kind: 'ddl' })).bump(qc, UP, null, new Set(['a', 'b']), `${UP}\0`);
    expect(calls).toEqual([
      { db: 'a', tables: [], unknown: true, ddl: true },
      { db: 'b', tables: [], unknown: true, ddl: true },
    ]);
    expect(forgot).toEqual([[UP, '']]);
  });

  it('bumps the databases DDL names, as DDL, and forgets catalog facts', () => {
    const { qc, calls, forgot } = fakeCache();
    WriteSet.of(bypass({ writes: ['shop.users'] }), cls({ kind: 'ddl' })).bump(qc, UP, 'shop', new Set(['shop', 'b']), `${UP}\0`);
    expect(calls).toEqual([{ db: 'shop', tables: ['users'], unknown: false, ddl: true }]);
    expect(forgot).toEqual([[UP, '']]);
  });

  it('does nothing for an empty set', () => {
    const { qc, calls, forgot } = fakeCache();
    expect(new WriteSet().bump(qc, UP, 'shop', new Set(['shop']), `${UP}\0`)).toBeNull();
    expect([calls, forgot]).toEqual([[], []]);
  });
});
