// explainStatement(): the classifier and the real decide() under a config's
// rules, for both dialects — what `sqlcached explain` and GET /explain tell a
// user must be what the proxy does with the statement.

import { beforeAll, describe, expect, it } from 'vitest';
import { defaultDialect, explainStatement, formatTtl, type Explanation } from '../../../src/core/explain.js';
import type { BypassReason, Dialect, StatementKind } from '../../../src/core/types.js';
import { Classifier } from '../../../src/sql/classifier.js';
import { mysqlTestConfig, testConfig, type ProxyOverrides } from '../../helpers/proxy.js';

const RULES: ProxyOverrides['rules'] = [
  { tables: ['sessions', 'audit_log'], cache: false },
  { tables: ['countries'], ttlMs: 3_600_000 },
  { fingerprint: 'SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?', ttlMs: 300_000 },
  { tables: ['app.orders'], ttlMs: 10_000 },
];
const config = testConfig({ rules: RULES });
const ARTICLES = "SELECT * FROM articles WHERE status = 'published' ORDER BY published_at DESC LIMIT 10";

let classifier: Classifier;
beforeAll(async () => {
  classifier = await Classifier.load();
});

const explain = (dialect: Dialect, sql: string, cfg = config): Explanation => explainStatement({ classifier, config: cfg, sql, dialect });

interface Case {
  sql: string;
  kind: StatementKind;
  reads?: string[];
  writes?: string[];
  /** Absent: cached. */
  reason?: BypassReason;
  detail?: string;
  rule?: string | null;
  ttlMs?: number;
  writesUnknown?: boolean;
  invalidates?: string[] | string;
}

/** Statements both dialects answer alike. */
const COMMON: Case[] = [
  { sql: 'SELECT * FROM users WHERE id = 1', kind: 'read', reads: ['users'], rule: null, ttlMs: 60_000 },
  { sql: 'SELECT code FROM countries WHERE id = 3', kind: 'read', reads: ['countries'], rule: 'rules[1]', ttlMs: 3_600_000 },
  { sql: ARTICLES, kind: 'read', reads: ['articles'], rule: 'rules[2]', ttlMs: 300_000 },
  { sql: 'SELECT * FROM sessions WHERE id = 1', kind: 'read', reads: ['sessions'], reason: 'rule', detail: 'rules[0]', rule: 'rules[0]' },
  { sql: '/* sqlcached:ttl=5s */ SELECT * FROM sessions', kind: 'read', reads: ['sessions'], reason: 'rule', rule: 'rules[0]' },
  { sql: '/* sqlcached:nocache */ SELECT * FROM users', kind: 'read', reads: ['users'], reason: 'hint', rule: 'hint' },
  { sql: '/* sqlcached:ttl=5s */ SELECT * FROM users', kind: 'read', reads: ['users'], rule: 'hint', ttlMs: 5_000 },
  { sql: '/* sqlcached:ttl=5s */ SELECT code FROM countries', kind: 'read', reads: ['countries'], rule: 'hint', ttlMs: 5_000 },
  { sql: 'SELECT * FROM users WHERE id = 1 FOR UPDATE', kind: 'read', reads: ['users'], reason: 'locking-clause', detail: 'FOR UPDATE' },
  { sql: 'SELECT 1', kind: 'read', reads: [], reason: 'no-table' },
  { sql: 'SELECT * FROM users; SELECT * FROM orders', kind: 'read', reads: ['users', 'orders'], reason: 'multi-statement', detail: '2 statements' },
  { sql: "INSERT INTO users (name) VALUES ('a')", kind: 'write', writes: ['users'], reason: 'not-a-read', invalidates: ['users'] },
  { sql: "UPDATE users SET name = 'b' WHERE id = 1", kind: 'write', writes: ['users'], reason: 'not-a-read', invalidates: ['users'] },
  { sql: 'DELETE FROM orders WHERE id = 1', kind: 'write', writes: ['orders'], reason: 'not-a-read', invalidates: ['orders'] },
  { sql: 'CREATE TABLE x (a int)', kind: 'ddl', writes: ['x'], reason: 'not-a-read', invalidates: 'the whole database' },
  { sql: 'BEGIN', kind: 'txn-control', reason: 'not-a-read', invalidates: [] },
];

const POSTGRES: Case[] = [
  ...COMMON,
  { sql: 'SELECT id, now() FROM users', kind: 'read', reads: ['users'], reason: 'volatile-function', detail: 'now()' },
  { sql: 'SELECT random() FROM users', kind: 'read', reads: ['users'], reason: 'volatile-function', detail: 'random()' },
  { sql: "SELECT nextval('s')", kind: 'read', reads: [], reason: 'volatile-function', detail: 'nextval()' },
  { sql: "SELECT * FROM users WHERE created_at > 'now'::timestamp", kind: 'read', reads: ['users'], reason: 'volatile-literal' },
  { sql: 'SELECT * FROM pg_catalog.pg_class', kind: 'read', reason: 'system-catalog', detail: 'pg_catalog.pg_class' },
  { sql: 'SELECT * FROM information_schema.tables', kind: 'read', reason: 'system-catalog', detail: 'information_schema.tables' },
  { sql: 'SELECT * INTO new_t FROM users', kind: 'write', reads: ['users'], writes: ['new_t'], reason: 'select-into', invalidates: ['new_t'] },
  { sql: 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d', kind: 'write', writes: ['users'], reason: 'not-a-read' },
  { sql: 'SELEC 1', kind: 'other', reason: 'parse-error', writesUnknown: true, invalidates: 'the whole database' },
  { sql: 'CALL refresh_stats()', kind: 'other', reason: 'not-a-read', writesUnknown: true, invalidates: 'the whole database' },
  { sql: 'SELECT slugify(name) FROM users', kind: 'read', reads: ['users'], reason: 'unknown-function', detail: 'slugify', writesUnknown: true },
  // PostgreSQL reads name no schema: a rule naming app.orders is for MySQL.
  { sql: 'SELECT * FROM app.orders', kind: 'read', reads: ['orders'], rule: null, ttlMs: 60_000 },
];

const MYSQL: Case[] = [
  ...COMMON,
  { sql: 'SELECT id, NOW() FROM users', kind: 'read', reads: ['users'], reason: 'volatile-function', detail: 'now()' },
  { sql: 'SELECT RAND() FROM users', kind: 'read', reads: ['users'], reason: 'volatile-function', detail: 'rand()' },
  { sql: 'SELECT LAST_INSERT_ID()', kind: 'read', reads: [], reason: 'volatile-function', detail: 'last_insert_id()' },
  { sql: 'SELECT UUID()', kind: 'read', reads: [], reason: 'volatile-function', detail: 'uuid()' },
  { sql: 'SELECT SQL_NO_CACHE * FROM users', kind: 'read', reads: ['users'], reason: 'hint', detail: 'SQL_NO_CACHE', rule: 'hint' },
  { sql: 'SELECT @v FROM users', kind: 'read', reads: ['users'], reason: 'session-state', detail: '@v' },
  { sql: 'SELECT * FROM users LOCK IN SHARE MODE', kind: 'read', reads: ['users'], reason: 'locking-clause', detail: 'LOCK IN SHARE MODE' },
  { sql: 'SELECT * FROM information_schema.tables', kind: 'read', reason: 'system-catalog', detail: 'information_schema.tables' },
  { sql: 'SELECT * FROM mysql.user', kind: 'read', reason: 'system-catalog', detail: 'mysql.user' },
  { sql: 'SELECT * FROM app.orders', kind: 'read', reads: ['app.orders'], rule: 'rules[3]', ttlMs: 10_000 },
  { sql: 'UPDATE app.Users SET a = 1', kind: 'write', writes: ['app.users'], reason: 'not-a-read', invalidates: ['app.users'] },
  { sql: 'SELEC 1', kind: 'other', reason: 'parse-error', writesUnknown: true, invalidates: 'every database the listener has seen' },
  { sql: 'CALL p()', kind: 'other', reason: 'not-a-read', writesUnknown: true, invalidates: 'every database the listener has seen' },
  { sql: 'DROP DATABASE foo', kind: 'ddl', reason: 'not-a-read', writesUnknown: true, invalidates: 'every database the listener has seen' },
  { sql: 'SELECT my_fn(id) FROM users', kind: 'read', reads: ['users'], reason: 'unknown-function', detail: 'my_fn', writesUnknown: true },
];

function check(dialect: Dialect, c: Case): void {
  const e = explain(dialect, c.sql);
  expect(e.dialect).toBe(dialect);
  expect(e.sql).toBe(c.sql);
  expect(e.kind).toBe(c.kind);
  if (c.reads !== undefined) expect(e.reads).toEqual(c.reads);
  expect(e.writes).toEqual(c.writes ?? []);
  expect(e.writes_unknown).toBe(c.writesUnknown ?? false);
  expect(e.cacheable).toBe(c.reason === undefined);
  expect(e.reason).toBe(c.reason ?? null);
  if (c.detail !== undefined) expect(e.detail).toBe(c.detail);
  if (c.rule !== undefined) expect(e.rule).toBe(c.rule);
  if (c.reason === undefined) {
    expect(e.ttl_ms).toBe(c.ttlMs);
    expect(e.ttl).toBe(formatTtl(c.ttlMs!));
    expect(e.detail).toBeNull();
  } else {
    expect(e.ttl_ms).toBeNull();
    expect(e.ttl).toBeNull();
  }
  if (c.invalidates !== undefined) expect(e.invalidates).toEqual(c.invalidates);
  else if (c.writesUnknown) expect(typeof e.invalidates).toBe('string');
  else expect(e.invalidates).toEqual(c.writes ?? []);
}

const title = (c: Case) => `${c.sql} → ${c.reason ?? 'cached'}`;

describe('explain: PostgreSQL statements get the decision the proxy makes', () => {
  it.each(POSTGRES.map((c) => [title(c), c] as const))('%s', (_, c) => check('postgres', c));
});

describe('explain: MySQL statements get the decision the proxy makes', () => {
  it.each(MYSQL.map((c) => [title(c), c] as const))('%s', (_, c) => check('mysql', c));
});

describe('explain: what only the live catalog and session decide is said', () => {
  it('a cacheable read names the relation-kind, transaction and session checks', () => {
    const checks = explain('postgres', 'SELECT * FROM public.users').runtime_checks.join('\n');
    expect(checks).toContain('relation kind: public.users');
    expect(checks).toContain('in-transaction');
    expect(checks).toContain('session-state');
  });

  it('a user function is of unknown volatility until the catalog says, and the answer says so', () => {
    const pg = explain('postgres', 'SELECT slugify(name) FROM users');
    expect(pg.runtime_checks.some((s) => s.startsWith('function volatility: slugify') && s.includes('IMMUTABLE'))).toBe(true);
    const my = explain('mysql', 'SELECT my_fn(id) FROM users');
    expect(my.runtime_checks.some((s) => s.startsWith('function volatility: my_fn') && s.includes('never looked up'))).toBe(true);
  });

  it('a write names its dependencies (views, partitions, cascades, triggers) as run-time invalidation', () => {
    const e = explain('postgres', 'DELETE FROM orders WHERE id = 1');
    expect(e.runtime_checks).toHaveLength(1);
    expect(e.runtime_checks[0]).toMatch(/^dependencies: a write to orders also invalidates, from the database's dependency graph, views over it/);
    expect(explain('mysql', 'DELETE FROM app.orders WHERE id = 1').runtime_checks[0]).toMatch(/^cascades and triggers: a write to app\.orders/);
  });

  it('an unqualified MySQL table resolves in the current database at run time', () => {
    expect(explain('mysql', 'SELECT * FROM users').runtime_checks.join('\n')).toContain("session's current database");
    expect(explain('mysql', 'SELECT * FROM app.users').runtime_checks.join('\n')).not.toContain("session's current database");
  });

  it('a refusal the classifier or a rule makes is final: no run-time checks are listed for it', () => {
    for (const sql of ['SELECT random() FROM users', 'SELECT 1', 'SELECT * FROM sessions', '/* sqlcached:nocache */ SELECT * FROM users', 'CREATE TABLE x (a int)']) {
      expect(explain('postgres', sql).runtime_checks).toEqual([]);
    }
    // A MySQL stored function is never looked up: only that is said.
    expect(explain('mysql', 'SELECT my_fn(id) FROM users').runtime_checks).toHaveLength(1);
  });

  it('in_transactions: true says hits are served inside a transaction', () => {
    const cfg = testConfig({ rules: RULES, inTransactions: true });
    expect(explain('postgres', 'SELECT * FROM users', cfg).runtime_checks[0]).toContain('hits are served');
  });
});

describe('explain: session effects and the answer itself', () => {
  it('a SET says what it does to the session and the key', () => {
    expect(explain('postgres', "SET TimeZone = 'UTC'").session_effects).toEqual(["timezone = 'UTC': part of the cache key from then on"]);
    expect(explain('mysql', 'USE app').session_effects).toEqual(['unqualified tables resolve in database app from then on']);
    expect(explain('postgres', 'CALL refresh_stats()').session_effects[0]).toMatch(/^the session bypasses the cache from then on \(session-state/);
    expect(explain('postgres', 'SELECT 1').session_effects).toEqual([]);
  });

  it('the fingerprint is the shape /stats and fingerprint rules use', () => {
    expect(explain('postgres', ARTICLES).fingerprint).toBe(RULES![2]!.fingerprint);
    expect(explain('mysql', ARTICLES).fingerprint).toBe(RULES![2]!.fingerprint);
  });

  it('default_ttl 0 reads "until invalidated"', () => {
    const e = explain('postgres', 'SELECT * FROM users', testConfig({ defaultTtlMs: 0 }));
    expect(e).toMatchObject({ cacheable: true, ttl_ms: 0, ttl: 'until invalidated', rule: null });
  });

  it('the answer is plain JSON with the same field names every time', () => {
    const fields = [
      'dialect', 'sql', 'fingerprint', 'kind', 'reads', 'writes', 'writes_unknown', 'statement_count', 'cacheable', 'reason',
      'detail', 'rule', 'ttl_ms', 'ttl', 'invalidates', 'read_tables', 'dependency_graph', 'session_effects', 'runtime_checks',
    ];
    for (const sql of ['SELECT * FROM users', 'UPDATE users SET a = 1', 'SELEC 1']) {
      const e = explain('postgres', sql);
      expect(Object.keys(e)).toEqual(fields);
      expect(JSON.parse(JSON.stringify(e))).toEqual(e);
    }
  });

  it('the dialect defaults to postgres, and to mysql when every listener is a mysql one', () => {
    expect(defaultDialect(testConfig())).toBe('postgres');
    expect(defaultDialect(mysqlTestConfig())).toBe('mysql');
    const e = explainStatement({ classifier, config: mysqlTestConfig(), sql: 'SELECT SQL_NO_CACHE * FROM t' });
    expect(e).toMatchObject({ dialect: 'mysql', reason: 'hint' });
  });

  it('TTLs read as the config writes them', () => {
    expect([0, 500, 5_000, 60_000, 300_000, 3_600_000, 5_400_000, 86_400_000, 1_500].map(formatTtl)).toEqual([
      'until invalidated', '500ms', '5s', '1m', '5m', '1h', '1h30m', '1d', '1s500ms',
    ]);
  });
});
