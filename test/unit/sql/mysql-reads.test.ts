// classifyMysql on reads that must not be cached, and on the syntax
// node-sql-parser rejects: every row is a result that would be wrong for
// some later client if it were cached (or a safe read lost to a parser gap).

import { describe, expect, it } from 'vitest';
import { classifyMysql } from '../../../src/sql/mysql-parser.js';
import { type Row, table } from './mysql-rows.js';

const volatile = (expr: string, detail: string, writes: string[] = []): Row => ({
  sql: `SELECT ${expr} FROM t`,
  kind: 'read',
  reads: ['t'],
  writes,
  reason: 'volatile-function',
  detail,
});

table('the clock, randomness, connection state, locks and sequences are never cached', [
  volatile('NOW()', 'now()'),
  volatile('now(6)', 'now()'),
  volatile('CURRENT_TIMESTAMP', 'current_timestamp'),
  volatile('CURRENT_TIMESTAMP()', 'current_timestamp()'),
  volatile('LOCALTIME', 'localtime'),
  volatile('LOCALTIMESTAMP()', 'localtimestamp()'),
  volatile('CURDATE()', 'curdate()'),
  volatile('a + CURRENT_DATE', 'current_date'),
  volatile('CURTIME()', 'curtime()'),
  volatile('CURRENT_TIME', 'current_time'),
  volatile('UTC_DATE()', 'utc_date()'),
  volatile('UTC_TIME', 'utc_time'),
  volatile('UTC_TIMESTAMP', 'utc_timestamp'),
  volatile('SYSDATE()', 'sysdate()'),
  volatile('UNIX_TIMESTAMP()', 'unix_timestamp()'),
  volatile('RAND()', 'rand()'),
  volatile('UUID()', 'uuid()'),
  volatile('UUID_SHORT()', 'uuid_short()'),
  volatile('SYS_GUID()', 'sys_guid()'),
  volatile('LAST_INSERT_ID()', 'last_insert_id()'),
  volatile('FOUND_ROWS()', 'found_rows()'),
  volatile('ROW_COUNT()', 'row_count()'),
  volatile('CONNECTION_ID()', 'connection_id()'),
  volatile("GET_LOCK('x', 1)", 'get_lock()'),
  volatile("RELEASE_LOCK('x')", 'release_lock()'),
  volatile('RELEASE_ALL_LOCKS()', 'release_all_locks()'),
  volatile("IS_FREE_LOCK('x')", 'is_free_lock()'),
  volatile("IS_USED_LOCK('x')", 'is_used_lock()'),
  volatile('SLEEP(0)', 'sleep()'),
  volatile('BENCHMARK(1, 1)', 'benchmark()'),
  volatile("MASTER_POS_WAIT('f', 4)", 'master_pos_wait()'),
  volatile("MASTER_GTID_WAIT('0-1-1')", 'master_gtid_wait()'),
  volatile("LOAD_FILE('/etc/hosts')", 'load_file()'),
  volatile('CURRENT_ROLE()', 'current_role()'),
  volatile('VERSION()', 'version()'),
  volatile('DEFAULT(a)', 'default()'),
  volatile('LASTVAL(s)', 'lastval()'),
  volatile('PREVIOUS VALUE FOR s', 'previous value for'),
  // NEXTVAL / SETVAL / NEXT VALUE FOR advance the sequence, a table in MariaDB.
  volatile('NEXTVAL(s)', 'nextval()', ['s']),
  volatile('SETVAL(db.s, 10)', 'setval()', ['db.s']),
  volatile('NEXT VALUE FOR db.s', 'next value for', ['db.s']),
  { sql: 'SELECT * FROM t WHERE d > NOW() - INTERVAL 1 DAY', kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'now()' },
  { sql: 'SELECT * FROM t ORDER BY RAND() LIMIT 1', kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'rand()' },
  { sql: 'SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c < UTC_TIMESTAMP())', kind: 'read', reads: ['t', 'u'], reason: 'volatile-function' },
  { sql: 'SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10', kind: 'read', reads: ['t'], reason: 'volatile-function', detail: 'SQL_CALC_FOUND_ROWS' },
]);

const cached = (sql: string, reads = ['t']): Row => ({ sql, kind: 'read', reads, cacheable: true });

table('deterministic builtins (given the key: user, database, keyed settings) leave a read cacheable', [
  cached('SELECT USER(), CURRENT_USER(), CURRENT_USER, SESSION_USER(), SYSTEM_USER(), DATABASE(), SCHEMA() FROM t'),
  cached('SELECT UNIX_TIMESTAMP(d), FROM_UNIXTIME(e), DATE_FORMAT(d, ?), CONVERT_TZ(d, ?, ?), FORMAT(x, 2) FROM t'),
  cached("SELECT DATE_ADD(d, INTERVAL 1 DAY), DATE_SUB(d, INTERVAL ? HOUR), d + INTERVAL 1 MONTH, EXTRACT(YEAR FROM d), TIMESTAMPDIFF(DAY, a, b) FROM t"),
  cached("SELECT JSON_EXTRACT(a, '$.x'), JSON_UNQUOTE(b->'$.y'), a->>'$.z', JSON_OBJECT('k', a), JSON_CONTAINS(a, '1') FROM t"),
  cached('SELECT CAST(a AS CHAR), CONVERT(a USING utf8mb4), CONVERT(a, DECIMAL(10, 2)), BINARY a FROM t'),
  cached("SELECT COUNT(*), COUNT(DISTINCT a), SUM(a), AVG(a), MIN(a), MAX(a), GROUP_CONCAT(a ORDER BY a SEPARATOR ','), STD(a), VARIANCE(a), BIT_OR(a) FROM t"),
  cached('SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b), RANK() OVER w, LAG(a) OVER w FROM t WINDOW w AS (ORDER BY a)'),
  cached('SELECT IF(a, 1, 2), IFNULL(a, 0), NULLIF(a, 0), COALESCE(a, b), CASE WHEN a THEN 1 ELSE 2 END, CASE a WHEN 1 THEN 2 END FROM t'),
  cached("SELECT REGEXP_REPLACE(a, 'x', 'y'), a REGEXP '^x', INET_ATON(b), MD5(c), SHA2(c, 256), LPAD(a, 5, '0'), TRIM(a), SUBSTRING(a, 1, 2) FROM t"),
  cached("SELECT * FROM t WHERE MATCH (a, b) AGAINST ('x' IN BOOLEAN MODE)"),
  cached("SELECT * FROM t WHERE MATCH (a) AGAINST ('x' IN NATURAL LANGUAGE MODE WITH QUERY EXPANSION)"),
]);

table('calls that are not known builtins are listed for the catalog look-up (a stored function may write)', [
  // …and may SET session variables or create a temporary table: the session stops caching.
  { sql: 'SELECT myfn(a) FROM t', kind: 'read', reads: ['t'], cacheable: true, functions: ['myfn'], effects: [{ type: 'taint', reason: 'session-state', detail: 'myfn() may change session settings or create temporary tables' }] },
  { sql: 'SELECT MyFn(a), Db.Fn(b) FROM t', kind: 'read', reads: ['t'], cacheable: true, functions: ['myfn', 'db.fn'], effects: [{ type: 'taint', reason: 'session-state', detail: 'myfn() may change session settings or create temporary tables' }] },
  { sql: 'SELECT * FROM t WHERE a = `f`(1) AND b IN (SELECT g(c) FROM u)', kind: 'read', reads: ['t', 'u'], cacheable: true, functions: ['f', 'g'], effects: [{ type: 'taint', reason: 'session-state', detail: 'f() may change session settings or create temporary tables' }] },
  { sql: 'SELECT myagg(a) FROM t GROUP BY b', kind: 'read', reads: ['t'], cacheable: true, functions: ['myagg'], effects: [{ type: 'taint', reason: 'session-state', detail: 'myagg() may change session settings or create temporary tables' }] },
]);

table('user and system variables make a read session-dependent', [
  { sql: 'SELECT @v FROM t', kind: 'read', reads: ['t'], reason: 'session-state', detail: '@v' },
  { sql: 'SELECT * FROM t WHERE a = @v', kind: 'read', reads: ['t'], reason: 'session-state', detail: '@v' },
  { sql: 'SELECT @n := @n + 1, a FROM t', kind: 'read', reads: ['t'], reason: 'session-state', detail: '@n' },
  { sql: "SELECT @'my var' FROM t", kind: 'read', reads: ['t'], reason: 'session-state', detail: "@'my var'" },
  { sql: 'SELECT @@sql_mode FROM t', kind: 'read', reads: ['t'], reason: 'session-state', detail: '@@sql_mode' },
  { sql: 'SELECT * FROM t WHERE a = @@session.time_zone', kind: 'read', reads: ['t'], reason: 'session-state', detail: '@@session.time_zone' },
  { sql: "SELECT /*+ SET_VAR(sql_mode = '') */ * FROM t", kind: 'read', reads: ['t'], reason: 'session-state', detail: 'SET_VAR hint' },
]);

table('locking clauses, SELECT … INTO and SQL_NO_CACHE are never cached', [
  ...['FOR UPDATE', 'FOR SHARE', 'FOR UPDATE NOWAIT', 'FOR UPDATE SKIP LOCKED', 'FOR SHARE OF t NOWAIT', 'FOR UPDATE WAIT 5'].map(
    (clause): Row => ({ sql: `SELECT * FROM t WHERE id = 1 ${clause}`, kind: 'read', reads: ['t'], reason: 'locking-clause', detail: clause.split(' ').slice(0, 2).join(' ') }),
  ),
  { sql: 'SELECT * FROM t LOCK IN SHARE MODE', kind: 'read', reads: ['t'], reason: 'locking-clause', detail: 'LOCK IN SHARE MODE' },
  { sql: 'SELECT * FROM (SELECT * FROM t FOR UPDATE) d', kind: 'read', reads: ['t'], reason: 'locking-clause' },
  { sql: "SELECT * FROM t INTO OUTFILE '/tmp/x'", kind: 'read', reads: ['t'], reason: 'select-into', detail: 'INTO OUTFILE' },
  { sql: "SELECT * FROM t INTO DUMPFILE '/tmp/x'", kind: 'read', reads: ['t'], reason: 'select-into', detail: 'INTO DUMPFILE' },
  { sql: 'SELECT a INTO @a FROM t', kind: 'read', reads: ['t'], reason: 'select-into', detail: 'INTO @var' },
  { sql: 'SELECT a, b FROM t INTO @a, @b', kind: 'read', reads: ['t'], reason: 'select-into', detail: 'INTO @var' },
  { sql: 'SELECT SQL_NO_CACHE * FROM t', kind: 'read', reads: ['t'], reason: 'hint', detail: 'SQL_NO_CACHE' },
  { sql: 'SELECT /*!40001 SQL_NO_CACHE */ * FROM t', kind: 'read', reads: ['t'], reason: 'hint', detail: 'SQL_NO_CACHE' },
]);

table('information_schema, performance_schema, mysql and sys are system catalogs', [
  { sql: 'SELECT * FROM information_schema.tables', kind: 'read', reads: ['information_schema.tables'], reason: 'system-catalog', detail: 'information_schema.tables' },
  { sql: 'SELECT * FROM INFORMATION_SCHEMA.COLUMNS', kind: 'read', reads: ['information_schema.columns'], reason: 'system-catalog' },
  { sql: 'SELECT * FROM performance_schema.threads', kind: 'read', reads: ['performance_schema.threads'], reason: 'system-catalog' },
  { sql: 'SELECT * FROM t JOIN mysql.user u ON 1', kind: 'read', reads: ['t', 'mysql.user'], reason: 'system-catalog', detail: 'mysql.user' },
  { sql: 'SELECT * FROM sys.version', kind: 'read', reads: ['sys.version'], reason: 'system-catalog' },
]);

const rewritten = (sql: string, reads: string[] = ['t']): Row => ({ sql, kind: 'read', reads, cacheable: true });

table('syntax node-sql-parser rejects but that changes no table or call is still understood', [
  rewritten('SELECT * FROM t FORCE INDEX (i) WHERE a = 1'),
  rewritten('SELECT * FROM t USE KEY (i) IGNORE INDEX FOR JOIN (j) WHERE a = 1'),
  rewritten('SELECT * FROM t AS x USE INDEX FOR ORDER BY (i) ORDER BY a'),
  rewritten('SELECT STRAIGHT_JOIN * FROM a JOIN b ON a.x = b.x', ['a', 'b']),
  rewritten('SELECT HIGH_PRIORITY SQL_SMALL_RESULT STRAIGHT_JOIN * FROM a JOIN b ON 1', ['a', 'b']),
  rewritten("SELECT * FROM t WHERE a = _utf8mb4'x' COLLATE utf8mb4_bin"),
  rewritten("SELECT * FROM t WHERE a = _binary 'x' OR b = _latin1 X'41'"),
  rewritten('SELECT * FROM t WHERE a <=> ?'),
  rewritten('SELECT * FROM t PARTITION (p0, p1)'),
  rewritten("SELECT * FROM t WHERE a SOUNDS LIKE 'x'"),
  rewritten("SELECT * FROM t WHERE a = 'x' 'y'"),
  rewritten("SELECT * FROM t WHERE a = X'ff' OR b = 0x1f OR c = b'01' OR d = N'x' OR e = 1.5e3 OR f = \"dq\""),
  // The server runs executable comments: their tables count.
  rewritten('SELECT * FROM t /*! JOIN u ON 1 */', ['t', 'u']),
  rewritten('SELECT * FROM t /*M!100100 JOIN u ON 1 */', ['t', 'u']),
  rewritten('SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t'),
  rewritten('/*+ not a hint here */ SELECT * FROM t'),
  // `1--1` is 1 - (-1) to MySQL, not a comment: u must not be lost.
  rewritten('SELECT * FROM t WHERE a = 1--1\nUNION SELECT * FROM u', ['t', 'u']),
  rewritten('SELECT * FROM t WHERE a = 1 -- comment\n', ['t']),
  rewritten('SELECT * FROM t # comment UNION SELECT * FROM u', ['t']),
]);

table('a read the parser rejects: never cached; may write only if it calls something unknown', [
  { sql: 'SELECT JSON_ARRAYAGG(a ORDER BY b) FROM t', kind: 'read', reason: 'parse-error' },
  { sql: 'SELECT * FROM t WHERE a IN (SELECT b FROM u) IS TRUE', kind: 'read', reason: 'parse-error' },
  { sql: 'VALUES ROW(1, 2)', kind: 'read', reason: 'parse-error' },
  { sql: "SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01'", kind: 'read', reason: 'parse-error' },
  { sql: 'WITH c AS (SELECT 1) SELECT JSON_ARRAYAGG(a ORDER BY b) FROM c', kind: 'read', reason: 'parse-error' },
  { sql: 'SELECT myagg(DISTINCT x) FROM t', kind: 'read', reason: 'parse-error', writesUnknown: true },
  { sql: 'SELECT db.f(JSON_ARRAYAGG(a ORDER BY b)) FROM t', kind: 'read', reason: 'parse-error', writesUnknown: true },
  // A relation named by a string (ANSI_QUOTES' "t"): which table is not known here.
  { sql: 'SELECT * FROM "t"', kind: 'read', reason: 'parse-error', detail: 'a relation named by a string' },
  { sql: "SELECT * FROM db.'t'", kind: 'read', reason: 'parse-error' },
  { sql: "SELECT * FROM t WHERE a = 'unterminated", kind: 'read', reason: 'parse-error', detail: 'unterminated quote or comment' },
  { sql: 'SELECT * FROM t /* unterminated', kind: 'read', reason: 'parse-error' },
  { sql: 'SELECT * FROM `t', kind: 'read', reason: 'parse-error' },
]);

table('a write the parser rejects may write anything; the target it shows plainly is named', [
  { sql: 'INSERT INTO t VALUES (1) RETURNING id', kind: 'write', writes: ['t'], reason: 'parse-error', writesUnknown: true },
  { sql: 'INSERT DELAYED IGNORE db.t VALUES (1) RETURNING id', kind: 'write', writes: ['db.t'], reason: 'parse-error', writesUnknown: true },
  { sql: 'REPLACE INTO t VALUES (1) RETURNING *', kind: 'write', writes: ['t'], reason: 'parse-error', writesUnknown: true },
  { sql: 'DELETE FROM t WHERE a = 1 RETURNING *', kind: 'write', writes: ['t'], reason: 'parse-error', writesUnknown: true },
  { sql: 'WITH c AS (SELECT 1) UPDATE t SET a = JSON_ARRAYAGG(b ORDER BY c)', kind: 'write', writes: ['t'], reason: 'parse-error', writesUnknown: true },
  { sql: "UPDATE t SET a = 'unterminated", kind: 'write', writes: ['t'], reason: 'parse-error', writesUnknown: true },
  { sql: 'FROBNICATE t', kind: 'other', reason: 'parse-error', detail: 'not understood: FROBNICATE', writesUnknown: true },
  { sql: 'IMPORT TABLE FROM x', kind: 'other', reason: 'parse-error', writesUnknown: true },
]);

describe('NO_BACKSLASH_ESCAPES', () => {
  // With escapes the first literal ends at the second quote; without, at the
  // first: the tables the server reads differ, and so must ours.
  const sql = "SELECT 'a\\' FROM t WHERE x = ' UNION SELECT * FROM secret -- '";

  it('strings are read the way the server reads them under each mode', () => {
    expect(classifyMysql(sql).reads).toEqual(['secret']);
    expect(classifyMysql(sql, { backslashEscapes: true }).reads).toEqual(['secret']);
    expect(classifyMysql(sql, { backslashEscapes: false }).reads).toEqual(['t']);
  });

  it('a doubled quote is a quote in both modes', () => {
    const c = classifyMysql("SELECT * FROM t WHERE a = 'it''s; SELECT * FROM u'", { backslashEscapes: false });
    expect(c.reads).toEqual(['t']);
    expect(c.statementCount).toBe(1);
  });
});
