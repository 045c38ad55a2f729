// Adversarial review, round 2: statements whose effect the proxy reads from
// the wrong context — a multi-statement text whose USE moves the later
// statements to another database, a trigger that SETs a session variable,
// catalog facts looked up case-insensitively on a case-sensitive server —
// plus the areas that held up (deadlock rollbacks, sequences, RETURNING
// through prepared statements, CREATE OR REPLACE / CREATE … SELECT / RENAME
// COLUMN, SQL-level PREPARE of a SET, COM_CHANGE_USER to another database).
//
// Each test asserts MariaDB's own answer, read directly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, endMyDirect, MY_DB1, MY_PORT, myRejection, type MyOptions } from '../../helpers/mysql.js';
import { cachedRows, executeRows, expectWriteInvalidates, MyClients, rowsOf, sleep, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
const drops: string[] = [];
const name = (p: string): string => uniqueName(p);
const RAW: MyOptions = { dateStrings: true };

beforeAll(async () => {
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const d of drops.reverse()) await directSql(d).catch(() => {});
  await endMyDirect();
});

/** `db.t (id INT PRIMARY KEY, v VARCHAR(40))` with rows (1,'a'), (2,'b'), (3,'c'), dropped after. */
async function table(prefix: string, db = 'test', t = name(prefix)): Promise<string> {
  drops.push(`DROP TABLE IF EXISTS ${db}.\`${t}\``);
  await directSql(`CREATE TABLE ${db}.\`${t}\` (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${db}.\`${t}\` VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  return t;
}

describe('a multi-statement text whose USE changes where later statements write', () => {
  it('`USE db1; UPDATE t …` from a session in `test` (t in both databases): db1.t reads are fresh', async () => {
    const t = await table('r2_use_w');
    await table('', MY_DB1, t);
    const reader = await clients.open(proxy.port, { database: MY_DB1 });
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'a' }]);
    const writer = await clients.open(proxy.port, { multipleStatements: true });
    await writer.query(`USE ${MY_DB1}; UPDATE ${t} SET v = 'db1-written' WHERE id = 1`);
    expect(await truth(`SELECT v FROM ${MY_DB1}.${t} WHERE id = 1`), 'MariaDB wrote db1.t').toEqual([{ v: 'db1-written' }]);
    expect(await rowsOf(reader, read), 'the db1 reader after the acknowledged write').toEqual([{ v: 'db1-written' }]);
  });

  it('`USE db1; DELETE FROM t …; USE test` (the session ends where it started)', async () => {
    const t = await table('r2_use_d');
    await table('', MY_DB1, t);
    const reader = await clients.open(proxy.port);
    const read = `SELECT COUNT(*) AS n FROM ${MY_DB1}.${t}`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ n: 3 }]);
    const writer = await clients.open(proxy.port, { multipleStatements: true });
    await writer.query(`USE ${MY_DB1}; DELETE FROM ${t} WHERE id = 2; USE test`);
    expect(await truth(read)).toEqual([{ n: 2 }]);
    expect(await rowsOf(reader, read)).toEqual([{ n: 2 }]);
  });
});

describe('a trigger that SETs a session variable', () => {
  it('BEFORE INSERT … SET time_zone: the writer\'s later TIMESTAMP reads follow the zone, and no other session gets them', async () => {
    const t = name('r2_trg_ts');
    const log = name('r2_trg_log');
    const trg = name('r2_trg');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP TABLE IF EXISTS ${log}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, ts TIMESTAMP NULL); INSERT INTO ${t} VALUES (1, '2024-01-01 12:00:00'), (2, '2024-06-01 08:00:00')`);
    await directSql(`CREATE TABLE ${log} (id INT PRIMARY KEY)`);
    await directSql(`CREATE TRIGGER ${trg} BEFORE INSERT ON ${log} FOR EACH ROW SET time_zone = '+05:00'`);
    const writer = await clients.open(proxy.port, RAW);
    const other = await clients.open(proxy.port, RAW);
    const read1 = `SELECT id, ts FROM ${t} WHERE id = 1`;
    const read2 = `SELECT id, ts FROM ${t} WHERE id = 2`;
    const base1 = await cachedRows(proxy, writer, read1);
    await writer.query(`INSERT INTO ${log} VALUES (1)`);
    expect(await rowsOf(writer, 'SELECT @@time_zone AS tz'), 'the trigger changed the session zone').toEqual([{ tz: '+05:00' }]);
    const direct = await clients.open(MY_PORT, RAW);
    await direct.query("SET time_zone = '+05:00'");
    const want1 = await rowsOf(direct, read1);
    expect(want1).not.toEqual(base1);
    expect(await rowsOf(writer, read1), 'the writer, now at +05:00').toEqual(want1);
    // And what the writer reads now must not be served to a session still at the default zone.
    await rowsOf(writer, read2);
    await rowsOf(writer, read2);
    const plain = await clients.open(MY_PORT, RAW);
    expect(await rowsOf(other, read2), 'a default-zone session').toEqual(await rowsOf(plain, read2));
  });
});

describe('catalog facts of names that differ only in letter case (lower_case_table_names = 0)', () => {
  it('a VIEW `R2_CI_…` next to a base table `r2_ci_…`: reads of the view follow writes to its base table', async () => {
    const lower = name('r2_ci');
    const upper = lower.toUpperCase();
    const src = await table('r2_ci_src');
    await table('', 'test', lower);
    drops.push(`DROP VIEW IF EXISTS test.\`${upper}\``);
    await directSql(`CREATE VIEW test.\`${upper}\` AS SELECT id, CONCAT('src:', v) AS v FROM ${src}`);
    const c = await clients.open(proxy.port);
    const read = `SELECT v FROM \`${upper}\` WHERE id = 1`;
    expect(await truth(read)).toEqual([{ v: 'src:a' }]);
    for (let i = 0; i < 4; i += 1) expect(await rowsOf(c, read)).toEqual([{ v: 'src:a' }]);
    await c.query(`UPDATE ${src} SET v = 'changed' WHERE id = 1`);
    expect(await truth(read)).toEqual([{ v: 'src:changed' }]);
    expect(await rowsOf(c, read), 'the view after a write to its base table').toEqual([{ v: 'src:changed' }]);
  });

  it('a table `R2_CT_…` with a trigger next to `r2_ct_…` without one: the trigger-written table is fresh', async () => {
    const lower = name('r2_ct');
    const upper = lower.toUpperCase();
    await table('', 'test', lower);
    await table('', 'test', upper);
    const log = await table('r2_ct_log');
    const trg = name('r2_ct_trg');
    await directSql(`CREATE TRIGGER ${trg} AFTER INSERT ON test.\`${upper}\` FOR EACH ROW INSERT INTO ${log} VALUES (NEW.id + 100, 'from trigger')`);
    const c = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [c], [`SELECT COUNT(*) AS n FROM ${log}`], () => c.query(`INSERT INTO \`${upper}\` VALUES (9, 'x')`));
  });
});

describe('information the server keeps about the last statement: optimizer trace', () => {
  it('with optimizer_trace on, the trace after a read is that read\'s', async () => {
    const t = await table('r2_otrace');
    const c = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 2`;
    await cachedRows(proxy, c, read); // cached by now
    await c.query("SET optimizer_trace = 'enabled=on'");
    await c.query(`SELECT v FROM ${t} WHERE id = 3`);
    await rowsOf(c, read);
    const [rows] = await c.query('SELECT QUERY FROM information_schema.OPTIMIZER_TRACE');
    expect((rows as { QUERY: string }[]).map((r) => r.QUERY), 'MariaDB traces the last statement it was sent').toEqual([read]);
  });
});

describe('what held up (defended here)', () => {
  it('a deadlock rolls the victim\'s transaction back after its writes: every read equals MariaDB\'s afterwards', async () => {
    const t = await table('r2_dl');
    const a = await clients.open(proxy.port);
    const b = await clients.open(proxy.port);
    const reader = await clients.open(proxy.port);
    const reads = [`SELECT v FROM ${t} WHERE id = 1`, `SELECT v FROM ${t} WHERE id = 2`];
    for (const r of reads) await cachedRows(proxy, reader, r);
    await a.query('BEGIN');
    await b.query('BEGIN');
    await a.query(`UPDATE ${t} SET v = 'A1' WHERE id = 1`);
    await b.query(`UPDATE ${t} SET v = 'B2' WHERE id = 2`);
    const pa = a.query(`UPDATE ${t} SET v = 'A2' WHERE id = 2`).then(() => 'ok', (e: { errno?: number }) => e.errno);
    await sleep(200);
    const pb = b.query(`UPDATE ${t} SET v = 'B1' WHERE id = 1`).then(() => 'ok', (e: { errno?: number }) => e.errno);
    const outcomes = await Promise.all([pa, pb]);
    expect(outcomes, 'one of them is the deadlock victim').toContain(1213);
    for (const r of reads) expect(await rowsOf(reader, r), `mid-transaction: ${r}`).toEqual(await truth(r));
    await a.query('COMMIT').catch(() => {});
    await b.query('COMMIT').catch(() => {});
    for (const r of reads) {
      const want = await truth(r);
      for (const c of [a, b, reader]) expect(await rowsOf(c, r), r).toEqual(want);
      expect(await cachedRows(proxy, reader, r)).toEqual(want);
    }
  });

  it('sequences: NEXTVAL/SETVAL (text and prepared) and reading the sequence as a table', async () => {
    const s = name('r2_seq');
    drops.push(`DROP SEQUENCE IF EXISTS ${s}`);
    await directSql(`CREATE SEQUENCE ${s} START WITH 1 INCREMENT BY 1`);
    const c = await clients.open(proxy.port);
    const asTable = `SELECT next_not_cached_value AS n FROM ${s}`;
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(c, asTable)).toEqual(await truth(asTable));
    expect(await rowsOf(c, `SELECT NEXTVAL(${s}) AS n`)).toEqual([{ n: 1 }]);
    expect(await rowsOf(c, `SELECT NEXTVAL(${s}) AS n`)).toEqual([{ n: 2 }]);
    expect(await rowsOf(c, asTable)).toEqual(await truth(asTable));
    expect(await rowsOf(c, `SELECT SETVAL(${s}, 100) AS n`)).toEqual([{ n: 100 }]);
    expect(await executeRows(c, `SELECT NEXT VALUE FOR ${s} AS n`)).toEqual([{ n: 101 }]);
    expect(await rowsOf(c, asTable)).toEqual(await truth(asTable));
    expect(await rowsOf(c, `SELECT PREVIOUS VALUE FOR ${s} AS n`)).toEqual([{ n: 101 }]);
  });

  it('INSERT / REPLACE / DELETE … RETURNING through prepared statements invalidate', async () => {
    const t = await table('r2_ret');
    const w = await clients.open(proxy.port);
    const read = `SELECT id, v FROM ${t} ORDER BY id`;
    await expectWriteInvalidates(proxy, [w], [read], () => w.execute(`INSERT INTO ${t} VALUES (?, ?) RETURNING id`, [4, 'd']));
    await expectWriteInvalidates(proxy, [w], [read], () => w.execute(`REPLACE INTO ${t} VALUES (?, ?) RETURNING id, v`, [1, 'r']));
    await expectWriteInvalidates(proxy, [w], [read], () => w.execute(`DELETE FROM ${t} WHERE id = ? RETURNING v`, [2]));
  });

  it('CREATE OR REPLACE TABLE, CREATE TABLE … SELECT, ALTER TABLE … RENAME COLUMN then SELECT *', async () => {
    const t = await table('r2_ddl');
    const t2 = name('r2_ddl_cs');
    drops.push(`DROP TABLE IF EXISTS ${t2}`);
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT * FROM ${t} ORDER BY id`], () => w.query(`ALTER TABLE ${t} RENAME COLUMN v TO w`));
    await expectWriteInvalidates(proxy, [w], [`SELECT * FROM ${t} ORDER BY id`], () =>
      w.query(`CREATE OR REPLACE TABLE ${t} (id INT PRIMARY KEY, z INT) SELECT 7 AS id, 8 AS z`),
    );
    await w.query(`CREATE TABLE ${t2} (id INT PRIMARY KEY, v VARCHAR(10))`);
    await expectWriteInvalidates(proxy, [w], [`SELECT * FROM ${t2}`], () =>
      w.query(`CREATE OR REPLACE TABLE ${t2} AS SELECT id, z FROM ${t}`),
    );
  });

  it('`SET autocommit = 0; UPDATE …; COMMIT` in one COM_QUERY invalidates; the session then stays out of the cache until autocommit is back', async () => {
    const t = await table('r2_ac');
    const w = await clients.open(proxy.port, { multipleStatements: true });
    const r = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [r, w], [`SELECT v FROM ${t} WHERE id = 1`], () =>
      w.query(`SET autocommit = 0; UPDATE ${t} SET v = 'ac' WHERE id = 1; COMMIT`),
    );
    await w.query(`UPDATE ${t} SET v = 'uncommitted' WHERE id = 1`);
    expect(await rowsOf(r, `SELECT v FROM ${t} WHERE id = 1`), 'another session does not see the open transaction').toEqual([{ v: 'ac' }]);
    expect(await rowsOf(w, `SELECT v FROM ${t} WHERE id = 1`), 'the writer sees its own write').toEqual([{ v: 'uncommitted' }]);
    await w.query('ROLLBACK; SET autocommit = 1');
    expect(await rowsOf(w, `SELECT v FROM ${t} WHERE id = 1`)).toEqual([{ v: 'ac' }]);
  });

  it('SQL-level PREPARE of `SET time_zone = ?` and EXECUTE IMMEDIATE: later reads follow the zone', async () => {
    const t = name('r2_ps_tz');
    drops.push(`DROP TABLE IF EXISTS ${t}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, ts TIMESTAMP NULL); INSERT INTO ${t} VALUES (1, '2024-01-01 12:00:00')`);
    const read = `SELECT ts FROM ${t} WHERE id = 1`;
    const c = await clients.open(proxy.port, RAW);
    const base = await cachedRows(proxy, c, read);
    await c.query("SET @tz = '+09:00'");
    await c.query("PREPARE s FROM 'SET time_zone = ?'");
    await c.query('EXECUTE s USING @tz');
    const direct = await clients.open(MY_PORT, RAW);
    await direct.query("SET time_zone = '+09:00'");
    const want = await rowsOf(direct, read);
    expect(want).not.toEqual(base);
    expect(await rowsOf(c, read)).toEqual(want);
    const d = await clients.open(proxy.port, RAW);
    await cachedRows(proxy, d, read);
    await d.query("EXECUTE IMMEDIATE 'SET time_zone = ''+09:00'''");
    expect(await rowsOf(d, read)).toEqual(want);
  });

  it('COM_CHANGE_USER to the same user with another database: unqualified reads and DATABASE() follow it', async () => {
    const t = await table('r2_cu');
    await table('', MY_DB1, t);
    await directSql(`UPDATE ${MY_DB1}.${t} SET v = 'db1' WHERE id = 1`);
    const c = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, c, read)).toEqual([{ v: 'a' }]);
    expect(await cachedRows(proxy, c, 'SELECT DATABASE() AS db, v FROM ' + t + ' WHERE id = 1')).toEqual([{ db: 'test', v: 'a' }]);
    await c.changeUser({ user: 'root', password: '', database: MY_DB1 });
    expect(await rowsOf(c, read)).toEqual([{ v: 'db1' }]);
    expect(await rowsOf(c, 'SELECT DATABASE() AS db, v FROM ' + t + ' WHERE id = 1')).toEqual([{ db: MY_DB1, v: 'db1' }]);
  });

  it('PAD_CHAR_TO_FULL_LENGTH by SET SESSION, by SET STATEMENT and inside a procedure: CHAR values as MariaDB pads them', async () => {
    const t = name('r2_pad');
    const p = name('r2_pad_p');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP PROCEDURE IF EXISTS ${p}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, c CHAR(6)); INSERT INTO ${t} VALUES (1, 'ab')`);
    await directSql(`CREATE PROCEDURE ${p}() SET SESSION sql_mode = CONCAT(@@sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')`);
    const read = `SELECT c FROM ${t} WHERE id = 1`;
    const c = await clients.open(proxy.port);
    expect(await cachedRows(proxy, c, read)).toEqual([{ c: 'ab' }]);
    expect(await rowsOf(c, `SET STATEMENT sql_mode = 'PAD_CHAR_TO_FULL_LENGTH' FOR ${read}`)).toEqual([{ c: 'ab    ' }]);
    expect(await rowsOf(c, read)).toEqual([{ c: 'ab' }]);
    await c.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')");
    expect(await rowsOf(c, read)).toEqual([{ c: 'ab    ' }]);
    const d = await clients.open(proxy.port);
    expect(await cachedRows(proxy, d, read)).toEqual([{ c: 'ab' }]);
    await d.query(`CALL ${p}()`);
    // MariaDB restores the caller's sql_mode when the procedure returns: the control says what it holds.
    const direct = await clients.open(MY_PORT);
    await direct.query(`CALL ${p}()`);
    expect(await rowsOf(d, read)).toEqual(await rowsOf(direct, read));
    expect(await rowsOf(d, 'SELECT @@sql_mode AS m')).toEqual(await rowsOf(direct, 'SELECT @@sql_mode AS m'));
  });

  it('names with a dot, a backtick, a space or non-ASCII letters: writes invalidate, reads equal MariaDB\'s', async () => {
    const base = name('r2_nm');
    const db = `${base}.d b`;
    drops.push(`DROP DATABASE IF EXISTS \`${db}\``);
    await directSql(`CREATE DATABASE \`${db}\``);
    const names = [`t.x`, 't``q', 't y', 'tÄbléΩ'];
    for (const n of names) {
      await directSql(`CREATE TABLE \`${db}\`.\`${n}\` (id INT PRIMARY KEY, v INT); INSERT INTO \`${db}\`.\`${n}\` VALUES (1, 1)`);
      const tq = `\`test\`.\`${base}_${n}\``;
      drops.push(`DROP TABLE IF EXISTS ${tq}`);
      await directSql(`CREATE TABLE ${tq} (id INT PRIMARY KEY, v INT); INSERT INTO ${tq} VALUES (1, 1)`);
    }
    const inDb = await clients.open(proxy.port, { database: db });
    const inTest = await clients.open(proxy.port);
    for (const n of names) {
      const q = `\`${n}\``;
      const read = `SELECT v FROM ${q} WHERE id = 1`;
      for (let i = 0; i < 3; i += 1) await rowsOf(inDb, read);
      await inDb.query(`UPDATE ${q} SET v = v + 1`);
      expect(await rowsOf(inDb, read), `${db}.${n}`).toEqual(await truth(`SELECT v FROM \`${db}\`.${q} WHERE id = 1`));
      const tq = `\`${base}_${n}\``;
      const tread = `SELECT v FROM ${tq} WHERE id = 1`;
      for (let i = 0; i < 3; i += 1) await rowsOf(inTest, tread);
      await inTest.query(`UPDATE ${tq} SET v = v + 10`);
      expect(await rowsOf(inTest, tread), `test.${base}_${n}`).toEqual([{ v: 11 }]);
    }
  });

  it('reads of other shapes follow writes: PARTITION (p0), WITH RECURSIVE, window functions, JSON_TABLE, INTERSECT', async () => {
    const t = name('r2_shapes');
    drops.push(`DROP TABLE IF EXISTS ${t}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v INT, j JSON) PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)`);
    await directSql(`INSERT INTO ${t} VALUES (1, 10, '[1,2]'), (2, 20, '[3]'), (11, 110, '[]')`);
    const w = await clients.open(proxy.port);
    const reads = [
      `SELECT id, v FROM ${t} PARTITION (p0) ORDER BY id`,
      `WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT COUNT(*) FROM ${t})) SELECT MAX(n) AS m FROM r`,
      `SELECT id, SUM(v) OVER (ORDER BY id) AS s FROM ${t} ORDER BY id`,
      `SELECT ${t}.id, jt.x FROM ${t}, JSON_TABLE(${t}.j, '$[*]' COLUMNS (x INT PATH '$')) AS jt ORDER BY ${t}.id, jt.x`,
      `SELECT id FROM ${t} INTERSECT SELECT id FROM ${t} WHERE v < 100 ORDER BY id`,
    ];
    for (const r of reads) {
      for (let i = 0; i < 3; i += 1) expect(await rowsOf(w, r), r).toEqual(await truth(r));
    }
    await w.query(`INSERT INTO ${t} VALUES (3, 30, '[4,5]')`);
    for (const r of reads) expect(await rowsOf(w, r), `after the write: ${r}`).toEqual(await truth(r));
  });

  it('cached reads while another connection holds LOCK TABLES … WRITE, then writes and unlocks: fresh', async () => {
    const t = await table('r2_lockw');
    const r = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 2`;
    expect(await cachedRows(proxy, r, read)).toEqual([{ v: 'b' }]);
    const locker = await clients.open(proxy.port);
    await locker.query(`LOCK TABLES ${t} WRITE`);
    await locker.query(`UPDATE ${t} SET v = 'locked' WHERE id = 2`);
    const pending = rowsOf(r, read); // MariaDB would block here until UNLOCK; a hit answers at once
    await sleep(100);
    await locker.query('UNLOCK TABLES');
    const got = await pending;
    expect([[{ v: 'b' }], [{ v: 'locked' }]]).toContainEqual(got);
    expect(await rowsOf(r, read)).toEqual([{ v: 'locked' }]);
  });

  it('a write prepared before RENAME TABLE … TO …, and a new table under the old name: the execute writes the new one', async () => {
    const a = await table('r2_rn_a');
    const b = name('r2_rn_b');
    drops.push(`DROP TABLE IF EXISTS ${b}`);
    const w = await clients.open(proxy.port);
    const upd = `UPDATE ${a} SET v = ? WHERE id = 1`;
    await w.execute(upd, ['first']);
    await w.query(`RENAME TABLE ${a} TO ${b}`);
    await w.query(`CREATE TABLE ${a} (id INT PRIMARY KEY, v VARCHAR(40))`);
    await w.query(`INSERT INTO ${a} VALUES (1, 'new')`);
    const r = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [r], [`SELECT v FROM ${a} WHERE id = 1`], () => w.execute(upd, ['second']));
    expect(await truth(`SELECT v FROM ${b} WHERE id = 1`)).toEqual([{ v: 'first' }]);
    const err = await myRejection(w.query(`SELECT nope FROM ${b}`));
    expect(err.errno).toBe(1054);
  });
});
