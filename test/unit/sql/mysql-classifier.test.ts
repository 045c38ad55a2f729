// classifyMysql: one row per rule. A wrong answer here is a stale row served
// from cache (a write not seen, a volatile read cached) or a leak (a session
// change the key does not hold), so every table names what it defends.

import { describe, expect, it } from 'vitest';
import type { SessionEffect } from '../../../src/core/types.js';
import { classifyMysql } from '../../../src/sql/mysql-parser.js';
import { type Row, table } from './mysql-rows.js';

const NONE: SessionEffect = { type: 'none' };

const read = (sql: string, reads: string[]): Row => ({ sql, kind: 'read', reads, cacheable: true });

table('a read names every table it reads (joins, subqueries, UNION, derived tables) and is cacheable', [
  read('SELECT * FROM users WHERE id = ?', ['users']),
  read('SELECT `users`.* FROM `users` WHERE `users`.`id` = 42 LIMIT 1', ['users']),
  read('SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id) RIGHT OUTER JOIN d ON d.x = c.x', ['a', 'b', 'c', 'd']),
  read('SELECT * FROM a, b AS x, c y', ['a', 'b', 'c']),
  read('SELECT * FROM a CROSS JOIN b STRAIGHT_JOIN c ON b.x = c.x', ['a', 'b', 'c']),
  read('SELECT * FROM a WHERE x IN (SELECT y FROM b WHERE z = (SELECT max(z) FROM c))', ['a', 'b', 'c']),
  read('SELECT a.id, (SELECT count(*) FROM b WHERE b.a_id = a.id) AS n FROM a', ['a', 'b']),
  read('SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id) AND NOT EXISTS (SELECT 1 FROM c)', ['a', 'b', 'c']),
  read('SELECT * FROM a WHERE x = ANY (SELECT y FROM b) AND z > ALL (SELECT y FROM c) AND w < SOME (SELECT y FROM d)', ['a', 'b', 'c', 'd']),
  read('SELECT * FROM (SELECT * FROM b) d JOIN (SELECT x FROM c UNION SELECT x FROM e) f ON d.x = f.x', ['b', 'c', 'e']),
  read('SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.id = a.id) l', ['a', 'b']),
  read('SELECT x FROM a UNION SELECT x FROM b UNION ALL SELECT x FROM c', ['a', 'b', 'c']),
  read('(SELECT x FROM a) UNION (SELECT x FROM b) ORDER BY x LIMIT 5', ['a', 'b']),
  read('SELECT a FROM t GROUP BY a HAVING count(*) > (SELECT count(*) FROM u) ORDER BY (SELECT 1 FROM v LIMIT 1)', ['t', 'u', 'v']),
  read('SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4)) AND c IN (1, 2, 3)', ['t']),
  // node-sql-parser nests these as {expr: [...], joins: [...]} and leaves them out of its own table list.
  read('SELECT * FROM (a JOIN b ON a.x = b.x) JOIN c ON c.y = a.y', ['a', 'b', 'c']),
  read('SELECT * FROM a LEFT JOIN (b JOIN c ON b.x = c.x) ON a.x = (SELECT max(x) FROM d)', ['a', 'b', 'c', 'd']),
  read('SELECT * FROM (a, b)', ['a', 'b']),
  read('SELECT * FROM ((a))', ['a']),
  read('TABLE t', ['t']),
  read('SELECT * FROM t1 NATURAL JOIN t2', ['t1', 't2']),
  read('SELECT * FROM t1 NATURAL LEFT JOIN t2', ['t1', 't2']),
  read('SELECT \u00e9t\u00e9 FROM \u00e9l\u00e8ves', ['\u00e9l\u00e8ves']),
]);

table('table names are lower-cased; a qualified one is db.table; backticks are undone', [
  {
    sql: 'SELECT * FROM db2.Users u JOIN users ON u.id = users.id',
    kind: 'read',
    reads: ['db2.users', 'users'],
    cacheable: true,
    relations: [{ schema: 'db2', name: 'users' }, { schema: null, name: 'users' }],
  },
  {
    sql: 'SELECT * FROM `My Db`.`Odd``Name` JOIN `My Db`.`odd``name`',
    kind: 'read',
    reads: ['my db.odd`name'],
    cacheable: true,
    relations: [{ schema: 'my db', name: 'odd`name' }],
  },
  read('SELECT * FROM `Users` JOIN USERS', ['users']),
]);

table('CTE names and aliases are not tables; a CTE body is read', [
  read('WITH c AS (SELECT * FROM t) SELECT * FROM c', ['t']),
  read('WITH a AS (SELECT * FROM t), b AS (SELECT * FROM a JOIN u) SELECT * FROM b', ['t', 'u']),
  // Without RECURSIVE the inner t is the table t, not the CTE being defined.
  read('WITH t AS (SELECT * FROM t) SELECT * FROM t', ['t']),
  read('WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c JOIN t', ['t']),
  read('WITH c AS (SELECT 1) SELECT * FROM db.c', ['db.c']),
  read('SELECT x.id FROM users x WHERE x.id IN (SELECT y.id FROM users y)', ['users']),
]);

table('SELECT reading no table is bypassed as no-table', [
  { sql: 'SELECT 1', kind: 'read', reason: 'no-table' },
  { sql: 'SELECT 1 FROM DUAL', kind: 'read', reason: 'no-table' },
  { sql: "SELECT CONCAT('a', 'b'), 1 + 2", kind: 'read', reason: 'no-table' },
]);

table('every write form names exactly the tables it writes, and the ones it reads', [
  { sql: 'INSERT INTO t (a) VALUES (1)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT INTO t VALUES (?, ?)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT INTO t (a, b) VALUES (1, ?), (2, NULL), (-3, DEFAULT)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT INTO t VALUE (1, 2)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT t SET a = 1', kind: 'write', writes: ['t'] },
  { sql: 'INSERT IGNORE INTO t VALUES (1)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)', kind: 'write', writes: ['t'] },
  { sql: 'INSERT INTO db.T (a) SELECT a FROM s WHERE b IN (SELECT c FROM u)', kind: 'write', writes: ['db.t'], reads: ['s', 'u'] },
  { sql: 'INSERT INTO t (a, b) VALUES (1, (SELECT max(b) FROM u)), (2, 3)', kind: 'write', writes: ['t'], reads: ['u'] },
  { sql: 'INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) + 1', kind: 'write', writes: ['t'] },
  { sql: 'INSERT INTO t (a) SELECT x FROM t WHERE x > 0', kind: 'write', writes: ['t'], reads: ['t'] },
  { sql: 'REPLACE INTO t VALUES (1)', kind: 'write', writes: ['t'] },
  { sql: 'REPLACE INTO t SELECT * FROM u', kind: 'write', writes: ['t'], reads: ['u'] },
  { sql: 'UPDATE t SET a = 1 WHERE id = 2', kind: 'write', writes: ['t'] },
  { sql: 'UPDATE LOW_PRIORITY IGNORE t SET a = 0 ORDER BY id LIMIT 1', kind: 'write', writes: ['t'] },
  { sql: 'UPDATE t SET a = (SELECT max(b) FROM u) WHERE c IN (SELECT d FROM v)', kind: 'write', writes: ['t'], reads: ['u', 'v'] },
  { sql: 'UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = t2.b', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'UPDATE t1, t2 SET t1.a = t2.b WHERE t1.id = t2.id', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'UPDATE t1 a, t2 b SET a.x = b.y, b.z = 1', kind: 'write', writes: ['t1', 't2'] },
  // The alias resolves whatever its case; node-sql-parser's own table list
  // also names `A` as a table: an extra (harmless) invalidation.
  { sql: 'UPDATE t1 AS a JOIN t2 AS b ON a.id = b.id SET A.x = 1', kind: 'write', writes: ['t1', 'a'], reads: ['t2'] },
  // An unqualified column of a multi-table UPDATE may belong to any of them.
  { sql: 'UPDATE t1, t2 SET x = 1', kind: 'write', writes: ['t1', 't2'] },
  { sql: 'UPDATE t1 LEFT JOIN (SELECT id FROM t3) d ON d.id = t1.id SET t1.a = 0', kind: 'write', writes: ['t1'], reads: ['t3'] },
  { sql: 'DELETE FROM t WHERE id = 1', kind: 'write', writes: ['t'] },
  { sql: 'DELETE LOW_PRIORITY QUICK IGNORE FROM t WHERE a = 0', kind: 'write', writes: ['t'] },
  { sql: 'DELETE FROM t AS a WHERE a.id IN (SELECT id FROM u)', kind: 'write', writes: ['t'], reads: ['u'] },
  { sql: 'DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id JOIN t3 ON t3.id = t1.id', kind: 'write', writes: ['t1', 't2'], reads: ['t3'] },
  { sql: 'DELETE a FROM t1 AS a JOIN t2 b ON a.id = b.id', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'DELETE t1 FROM (t1 JOIN t2 ON t1.id = t2.id) JOIN t3 ON 1', kind: 'write', writes: ['t1'], reads: ['t2', 't3'] },
  { sql: 'DELETE t1.* FROM t1 JOIN t2 ON t1.id = t2.id', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id', kind: 'write', writes: ['t1'], reads: ['t2'] },
  { sql: 'DELETE FROM a, db.b USING t1 AS a JOIN db.b ON a.id = b.id JOIN t3 USING (id)', kind: 'write', writes: ['t1', 'db.b'], reads: ['t3'] },
  { sql: 'WITH c AS (SELECT id FROM u) DELETE FROM t WHERE id IN (SELECT id FROM c)', kind: 'write', writes: ['t'], reads: ['u'] },
  { sql: 'WITH c AS (SELECT id FROM u) UPDATE t SET a = 1 WHERE id IN (SELECT id FROM c)', kind: 'write', writes: ['t'], reads: ['u'] },
  { sql: "LOAD DATA INFILE '/tmp/x' INTO TABLE t", kind: 'write', writes: ['t'] },
  { sql: "LOAD DATA LOW_PRIORITY LOCAL INFILE 'x' REPLACE INTO TABLE db.T FIELDS TERMINATED BY ','", kind: 'write', writes: ['db.t'] },
  { sql: "LOAD XML LOCAL INFILE 'x' INTO TABLE t", kind: 'write', writes: ['t'] },
  { sql: 'TRUNCATE TABLE t', kind: 'write', writes: ['t'] },
  { sql: 'TRUNCATE db.t', kind: 'write', writes: ['db.t'] },
  // A stored function in a write may write other tables: decide() looks it up.
  { sql: 'INSERT INTO t VALUES (audit(1))', kind: 'write', writes: ['t'], functions: ['audit'], effects: [{ type: 'taint', reason: 'session-state', detail: 'audit() may change session settings or create temporary tables' }] },
]);

table('DDL names the tables whose definition changes (both names of a rename)', [
  { sql: 'CREATE TABLE t (id int primary key)', kind: 'ddl', writes: ['t'] },
  { sql: 'CREATE TABLE IF NOT EXISTS db.t LIKE u', kind: 'ddl', writes: ['db.t'] },
  { sql: 'CREATE TABLE t2 AS SELECT * FROM t', kind: 'ddl', writes: ['t2'] },
  { sql: 'CREATE OR REPLACE TABLE t (a int)', kind: 'ddl', writes: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN b int', kind: 'ddl', writes: ['t'] },
  { sql: 'ALTER ONLINE IGNORE TABLE t RENAME TO db.u', kind: 'ddl', writes: ['t', 'db.u'] },
  { sql: 'ALTER TABLE t RENAME COLUMN a TO b', kind: 'ddl', writes: ['t'] },
  { sql: 'ALTER TABLE t EXCHANGE PARTITION p WITH TABLE u', kind: 'ddl', writes: ['t', 'u'] },
  { sql: 'DROP TABLE t, db.u', kind: 'ddl', writes: ['t', 'db.u'] },
  { sql: 'DROP TABLE IF EXISTS t CASCADE', kind: 'ddl', writes: ['t'] },
  { sql: 'RENAME TABLE a TO b, db.c TO d', kind: 'ddl', writes: ['a', 'b', 'db.c', 'd'] },
  { sql: 'CREATE INDEX i ON t (a)', kind: 'ddl', writes: ['t'] },
  { sql: 'CREATE UNIQUE INDEX IF NOT EXISTS i USING BTREE ON db.t (a)', kind: 'ddl', writes: ['db.t'] },
  { sql: 'CREATE FULLTEXT INDEX i ON t (a)', kind: 'ddl', writes: ['t'] },
  { sql: 'DROP INDEX i ON t', kind: 'ddl', writes: ['t'] },
  { sql: "CREATE OR REPLACE ALGORITHM = MERGE DEFINER = 'u'@'%' SQL SECURITY INVOKER VIEW v AS SELECT * FROM t", kind: 'ddl', writes: ['v'] },
  { sql: 'ALTER VIEW v AS SELECT 1', kind: 'ddl', writes: ['v'] },
  { sql: 'DROP VIEW IF EXISTS v, w', kind: 'ddl', writes: ['v', 'w'] },
  { sql: 'CREATE SEQUENCE s', kind: 'ddl', writes: ['s'] },
  { sql: 'GRANT SELECT ON db.t TO u', kind: 'ddl', writes: ['db.t'] },
  { sql: "REVOKE SELECT, INSERT ON TABLE t FROM 'u'@'h'", kind: 'ddl', writes: ['t'] },
  // Triggers and wider privileges change what statements do to tables not named.
  { sql: 'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1', kind: 'ddl', writes: ['t'], writesUnknown: true },
  { sql: 'DROP TRIGGER IF EXISTS tr', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT SELECT ON db.* TO u', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT ALL ON *.* TO u', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT EXECUTE ON PROCEDURE db.p TO u', kind: 'ddl', writesUnknown: true },
  { sql: 'GRANT r TO u', kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE DATABASE d', kind: 'ddl', writesUnknown: true },
  { sql: 'DROP DATABASE d', kind: 'ddl', writesUnknown: true },
  { sql: 'CREATE FUNCTION f() RETURNS INT RETURN 1', kind: 'ddl', writesUnknown: true },
  { sql: 'DROP PROCEDURE IF EXISTS p', kind: 'ddl', writesUnknown: true },
  { sql: 'RENAME USER a TO b', kind: 'ddl', writesUnknown: true },
]);

table('temporary tables: CREATE taints the session (it may shadow a real table); DROP does not', [
  {
    sql: 'CREATE TEMPORARY TABLE tmp (id int)',
    kind: 'ddl',
    writes: ['tmp'],
    effects: [{ type: 'taint', reason: 'temp-table', detail: 'temporary table tmp' }],
  },
  {
    sql: 'CREATE TEMPORARY TABLE IF NOT EXISTS Users SELECT * FROM users',
    kind: 'ddl',
    writes: ['users'],
    effects: [{ type: 'taint', reason: 'temp-table', detail: 'temporary table users' }],
  },
  { sql: 'DROP TEMPORARY TABLE IF EXISTS tmp', kind: 'ddl', writes: ['tmp'] },
]);

table('transaction control', [
  ...['BEGIN', 'BEGIN WORK', 'START TRANSACTION', 'START TRANSACTION READ ONLY', 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE',
    'COMMIT', 'COMMIT WORK', 'COMMIT AND NO CHAIN NO RELEASE', 'COMMIT AND CHAIN', 'ROLLBACK', 'ROLLBACK WORK RELEASE',
    'ROLLBACK TO SAVEPOINT x', 'ROLLBACK TO x', 'SAVEPOINT x', 'RELEASE SAVEPOINT x', "XA START 'x'", "XA END 'x'", "XA PREPARE 'x'",
    'XA RECOVER'].map((sql): Row => ({ sql, kind: 'txn-control', txn: true })),
  // May end a transaction another (gone) session prepared: writes we never saw.
  { sql: "XA COMMIT 'x'", kind: 'txn-control', txn: true, writesUnknown: true },
  { sql: "XA ROLLBACK 'x'", kind: 'txn-control', txn: true, writesUnknown: true },
]);

table('utility statements are other: nothing cached, nothing written', [
  ...['SHOW TABLES', 'SHOW FULL COLUMNS FROM t', 'SHOW VARIABLES LIKE ?', 'SHOW CREATE TABLE t', 'DESCRIBE t', 'DESC t id', 'EXPLAIN t',
    "HELP 'SELECT'", 'LOCK TABLES t READ, u WRITE', 'UNLOCK TABLES', 'FLUSH TABLES', 'FLUSH TABLES t WITH READ LOCK', 'KILL 5',
    'KILL QUERY 5', 'ANALYZE TABLE t', 'OPTIMIZE TABLE t', 'CHECK TABLE t', 'REPAIR TABLE t QUICK', 'CHECKSUM TABLE t',
    'HANDLER t OPEN', 'HANDLER t READ FIRST', "PREPARE s FROM 'SELECT 1'", 'DEALLOCATE PREPARE s', 'DROP PREPARE s',
    'START SLAVE', 'LOAD INDEX INTO CACHE t', 'GET DIAGNOSTICS @n = NUMBER'].map((sql): Row => ({ sql, kind: 'other' })),
]);

table('EXPLAIN / ANALYZE of a statement: other, with the inner statement tables (ANALYZE runs it)', [
  { sql: 'EXPLAIN SELECT * FROM t', kind: 'other', reads: ['t'] },
  { sql: 'EXPLAIN FORMAT=JSON SELECT * FROM t JOIN u', kind: 'other', reads: ['t', 'u'] },
  { sql: 'EXPLAIN ANALYZE SELECT * FROM t', kind: 'other', reads: ['t'] },
  { sql: 'ANALYZE UPDATE t SET a = 1', kind: 'other', writes: ['t'] },
  { sql: 'DESCRIBE DELETE FROM t', kind: 'other', writes: ['t'] },
]);

table('CALL, DO, EXECUTE and anonymous blocks may write anything and change any setting', [
  { sql: 'CALL p(1)', kind: 'other', writesUnknown: true, effects: [{ type: 'taint', reason: 'session-state', detail: 'CALL may change session settings' }] },
  { sql: 'CALL db.p(?, ?)', kind: 'other', writesUnknown: true, effects: [{ type: 'taint', reason: 'session-state', detail: 'CALL may change session settings' }] },
  { sql: 'EXECUTE s USING @a', kind: 'other', writesUnknown: true, effects: [{ type: 'taint', reason: 'session-state', detail: 'EXECUTE may change session settings' }] },
  { sql: 'DO 1', kind: 'other', writesUnknown: true },
  { sql: "DO RELEASE_LOCK('x')", kind: 'other', writesUnknown: true },
  { sql: 'DO audit(1)', kind: 'other', writesUnknown: true, effects: [{ type: 'taint', reason: 'session-state', detail: 'DO may change session settings' }] },
  {
    sql: 'BEGIN NOT ATOMIC INSERT INTO t VALUES (1); SET time_zone = 1; END',
    kind: 'other',
    writesUnknown: true,
    effects: [{ type: 'taint', reason: 'session-state', detail: 'BEGIN NOT ATOMIC may change session settings' }],
  },
  { sql: "BINLOG 'base64'", kind: 'other', writesUnknown: true },
]);

table('several statements in one text: multi-statement, writes and effects are the union, in order', [
  { sql: 'SELECT 1; SELECT 2', kind: 'read', reason: 'multi-statement', detail: '2 statements', count: 2 },
  { sql: 'SELECT * FROM t;', kind: 'read', reads: ['t'], cacheable: true },
  {
    sql: "SELECT * FROM t; UPDATE u SET a = 1; SET time_zone = 'UTC'; USE db2",
    kind: 'write',
    reads: ['t'],
    writes: ['u'],
    reason: 'multi-statement',
    count: 4,
    effects: [NONE, NONE, { type: 'set', name: 'time_zone', value: 'UTC', local: false }, { type: 'use', database: 'db2' }],
  },
  { sql: 'BEGIN; INSERT INTO t VALUES (1); COMMIT', kind: 'write', writes: ['t'], reason: 'multi-statement', count: 3, txn: true },
  // The server reads a stored program's BEGIN … END as one statement, `;` and all.
  {
    sql: 'CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT CASE WHEN 1 THEN 2 END; lbl: LOOP LEAVE lbl; END LOOP; END; SELECT * FROM t',
    kind: 'ddl',
    reads: ['t'],
    reason: 'multi-statement',
    count: 2,
    writesUnknown: true,
  },
  {
    sql: 'CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW BEGIN CASE WHEN NEW.a > 1 THEN SET NEW.b = 1; ELSE SET NEW.b = 2; END CASE; END',
    kind: 'ddl',
    writes: ['t'],
    writesUnknown: true,
  },
  {
    sql: "CREATE DEFINER = 'u'@'%' PROCEDURE p() BEGIN FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; END; SELECT * FROM t",
    kind: 'ddl',
    reads: ['t'],
    reason: 'multi-statement',
    count: 2,
    writesUnknown: true,
  },
  // `begin` is a valid column name: a CREATE TABLE holds no BEGIN … END body.
  { sql: 'CREATE TABLE event (begin int, a int); SELECT * FROM t', kind: 'ddl', writes: ['event'], reads: ['t'], reason: 'multi-statement', count: 2 },
  { sql: '', kind: 'other', reason: 'not-a-read', detail: 'empty query', count: 0 },
  { sql: ' ; ;; /* nothing */ -- here\n', kind: 'other', reason: 'not-a-read', detail: 'empty query', count: 0 },
]);

describe('relations', () => {
  it('lists every relation once, lower-cased, read or written, with its database or null', () => {
    const c = classifyMysql('INSERT INTO Db.T SELECT * FROM t JOIN DB.t ON 1 JOIN `T` WHERE x IN (SELECT y FROM u)');
    expect(c.relations).toEqual([
      { schema: 'db', name: 't' },
      { schema: null, name: 't' },
      { schema: null, name: 'u' },
    ]);
  });
});
