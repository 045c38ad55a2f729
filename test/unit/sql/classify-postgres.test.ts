// classifyPostgres: one row per rule. A wrong answer here is a stale row
// served from cache (a write not seen, a volatile read cached) or a leak (a
// session change the key does not hold), so every row names what it defends.

import { beforeAll, describe, expect, it } from 'vitest';
import type { BypassReason, SessionEffect, StatementKind, TableRef } from '../../../src/core/types.js';
import { classifyPostgres, loadPostgresParser } from '../../../src/sql/postgres-parser.js';

interface Row {
  sql: string;
  kind: StatementKind;
  reads?: string[];
  writes?: string[];
  cacheable?: boolean;
  reason?: BypassReason;
  detail?: string;
  writesUnknown?: boolean;
  effects?: SessionEffect[];
  functions?: string[];
  /** Checked only when given. */
  builtins?: string[];
  operators?: string[];
  relations?: TableRef[];
  count?: number;
  txn?: boolean;
}

const NONE: SessionEffect = { type: 'none' };
const sorted = (a: readonly string[]) => [...a].sort();

beforeAll(async () => {
  await loadPostgresParser();
});

function check(row: Row): void {
  const c = classifyPostgres(row.sql);
  expect(c.kind, 'kind').toBe(row.kind);
  expect(sorted(c.reads), 'reads').toEqual(sorted(row.reads ?? []));
  expect(sorted(c.writes), 'writes').toEqual(sorted(row.writes ?? []));
  expect(c.cacheable, 'cacheable').toBe(row.cacheable ?? false);
  expect(c.writesUnknown, 'writesUnknown').toBe(row.writesUnknown ?? false);
  if (row.reason !== undefined) expect(c.reason, 'reason').toBe(row.reason);
  if (row.cacheable === true) expect(c.reason, 'reason').toBeUndefined();
  if (row.detail !== undefined) expect(c.detail, 'detail').toBe(row.detail);
  expect(c.sessionEffects, 'effects').toEqual(row.effects ?? [NONE]);
  expect(sorted(c.functions), 'functions').toEqual(sorted(row.functions ?? []));
  if (row.builtins !== undefined) expect(sorted(c.builtins), 'builtins').toEqual(sorted(row.builtins));
  if (row.operators !== undefined) expect(sorted(c.operators), 'operators').toEqual(sorted(row.operators));
  if (row.relations !== undefined) expect(c.relations, 'relations').toEqual(row.relations);
  expect(c.statementCount, 'statementCount').toBe(row.count ?? 1);
  expect(c.txnControl, 'txnControl').toBe(row.txn ?? false);
}

function table(promise: string, rows: Row[]): void {
  describe(promise, () => {
    it.each(rows.map((r) => [r.sql, r] as const))('%s', (_sql, row) => check(row));
  });
}

table('a read names every table it reads (joins, subqueries, set operations, LATERAL, CTE bodies) and is cacheable', [
  { sql: 'SELECT * FROM users WHERE id = 1', kind: 'read', reads: ['users'], cacheable: true },
  {
    sql: 'SELECT u.name FROM public.users u JOIN orders o ON o.user_id = u.id',
    kind: 'read', reads: ['users', 'orders'], cacheable: true,
    relations: [{ schema: 'public', name: 'users' }, { schema: null, name: 'orders' }],
  },
  { sql: 'SELECT * FROM a WHERE x IN (SELECT y FROM b) AND EXISTS (SELECT 1 FROM c)', kind: 'read', reads: ['a', 'b', 'c'], cacheable: true },
  { sql: 'SELECT x FROM a UNION SELECT x FROM b INTERSECT SELECT x FROM c', kind: 'read', reads: ['a', 'b', 'c'], cacheable: true },
  { sql: 'SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) s', kind: 'read', reads: ['t', 'u'], cacheable: true },
  { sql: 'SELECT * FROM t CROSS JOIN LATERAL generate_series(1, t.n) g', kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'SELECT (SELECT max(x) FROM u) FROM t', kind: 'read', reads: ['t', 'u'], cacheable: true },
  { sql: 'SELECT * FROM t WHERE x = $1', kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'TABLE t', kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'SELECT count(*), sum(x), max(y), row_number() OVER () FROM t', kind: 'read', reads: ['t'], cacheable: true },
  { sql: "SELECT lower(name), to_char(ts, 'YYYY'), date_trunc('day', ts), ts AT TIME ZONE 'UTC' FROM t", kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'SELECT current_user, session_user, user, current_role, current_schema, current_catalog FROM t', kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)', kind: 'read', reads: ['t'], cacheable: true },
  { sql: 'SELECT pg_catalog.lower(x), pg_size_pretty(n) FROM t', kind: 'read', reads: ['t'], cacheable: true },
]);

table('names defined by WITH are not tables, but a non-recursive CTE body sees the real table', [
  { sql: 'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN users ON true', kind: 'read', reads: ['orders', 'users'], cacheable: true },
  { sql: 'WITH t AS (SELECT * FROM t) SELECT * FROM t', kind: 'read', reads: ['t'], cacheable: true },
  {
    sql: 'WITH RECURSIVE tree AS (SELECT id FROM nodes UNION ALL SELECT n.id FROM nodes n JOIN tree ON n.parent = tree.id) SELECT * FROM tree',
    kind: 'read', reads: ['nodes'], cacheable: true,
  },
  { sql: 'WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM b', kind: 'read', reason: 'no-table' },
  { sql: 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x', kind: 'read', reads: ['x'], cacheable: true },
]);

table('names come as the server folds them, without schema; relations keep the schema', [
  { sql: 'SELECT * FROM s.t', kind: 'read', reads: ['t'], cacheable: true, relations: [{ schema: 's', name: 't' }] },
  { sql: 'SELECT * FROM "Users", USERS', kind: 'read', reads: ['Users', 'users'], cacheable: true },
  { sql: 'UPDATE s.t SET a = 1', kind: 'write', writes: ['t'], relations: [{ schema: 's', name: 't' }] },
]);

table('functions of unknown volatility are listed for the catalog look-up; the parser keeps the read cacheable', [
  { sql: 'SELECT my_func(x), app.score(y) FROM t', kind: 'read', reads: ['t'], cacheable: true, functions: ['my_func', 'app.score'] },
  { sql: 'SELECT public.random() FROM t', kind: 'read', reads: ['t'], cacheable: true, functions: ['public.random'] },
  { sql: 'SELECT * FROM t, my_srf(1) f', kind: 'read', reads: ['t'], cacheable: true, functions: ['my_srf'] },
]);

table('a read that locks rows is never served from cache', [
  { sql: 'SELECT * FROM t WHERE id = 1 FOR UPDATE', kind: 'read', reads: ['t'], reason: 'locking-clause', detail: 'FOR UPDATE' },
  { sql: 'SELECT * FROM t FOR SHARE', kind: 'read', reads: ['t'], reason: 'locking-clause', detail: 'FOR SHARE' },
  { sql: 'SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED', kind: 'read', reads: ['t'], reason: 'locking-clause', detail: 'FOR NO KEY UPDATE' },
  { sql: 'SELECT * FROM t FOR KEY SHARE OF t', kind: 'read', reads: ['t'], reason: 'locking-clause', detail: 'FOR KEY SHARE' },
  { sql: 'SELECT * FROM (SELECT * FROM t FOR UPDATE) s', kind: 'read', reads: ['t'], reason: 'locking-clause' },
]);

table('system catalogs and temporary relations are never cached', [
  { sql: 'SELECT * FROM pg_catalog.pg_class', kind: 'read', reads: ['pg_class'], reason: 'system-catalog', detail: 'pg_catalog.pg_class' },
  { sql: 'SELECT * FROM information_schema.columns', kind: 'read', reads: ['columns'], reason: 'system-catalog' },
  { sql: 'SELECT * FROM pg_stat_activity', kind: 'read', reads: ['pg_stat_activity'], reason: 'system-catalog', detail: 'pg_stat_activity' },
  { sql: 'SELECT * FROM pg_toast.pg_toast_1234', kind: 'read', reads: ['pg_toast_1234'], reason: 'system-catalog' },
  { sql: 'SELECT * FROM t JOIN pg_namespace n ON true', kind: 'read', reads: ['t', 'pg_namespace'], reason: 'system-catalog' },
  { sql: 'SELECT * FROM pg_temp.scratch', kind: 'read', reads: ['scratch'], reason: 'temp-table', detail: 'scratch' },
]);

const clockAndRandom: [string, string][] = [
  ['now()', 'now()'], ['statement_timestamp()', 'statement_timestamp()'], ['transaction_timestamp()', 'transaction_timestamp()'],
  ['age(ts)', 'age()'], ["current_setting('TimeZone')", 'current_setting()'], ['current_query()', 'current_query()'],
  ['pg_backend_pid()', 'pg_backend_pid()'], ["has_table_privilege('t', 'select')", 'has_table_privilege()'],
  ["to_regclass('t')", 'to_regclass()'], ['pg_table_is_visible(1)', 'pg_table_is_visible()'], ['format_type(23, -1)', 'format_type()'],
  ['obj_description(1)', 'obj_description()'], ['col_description(1, 1)', 'col_description()'],
  ["shobj_description(1, 'pg_database')", 'shobj_description()'], ['inet_client_addr()', 'inet_client_addr()'],
  ['inet_server_port()', 'inet_server_port()'], ['txid_current()', 'txid_current()'], ['version()', 'version()'],
  ["row_security_active('t')", 'row_security_active()'], ['random()', 'random()'], ['clock_timestamp()', 'clock_timestamp()'],
  ['timeofday()', 'timeofday()'], ["nextval('s')", 'nextval()'], ["currval('s')", 'currval()'], ["setval('s', 1)", 'setval()'],
  ['lastval()', 'lastval()'], ['gen_random_uuid()', 'gen_random_uuid()'], ['pg_sleep(0)', 'pg_sleep()'],
  ['pg_advisory_lock(1)', 'pg_advisory_lock()'], ["pg_notify('c', 'x')", 'pg_notify()'], ["mxid_age('1')", 'mxid_age()'],
  ["query_to_xml('select * from u', true, true, '')", 'query_to_xml()'], ["table_to_xml('u', true, true, '')", 'table_to_xml()'],
  ['pg_catalog.now()', 'now()'], ['CURRENT_DATE', 'current_date'], ['CURRENT_TIME', 'current_time'],
  ['CURRENT_TIMESTAMP', 'current_timestamp'], ['CURRENT_TIMESTAMP(3)', 'current_timestamp'], ['LOCALTIME', 'localtime'],
  ['LOCALTIMESTAMP', 'localtimestamp'],
];
table(
  'a read that calls a clock, random, session or catalog function is not cacheable (reason volatile-function)',
  [
    ...clockAndRandom.map(([call, detail]): Row => ({
      sql: `SELECT ${call} FROM t`, kind: 'read', reads: ['t'], reason: 'volatile-function', detail,
    })),
    { sql: "SELECT * FROM t WHERE created < now() - interval '1 day'", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'now()' },
    { sql: 'SELECT * FROM t TABLESAMPLE BERNOULLI (10)', kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'tablesample bernoulli' },
    { sql: 'SELECT rel::regclass FROM t', kind: 'read', reads: ['t'], reason: 'volatile-function', detail: '::regclass' },
  ],
);

table("a cast of a computed text to a date/time type may read the clock ('now' evaluated at run time)", [
  { sql: "SELECT ('no'||'w')::timestamptz FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamptz' },
  { sql: "SELECT reverse('won')::timestamptz FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamptz' },
  { sql: "SELECT CAST(lower('NOW') AS date) FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to date' },
  { sql: "SELECT (x || '')::time FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to time' },
  { sql: "SELECT (x || '')::timestamp with time zone FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamptz' },
  { sql: "SELECT (x || '')::time with time zone FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timetz' },
  { sql: "SELECT (x || '')::timestamp(3) FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamp' },
  { sql: "SELECT (x || '')::text::date FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to date' },
  { sql: "SELECT * FROM t WHERE d < (x || '')::timestamptz[]", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamptz' },
  { sql: "SELECT timestamptz('no' || 'w') FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to timestamptz' },
  { sql: "SELECT date(lower(x)) FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to date' },
  { sql: "SELECT pg_catalog.date(x || '') FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'cast of an expression to date' },
  // Plain columns stay cacheable (known limit: a text column holding 'now').
  { sql: 'SELECT x::timestamptz, CAST(y AS date), t.z::time, date(x), timestamptz(x) FROM t', kind: 'read', reads: ['t'], cacheable: true },
  { sql: "SELECT '2024-01-01'::text::date, timestamp '2024-01-01', $1::timestamptz, date($2) FROM t", kind: 'read', reads: ['t'], cacheable: true },
  { sql: "SELECT (x || ' days')::interval, lower(x)::text FROM t", kind: 'read', reads: ['t'], cacheable: true },
  { sql: "SELECT app.date(x || '') FROM t", kind: 'read', reads: ['t'], cacheable: true, functions: ['app.date'] },
]);

table('builtins and operators a statement uses are listed (user objects may shadow them)', [
  {
    sql: 'SELECT lower(a), LOWER(b), count(*), pg_catalog.upper(c) FROM t WHERE a = 1 AND b + 2 > c',
    kind: 'read', reads: ['t'], cacheable: true, builtins: ['lower', 'count', 'upper'], operators: ['=', '+', '>'],
  },
  { sql: 'SELECT my_func(a) FROM t', kind: 'read', reads: ['t'], cacheable: true, functions: ['my_func'], builtins: [], operators: [] },
  {
    sql: 'SELECT * FROM t WHERE a OPERATOR(pg_catalog.+) b #@@# c AND x LIKE y AND x NOT ILIKE y AND -x < 0',
    kind: 'read', reads: ['t'], cacheable: true, builtins: [], operators: ['+', '#@@#', '~~', '!~~*', '-', '<'],
  },
  {
    sql: 'SELECT * FROM t WHERE a IN (1, 2) AND b NOT IN (3) AND c IS DISTINCT FROM d AND e = ANY(f) AND g BETWEEN 1 AND 2',
    kind: 'read', reads: ['t'], cacheable: true, operators: ['=', '<>', '>=', '<='],
  },
  { sql: 'SELECT * FROM t WHERE a NOT BETWEEN 1 AND 2', kind: 'read', reads: ['t'], cacheable: true, operators: ['<', '>'] },
  {
    sql: 'SELECT CASE a WHEN 1 THEN 2 END FROM t WHERE b IN (SELECT c FROM u) AND d < ALL (SELECT e FROM u) ORDER BY a USING ~<~',
    kind: 'read', reads: ['t', 'u'], cacheable: true, operators: ['=', '<', '~<~'],
  },
  { sql: 'UPDATE t SET a = a || lower(b) WHERE id = $1', kind: 'write', writes: ['t'], builtins: ['lower'], operators: ['||', '='] },
  { sql: 'SELECT * FROM t; SELECT abs(a) FROM u WHERE a % 2 = 0', kind: 'read', reads: ['t', 'u'], reason: 'multi-statement', count: 2, effects: [NONE, NONE], builtins: ['abs'], operators: ['%', '='] },
  { sql: 'SELEC lower(a) = 1', kind: 'other', reason: 'parse-error', writesUnknown: true, builtins: [], operators: [] },
  { sql: '', kind: 'other', count: 0, effects: [], builtins: [], operators: [] },
]);

table('set_config() also taints the session', [
  {
    sql: "SELECT set_config('app.user', '7', false) FROM t", kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'set_config()',
    effects: [{ type: 'taint', reason: 'session-state', detail: 'set_config()' }],
  },
]);

table('every write names the tables it changes', [
  { sql: 'INSERT INTO t (a) VALUES (1)', kind: 'write', writes: ['t'], reason: 'not-a-read' },
  { sql: 'INSERT INTO t SELECT * FROM s', kind: 'write', writes: ['t'], reads: ['s'] },
  { sql: 'INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a', kind: 'write', writes: ['t'] },
  { sql: 'UPDATE t SET a = s.a FROM s WHERE s.id = t.id', kind: 'write', writes: ['t'], reads: ['s'] },
  { sql: 'DELETE FROM t USING s WHERE s.id = t.id', kind: 'write', writes: ['t'], reads: ['s'] },
  {
    sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)',
    kind: 'write', writes: ['t'], reads: ['s'],
  },
  { sql: 'WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved', kind: 'write', writes: ['a', 'b'] },
  { sql: 'WITH x AS (UPDATE a SET n = 1 RETURNING *) SELECT * FROM x JOIN c ON true', kind: 'write', writes: ['a'], reads: ['c'], reason: 'not-a-read' },
  { sql: 'TRUNCATE a, b', kind: 'write', writes: ['a', 'b'] },
  { sql: 'TRUNCATE a CASCADE', kind: 'write', writes: ['a'], writesUnknown: true },
  { sql: 'COPY t FROM STDIN', kind: 'write', writes: ['t'] },
  { sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv', kind: 'write', writes: ['mv'] },
  { sql: 'SELECT * INTO archive FROM t', kind: 'write', writes: ['archive'], reads: ['t'], reason: 'select-into' },
  { sql: 'CREATE TABLE snap AS SELECT * FROM t', kind: 'write', writes: ['snap'], reads: ['t'], reason: 'select-into' },
  {
    sql: 'SELECT * INTO TEMP scratch FROM t', kind: 'write', writes: ['scratch'], reads: ['t'], reason: 'select-into',
    effects: [{ type: 'taint', reason: 'temp-table', detail: 'temporary relation scratch' }],
  },
  { sql: 'COPY (DELETE FROM t RETURNING *) TO STDOUT', kind: 'write', writes: ['t'] },
  { sql: 'CREATE TABLE snap AS EXECUTE p', kind: 'write', writes: ['snap'], reason: 'select-into', writesUnknown: true },
]);

table('reading-only COPY is other, with the tables it reads', [
  { sql: 'COPY t TO STDOUT', kind: 'other', reads: ['t'] },
  { sql: 'COPY (SELECT * FROM t JOIN u ON true) TO STDOUT', kind: 'other', reads: ['t', 'u'] },
]);

table('DDL writes the relations it changes (both names of a rename or a partition)', [
  { sql: 'CREATE TABLE t (id int)', kind: 'ddl', writes: ['t'] },
  { sql: 'CREATE TABLE c PARTITION OF p FOR VALUES IN (1)', kind: 'ddl', writes: ['c', 'p'] },
  { sql: 'ALTER TABLE t ADD COLUMN c int', kind: 'ddl', writes: ['t'] },
  { sql: 'ALTER TABLE a RENAME TO b', kind: 'ddl', writes: ['a', 'b'] },
  { sql: 'ALTER VIEW v RENAME TO w', kind: 'ddl', writes: ['v', 'w'] },
  { sql: 'ALTER TABLE t RENAME COLUMN a TO b', kind: 'ddl', writes: ['t'] },
  { sql: 'ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)', kind: 'ddl', writes: ['p', 'c'] },
  { sql: 'ALTER TABLE p DETACH PARTITION c', kind: 'ddl', writes: ['p', 'c'] },
  {
    sql: 'ALTER TABLE a SET SCHEMA archive', kind: 'ddl', writes: ['a'],
    relations: [{ schema: null, name: 'a' }, { schema: 'archive', name: 'a' }],
  },
  { sql: 'DROP TABLE a, b', kind: 'ddl', writes: ['a', 'b'] },
  { sql: 'DROP VIEW IF EXISTS s.v', kind: 'ddl', writes: ['v'], relations: [{ schema: 's', name: 'v' }] },
  { sql: 'CREATE OR REPLACE VIEW v AS SELECT * FROM t', kind: 'ddl', writes: ['v'], reads: ['t'] },
  { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', kind: 'ddl', writes: ['mv'], reads: ['t'] },
  { sql: 'CREATE INDEX i ON t (a)', kind: 'ddl', writes: ['t'] },
  { sql: 'CREATE SEQUENCE seq', kind: 'ddl', writes: ['seq'] },
  { sql: 'ALTER SEQUENCE seq RESTART', kind: 'ddl', writes: ['seq'] },
  { sql: 'GRANT SELECT ON t, s.u TO bob', kind: 'ddl', writes: ['t', 'u'] },
  { sql: 'REVOKE ALL ON t FROM bob', kind: 'ddl', writes: ['t'] },
  { sql: "COMMENT ON TABLE t IS 'x'", kind: 'ddl', writes: ['t'] },
  { sql: "COMMENT ON COLUMN s.t.c IS 'x'", kind: 'ddl', writes: ['t'] },
  { sql: 'CREATE TYPE mood AS ENUM (\'ok\')', kind: 'ddl' },
]);

table('DDL whose reach we cannot name invalidates everything (writesUnknown)', [
  { sql: 'DROP TABLE a CASCADE', kind: 'ddl', writes: ['a'], writesUnknown: true },
  { sql: 'DROP INDEX i', kind: 'ddl', writes: ['i'], writesUnknown: true },
  { sql: 'DROP SCHEMA s CASCADE', kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE SCHEMA s', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO bob', kind: 'ddl', writesUnknown: true },
  { sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ delete from t $$', kind: 'ddl', writesUnknown: true },
  { sql: 'ALTER FUNCTION f() STABLE', kind: 'ddl', writesUnknown: true },
  { sql: 'DROP FUNCTION f', kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', kind: 'ddl', writes: ['t'], writesUnknown: true },
  { sql: 'DROP TRIGGER trg ON s.t', kind: 'ddl', writes: ['t'], writesUnknown: true },
  { sql: 'CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING', kind: 'ddl', writes: ['t'], writesUnknown: true },
  { sql: 'CREATE POLICY p ON t USING (owner = current_user)', kind: 'ddl', writes: ['t'], writesUnknown: true },
  { sql: 'CREATE ROLE bob', kind: 'ddl', writesUnknown: true },
  { sql: 'ALTER ROLE bob SET search_path = x', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT admin TO bob', kind: 'ddl', writesUnknown: true },
  { sql: 'REASSIGN OWNED BY bob TO alice', kind: 'ddl', writesUnknown: true },
  { sql: "SECURITY LABEL ON TABLE t IS 'x'", kind: 'ddl', writesUnknown: true },
  { sql: "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE EXTENSION hstore', kind: 'ddl', writesUnknown: true },
]);

const tempTaint = (name: string): SessionEffect[] => [{ type: 'taint', reason: 'temp-table', detail: `temporary relation ${name}` }];
table('creating a temporary relation taints the session (reason temp-table)', [
  { sql: 'CREATE TEMP TABLE scratch (a int)', kind: 'ddl', writes: ['scratch'], effects: tempTaint('scratch') },
  { sql: 'CREATE TEMPORARY TABLE scratch AS SELECT * FROM t', kind: 'write', writes: ['scratch'], reads: ['t'], effects: tempTaint('scratch') },
  { sql: 'CREATE TABLE pg_temp.scratch (a int)', kind: 'ddl', writes: ['scratch'], effects: tempTaint('scratch') },
  { sql: 'CREATE TEMP VIEW tv AS SELECT * FROM t', kind: 'ddl', writes: ['tv'], reads: ['t'], effects: tempTaint('tv') },
]);

table('transaction control is flagged', [
  'BEGIN', 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT a',
  'RELEASE SAVEPOINT a', 'ROLLBACK TO SAVEPOINT a', "PREPARE TRANSACTION 'x'",
].map((sql): Row => ({ sql, kind: 'txn-control', txn: true })));

const set = (name: string, value: string | null, local = false): SessionEffect[] => [{ type: 'set', name, value, local }];
const taint = (detail: string): SessionEffect[] => [{ type: 'taint', reason: 'session-state', detail }];
table('SET of a setting the key holds becomes a set effect with the value the server would show', [
  { sql: "SET TimeZone = 'UTC'", kind: 'session-set', effects: set('timezone', 'UTC') },
  { sql: "SET TIME ZONE 'Europe/Paris'", kind: 'session-set', effects: set('timezone', 'Europe/Paris') },
  { sql: 'SET LOCAL search_path TO app, public', kind: 'session-set', effects: set('search_path', 'app, public', true) },
  { sql: 'SET search_path = "MySchema", \'$user\'', kind: 'session-set', effects: set('search_path', '"MySchema", "$user"') },
  { sql: 'SET datestyle TO iso, mdy', kind: 'session-set', effects: set('datestyle', 'iso, mdy') },
  { sql: 'SET extra_float_digits = 3', kind: 'session-set', effects: set('extra_float_digits', '3') },
  { sql: 'SET extra_float_digits = 0', kind: 'session-set', effects: set('extra_float_digits', '0') },
  { sql: "SET NAMES 'UTF8'", kind: 'session-set', effects: set('client_encoding', 'UTF8') },
  { sql: 'SET row_security = off', kind: 'session-set', effects: set('row_security', 'off') },
  { sql: 'SET client_encoding TO DEFAULT', kind: 'session-set', effects: set('client_encoding', null) },
  { sql: 'RESET bytea_output', kind: 'session-set', effects: set('bytea_output', null) },
  { sql: 'SET LOCAL timezone TO DEFAULT', kind: 'session-set', effects: set('timezone', null, true) },
]);

table('SET of a setting that cannot change a result has no effect', [
  "SET statement_timeout = '5s'", "SET application_name = 'web'", 'SET enable_seqscan = off', 'SET jit = off',
  "SET work_mem = '64MB'", 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
  'SET log_min_duration_statement = 0',
].map((sql): Row => ({ sql, kind: 'session-set' })));

table('SET of anything the key cannot hold taints the session (reason session-state)', [
  { sql: "SET app.tenant_id = '42'", kind: 'session-set', effects: taint('SET app.tenant_id') },
  { sql: 'SET ROLE admin', kind: 'session-set', effects: taint('SET role') },
  { sql: 'SET SESSION AUTHORIZATION bob', kind: 'session-set', effects: taint('SET session_authorization') },
  { sql: 'RESET ROLE', kind: 'session-set', effects: taint('SET role') },
  { sql: "SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", kind: 'session-set', effects: taint('SET timezone (value not understood)') },
]);

table('RESET ALL / DISCARD ALL / DISCARD TEMP / DEALLOCATE reset the session or its prepared statements', [
  { sql: 'RESET ALL', kind: 'session-set', effects: [{ type: 'reset-all' }] },
  { sql: 'DISCARD ALL', kind: 'session-set', effects: [{ type: 'reset-all' }, { type: 'deallocate', name: null }, { type: 'discard-temp' }] },
  { sql: 'DISCARD TEMP', kind: 'session-set', effects: [{ type: 'discard-temp' }] },
  { sql: 'DISCARD TEMPORARY', kind: 'session-set', effects: [{ type: 'discard-temp' }] },
  { sql: 'DISCARD SEQUENCES', kind: 'session-set' },
  { sql: 'DISCARD PLANS', kind: 'session-set' },
  { sql: 'DEALLOCATE PREPARE stmt1', kind: 'session-set', effects: [{ type: 'deallocate', name: 'stmt1' }] },
  { sql: 'DEALLOCATE ALL', kind: 'session-set', effects: [{ type: 'deallocate', name: null }] },
]);

table('EXPLAIN is never cached, but counts the writes of what it may run', [
  { sql: 'EXPLAIN SELECT * FROM t', kind: 'other', reads: ['t'] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM t', kind: 'other', writes: ['t'] },
  { sql: 'EXPLAIN (ANALYZE false) UPDATE t SET a = 1', kind: 'other', writes: ['t'] },
]);

table('utility statements are other and write nothing', [
  'SHOW TimeZone', 'LISTEN ch', 'UNLISTEN *', "NOTIFY ch, 'x'", 'VACUUM', 'CHECKPOINT',
  'FETCH 10 FROM c', 'CLOSE c',
].map((sql): Row => ({ sql, kind: 'other' })).concat([
  { sql: 'VACUUM ANALYZE t', kind: 'other', reads: ['t'] },
  { sql: 'ANALYZE t', kind: 'other', reads: ['t'] },
  { sql: 'VACUUM t', kind: 'other', reads: ['t'] },
  { sql: 'REINDEX TABLE t', kind: 'other', reads: ['t'] },
  { sql: 'LOCK TABLE t IN ACCESS EXCLUSIVE MODE', kind: 'other', reads: ['t'] },
  { sql: 'DECLARE c CURSOR FOR SELECT * FROM t', kind: 'other', reads: ['t'] },
]));

table('VACUUM FULL and CLUSTER rewrite the table (ctid, physical order): they write it, or every table', [
  { sql: 'VACUUM FULL t', kind: 'other', writes: ['t'] },
  { sql: 'VACUUM FULL ANALYZE t (a), s.u', kind: 'other', writes: ['t', 'u'] },
  { sql: 'VACUUM (FULL, VERBOSE) t', kind: 'other', writes: ['t'] },
  { sql: 'VACUUM (FULL 1) t', kind: 'other', writes: ['t'] },
  { sql: 'VACUUM FULL', kind: 'other', writesUnknown: true },
  { sql: 'CLUSTER t', kind: 'other', writes: ['t'] },
  { sql: 'CLUSTER s.t USING i', kind: 'other', writes: ['t'], relations: [{ schema: 's', name: 't' }] },
  { sql: 'CLUSTER', kind: 'other', writesUnknown: true },
]);

table('COMMIT PREPARED makes visible writes of a transaction prepared anywhere: everything may change', [
  { sql: "COMMIT PREPARED 'tx1'", kind: 'txn-control', txn: true, writesUnknown: true },
  { sql: "ROLLBACK PREPARED 'tx1'", kind: 'txn-control', txn: true, writesUnknown: true },
]);

table('SQL PREPARE takes a name protocol-level statements share: the session must learn it', [
  { sql: 'PREPARE p AS SELECT 1', kind: 'other', effects: [{ type: 'prepare', name: 'p' }] },
  { sql: 'PREPARE p AS INSERT INTO t VALUES (1)', kind: 'other', effects: [{ type: 'prepare', name: 'p' }] },
]);

table('statements that run SQL we cannot see may write anything, and may change the session', [
  { sql: 'CALL p()', kind: 'other', writesUnknown: true, effects: taint('CALL may change session settings') },
  { sql: 'DO $$ BEGIN DELETE FROM t; END $$', kind: 'other', writesUnknown: true, effects: taint('DO may change session settings') },
  { sql: 'EXECUTE p(1)', kind: 'other', writesUnknown: true, effects: taint('EXECUTE may change session settings') },
  { sql: "LOAD 'auto_explain'", kind: 'other', writesUnknown: true },
]);

table('several statements are never cached but still report every table and effect', [
  { sql: 'SELECT * FROM a; SELECT * FROM b', kind: 'read', reads: ['a', 'b'], reason: 'multi-statement', count: 2, effects: [NONE, NONE] },
  { sql: 'BEGIN; UPDATE t SET a = 1; COMMIT', kind: 'write', writes: ['t'], reason: 'multi-statement', count: 3, effects: [NONE, NONE, NONE], txn: true },
  { sql: 'SET search_path = x; SELECT * FROM t', kind: 'session-set', reads: ['t'], reason: 'multi-statement', count: 2, effects: [...set('search_path', 'x'), NONE] },
  {
    sql: 'SELECT 1; CALL p()', kind: 'other', reason: 'multi-statement', count: 2, writesUnknown: true,
    effects: [NONE, ...taint('CALL may change session settings')],
  },
]);

table('an empty query is a statement count of 0, not cacheable', [
  { sql: '', kind: 'other', count: 0, effects: [] },
  { sql: '  ;  ', kind: 'other', count: 0, effects: [] },
  { sql: '-- only a comment', kind: 'other', count: 0, effects: [] },
]);

table('a text the parser rejects is not cached, and may write anything unless it visibly starts read-only', [
  { sql: 'SELEC * FROM t', kind: 'other', reason: 'parse-error', detail: 'syntax error at or near "SELEC"', writesUnknown: true },
  { sql: 'SELECT * FROM t WHERE', kind: 'other', reason: 'parse-error', writesUnknown: false },
  { sql: "SELECT * FROM t WHERE x = 'unterminated", kind: 'other', reason: 'parse-error', writesUnknown: false },
  { sql: 'VALUES (1', kind: 'other', reason: 'parse-error', writesUnknown: false },
  { sql: 'EXPLAIN SELECT FROM WHERE', kind: 'other', reason: 'parse-error', writesUnknown: false },
  { sql: 'DELETE FROM t WHERE', kind: 'other', reason: 'parse-error', writesUnknown: true },
  { sql: 'EXPLAIN ANALYZE DELETE FROM t WHERE', kind: 'other', reason: 'parse-error', writesUnknown: true },
  { sql: 'SELECT * INTO x FROM t WHERE', kind: 'other', reason: 'parse-error', writesUnknown: true },
  { sql: 'WITH x AS (DELETE FROM t) SELECT FROM WHERE', kind: 'other', reason: 'parse-error', writesUnknown: true },
  { sql: 'SELECT 1; DELETE FROM t WHERE', kind: 'other', reason: 'parse-error', writesUnknown: true, count: 2, effects: [NONE, NONE] },
  { sql: 'SELECT 1\u0000; DELETE FROM t', kind: 'other', reason: 'parse-error', writesUnknown: true, count: 2, effects: [NONE, NONE] },
]);

describe('loading', () => {
  it('classifies the same text the same way every time (no state between calls)', () => {
    const a = classifyPostgres('SELECT * FROM t WHERE id = 1');
    const b = classifyPostgres('SELECT * FROM t WHERE id = 1');
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
  });
});
