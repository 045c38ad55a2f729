// Adversarial review: writes the proxy must see (promise 2, never staler than
// a write made through it) in the places where the table a statement really
// touches is not the one its text seems to name: a write through a view, a
// prepared statement bound to the database it was prepared in, a USE that
// took effect in a failed multi-statement, catalog facts read under a
// session's sql_select_limit or by a user who cannot see triggers, and the
// usual suspects (aliases, RENAME swaps, cross-database cascades…).
//
// Each test asserts MariaDB's own answer, read directly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { directSql, endMyDirect, MY_DB1, MY_PORT, myRejection, RO_USER, TEST_PASSWORD } from '../../helpers/mysql.js';
import { cachedRows, executeRows, expectWriteInvalidates, MyClients, rowsOf, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
const drops: string[] = [];
const name = (p: string): string => uniqueName(p);

beforeAll(async () => {
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const d of drops.reverse()) await directSql(d).catch(() => {});
  await endMyDirect();
});

/** A table `id INT PRIMARY KEY, v VARCHAR(40)` with rows (1,'a'), (2,'b'), (3,'c'), dropped after. */
async function table(prefix: string, db = 'test'): Promise<string> {
  const t = name(prefix);
  drops.push(`DROP TABLE IF EXISTS ${db}.${t}`);
  await directSql(`CREATE TABLE ${db}.${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${db}.${t} VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  return t;
}

describe('writes that reach a table the text does not name', () => {
  it('an UPDATE through an updatable view makes reads of the base table fresh', async () => {
    const t = await table('rv_vbase');
    const v = name('rv_view');
    drops.push(`DROP VIEW IF EXISTS ${v}`);
    await directSql(`CREATE VIEW ${v} AS SELECT id, v FROM ${t}`);
    const writer = await clients.open(proxy.port);
    const reader = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [reader, writer], [`SELECT id, v FROM ${t} ORDER BY id`], () =>
      writer.query(`UPDATE ${v} SET v = 'through-view' WHERE id = 2`),
    );
  });

  it('an INSERT and a DELETE through a view make reads of the base table fresh', async () => {
    const t = await table('rv_vbase2');
    const v = name('rv_view2');
    drops.push(`DROP VIEW IF EXISTS ${v}`);
    await directSql(`CREATE VIEW ${v} AS SELECT id, v FROM ${t} WHERE id < 100`);
    const writer = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [writer], [`SELECT COUNT(*) AS n FROM ${t}`], () => writer.query(`INSERT INTO ${v} VALUES (4, 'd')`));
    await expectWriteInvalidates(proxy, [writer], [`SELECT COUNT(*) AS n FROM ${t}`], () => writer.query(`DELETE FROM ${v} WHERE id = 1`));
  });

  it('a prepared UPDATE prepared in `test`, executed after USE db1, writes test.t: reads of test.t are fresh', async () => {
    const t = await table('rv_psdb');
    drops.push(`DROP TABLE IF EXISTS ${MY_DB1}.${t}`);
    await directSql(`CREATE TABLE ${MY_DB1}.${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${MY_DB1}.${t} VALUES (1, 'db1')`);
    const writer = await clients.open(proxy.port);
    const reader = await clients.open(proxy.port);
    const update = `UPDATE ${t} SET v = ? WHERE id = 1`;
    await writer.execute(update, ['a']); // prepared (and cached by mysql2) while `test` is current
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'a' }]);
    await writer.query(`USE ${MY_DB1}`);
    await writer.execute(update, ['changed']); // MariaDB runs it on test.t, as prepared
    expect(await truth(`SELECT v FROM test.${t} WHERE id = 1`), 'MariaDB wrote test.t').toEqual([{ v: 'changed' }]);
    expect(await rowsOf(reader, read), 'a reader in `test` sees the write').toEqual([{ v: 'changed' }]);
  });

  it('a prepared SELECT prepared in `test`, executed after USE db1, is not served to a db1 session', async () => {
    const t = await table('rv_psrd');
    drops.push(`DROP TABLE IF EXISTS ${MY_DB1}.${t}`);
    await directSql(`CREATE TABLE ${MY_DB1}.${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${MY_DB1}.${t} VALUES (1, 'db1')`);
    const sql = `SELECT v FROM ${t} WHERE id = ?`;
    const moved = await clients.open(proxy.port);
    await moved.execute(sql, [1]);
    await moved.query(`USE ${MY_DB1}`);
    await moved.query('SELECT 1');
    // MariaDB answers from test.t: the statement keeps the database it was prepared in.
    for (let i = 0; i < 4; i += 1) expect(await executeRows(moved, sql, [1])).toEqual([{ v: 'a' }]);
    const inDb1 = await clients.open(proxy.port, { database: MY_DB1 });
    expect(await executeRows(inDb1, sql, [1]), 'a session in db1 reads db1.t').toEqual([{ v: 'db1' }]);
  });

  it('USE db1 in a multi-statement that fails later: an unqualified write lands in db1 and db1 reads are fresh', async () => {
    const t = await table('rv_failuse');
    drops.push(`DROP TABLE IF EXISTS ${MY_DB1}.${t}`);
    await directSql(`CREATE TABLE ${MY_DB1}.${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${MY_DB1}.${t} VALUES (1, 'db1')`);
    const reader = await clients.open(proxy.port, { database: MY_DB1 });
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'db1' }]);
    const writer = await clients.open(proxy.port, { multipleStatements: true });
    await myRejection(writer.query(`USE ${MY_DB1}; SELECT * FROM ${name('rv_no_such')}`));
    expect(await rowsOf(writer, 'SELECT DATABASE() AS db'), 'MariaDB kept the USE').toEqual([{ db: MY_DB1 }]);
    await writer.query(`UPDATE ${t} SET v = 'db1-changed' WHERE id = 1`);
    expect(await truth(`SELECT v FROM ${MY_DB1}.${t} WHERE id = 1`)).toEqual([{ v: 'db1-changed' }]);
    expect(await rowsOf(reader, read), 'db1 reader after the write').toEqual([{ v: 'db1-changed' }]);
  });

  it('USE db1 in a failed multi-statement, then an unqualified write with no read in between', async () => {
    const t = await table('rv_failuse2');
    drops.push(`DROP TABLE IF EXISTS ${MY_DB1}.${t}`);
    await directSql(`CREATE TABLE ${MY_DB1}.${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${MY_DB1}.${t} VALUES (1, 'db1')`);
    const reader = await clients.open(proxy.port, { database: MY_DB1 });
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'db1' }]);
    const writer = await clients.open(proxy.port, { multipleStatements: true });
    await myRejection(writer.query(`USE ${MY_DB1}; SELECT * FROM ${name('rv_no_such')}`));
    await writer.query(`UPDATE ${t} SET v = 'db1-changed' WHERE id = 1`);
    expect(await truth(`SELECT v FROM ${MY_DB1}.${t} WHERE id = 1`)).toEqual([{ v: 'db1-changed' }]);
    expect(await rowsOf(reader, read), 'db1 reader after the write').toEqual([{ v: 'db1-changed' }]);
  });
});

describe('catalog facts (cascades, triggers) the proxy learns on a client connection', () => {
  async function parentChild(action: string, childDb = 'test'): Promise<{ parent: string; child: string }> {
    const parent = name('rv_par');
    const child = name('rv_chi');
    drops.push(`DROP TABLE IF EXISTS test.${parent}`, `DROP TABLE IF EXISTS ${childDb}.${child}`);
    await directSql(`CREATE TABLE test.${parent} (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO test.${parent} VALUES (1), (2), (3)`);
    await directSql(
      `CREATE TABLE ${childDb}.${child} (id INT PRIMARY KEY, pid INT NULL, FOREIGN KEY (pid) REFERENCES test.${parent}(id) ${action}) ENGINE=InnoDB`,
    );
    await directSql(`INSERT INTO ${childDb}.${child} VALUES (1, 1), (2, 2), (3, 3), (4, 2)`);
    return { parent, child };
  }

  it('a session with sql_select_limit = 1 deletes a parent: the ON DELETE CASCADE child is fresh (the look-up must not be truncated)', async () => {
    const { parent, child } = await parentChild('ON DELETE CASCADE');
    const reader = await clients.open(proxy.port);
    const read = `SELECT id, pid FROM ${child} ORDER BY id`;
    await cachedRows(proxy, reader, read);
    const writer = await clients.open(proxy.port);
    await writer.query('SET sql_select_limit = 1');
    await writer.query(`DELETE FROM ${parent} WHERE id = 2`);
    expect(await rowsOf(reader, read)).toEqual(await truth(read));
    // And the facts the limited look-up left behind must not mislead a later, ordinary session.
    await cachedRows(proxy, reader, read);
    const plain = await clients.open(proxy.port);
    await plain.query(`DELETE FROM ${parent} WHERE id = 3`);
    expect(await rowsOf(reader, read), 'after a second delete by an ordinary session').toEqual(await truth(read));
  });

  it('a cascade from test into another database (child in db1)', async () => {
    const { parent, child } = await parentChild('ON DELETE SET NULL', MY_DB1);
    const writer = await clients.open(proxy.port);
    const reader = await clients.open(proxy.port, { database: MY_DB1 });
    await expectWriteInvalidates(proxy, [reader], [`SELECT id, pid FROM ${MY_DB1}.${child} ORDER BY id`], () => writer.query(`DELETE FROM ${parent} WHERE id = 1`));
  });

  it('facts learned by a user who cannot see triggers (sqlcached_ro) do not hide a trigger from root\'s writes', async () => {
    const t = await table('rv_trg_t');
    const log = await table('rv_trg_log');
    const trg = name('rv_trg');
    await directSql(`CREATE TRIGGER ${trg} AFTER INSERT ON ${t} FOR EACH ROW INSERT INTO ${log} VALUES (NEW.id + 100, 'from trigger')`);
    const ro = await clients.open(proxy.port, { user: RO_USER, password: TEST_PASSWORD });
    expect(await cachedRows(proxy, ro, `SELECT id FROM ${t} ORDER BY id`)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    const root = await clients.open(proxy.port);
    const read = `SELECT id, v FROM ${log} ORDER BY id`;
    await cachedRows(proxy, root, read);
    await root.query(`INSERT INTO ${t} VALUES (9, 'x')`);
    expect(await rowsOf(root, read), 'the trigger-written table after root\'s INSERT').toEqual(await truth(read));
  });

  it('facts learned by a user who cannot see a cross-database foreign key do not hide the cascade', async () => {
    const { parent, child } = await parentChild('ON DELETE CASCADE', MY_DB1);
    const ro = await clients.open(proxy.port, { user: RO_USER, password: TEST_PASSWORD });
    // ro may read test.parent (SELECT on test.*) but not see sqlcached_db1.child's constraint.
    await ro.query(`DELETE FROM ${parent} WHERE id = 99`).catch(() => {}); // denied: still makes the proxy look the parent up
    await cachedRows(proxy, ro, `SELECT id FROM ${parent} ORDER BY id`);
    const root = await clients.open(proxy.port);
    const read = `SELECT id, pid FROM ${MY_DB1}.${child} ORDER BY id`;
    await cachedRows(proxy, root, read);
    await root.query(`DELETE FROM ${parent} WHERE id = 2`);
    expect(await rowsOf(root, read)).toEqual(await truth(read));
  });
});

describe('writes the classifier must name correctly', () => {
  it('multi-table UPDATE through aliases writes the aliased table', async () => {
    const a = await table('rv_mu_a');
    const b = await table('rv_mu_b');
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT id, v FROM ${b} ORDER BY id`], () =>
      w.query(`UPDATE ${a} AS x JOIN ${b} AS y ON y.id = x.id SET y.v = CONCAT(x.v, '!') WHERE x.id = 2`),
    );
  });

  it('multi-table DELETE through aliases (both syntaxes) deletes from the aliased tables', async () => {
    const a = await table('rv_md_a');
    const b = await table('rv_md_b');
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT id FROM ${b} ORDER BY id`], () =>
      w.query(`DELETE y FROM ${a} AS x JOIN ${b} AS y ON y.id = x.id WHERE x.id = 1`),
    );
    await expectWriteInvalidates(proxy, [w], [`SELECT id FROM ${b} ORDER BY id`], () =>
      w.query(`DELETE FROM y USING ${a} AS x JOIN ${b} AS y ON y.id = x.id WHERE x.id = 3`),
    );
  });

  it('backticks, letter case and qualification: `TEST`-less mixed-case names still invalidate', async () => {
    const t = `RV_Mixed_${name('c').slice(2)}`;
    drops.push(`DROP TABLE IF EXISTS test.\`${t}\``);
    await directSql(`CREATE TABLE test.\`${t}\` (id INT PRIMARY KEY, v INT); INSERT INTO test.\`${t}\` VALUES (1, 1)`);
    const w = await clients.open(proxy.port);
    const reads = [`SELECT v FROM \`${t}\` WHERE id = 1`, `SELECT v FROM test.${t} WHERE id = 1`, `SELECT v FROM \`test\`.\`${t}\` WHERE id = 1`];
    await expectWriteInvalidates(proxy, [w], reads, () => w.query(`UPDATE ${t} SET v = 2`));
    await expectWriteInvalidates(proxy, [w], reads, () => w.query(`UPDATE \`test\`.\`${t}\` SET v = 3`));
  });

  it('an executable comment carrying the write (/*! … */ and /*M! … */)', async () => {
    const t = await table('rv_exec');
    const w = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    await expectWriteInvalidates(proxy, [w], [read], () => w.query(`/*!40101 UPDATE ${t} SET v = 'bang' WHERE id = 1 */`));
    await expectWriteInvalidates(proxy, [w], [read], () => w.query(`UPDATE ${t} /*M!100000 , ${t} AS z */ SET ${t}.v = 'mbang' WHERE ${t}.id = 1`));
  });

  it('RENAME TABLE a TO tmp, b TO a, tmp TO b swaps what both names read', async () => {
    const a = await table('rv_swap_a');
    const b = name('rv_swap_b');
    const tmp = name('rv_swap_tmp');
    drops.push(`DROP TABLE IF EXISTS ${b}`, `DROP TABLE IF EXISTS ${tmp}`);
    await directSql(`CREATE TABLE ${b} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${b} VALUES (1, 'B')`);
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT v FROM ${a} WHERE id = 1`, `SELECT v FROM ${b} WHERE id = 1`], () =>
      w.query(`RENAME TABLE ${a} TO ${tmp}, ${b} TO ${a}, ${tmp} TO ${b}`),
    );
  });

  it('TRUNCATE through a prepared statement; DROP + CREATE of the same name with other rows', async () => {
    const t = await table('rv_trunc');
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT COUNT(*) AS n FROM ${t}`], () => w.execute(`TRUNCATE TABLE ${t}`));
    await directSql(`INSERT INTO ${t} VALUES (1, 'again')`);
    await proxy.invalidate({ all: true });
    await expectWriteInvalidates(proxy, [w], [`SELECT id, v FROM ${t} ORDER BY id`], () =>
      w
        .query(`DROP TABLE ${t}`)
        .then(() => w.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40))`))
        .then(() => w.query(`INSERT INTO ${t} VALUES (5, 'new')`)),
    );
  });

  it('INSERT … SELECT from the same table and REPLACE', async () => {
    const t = await table('rv_insel');
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT COUNT(*) AS n FROM ${t}`], () => w.query(`INSERT INTO ${t} SELECT id + 10, v FROM ${t}`));
    await expectWriteInvalidates(proxy, [w], [`SELECT v FROM ${t} WHERE id = 1`], () => w.execute(`REPLACE INTO ${t} VALUES (?, ?)`, [1, 'replaced']));
  });

  it('DELETE … RETURNING and INSERT … RETURNING (MariaDB) invalidate', async () => {
    const t = await table('rv_ret');
    const w = await clients.open(proxy.port);
    await expectWriteInvalidates(proxy, [w], [`SELECT COUNT(*) AS n FROM ${t}`], () => w.query(`DELETE FROM ${t} WHERE id = 1 RETURNING id, v`));
    await expectWriteInvalidates(proxy, [w], [`SELECT COUNT(*) AS n FROM ${t}`], () => w.query(`INSERT INTO ${t} VALUES (7, 'g') RETURNING id`));
  });
});

describe('transactions of other shapes', () => {
  it('XA: a read cached while the branch is prepared is fresh after XA COMMIT', async () => {
    const t = await table('rv_xa');
    const w = await clients.open(proxy.port);
    const r = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    const xid = `'${name('x')}'`;
    await w.query(`XA START ${xid}`);
    await w.query(`UPDATE ${t} SET v = 'xa' WHERE id = 1`);
    await w.query(`XA END ${xid}`);
    await w.query(`XA PREPARE ${xid}`);
    expect(await cachedRows(proxy, r, read), 'the prepared branch is not visible yet').toEqual([{ v: 'a' }]);
    await w.query(`XA COMMIT ${xid}`);
    expect(await rowsOf(r, read)).toEqual([{ v: 'xa' }]);
  });

  it('LOCK TABLES … WRITE, a write, UNLOCK TABLES: fresh', async () => {
    const t = await table('rv_lock');
    const w = await clients.open(proxy.port);
    const r = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 3`;
    expect(await cachedRows(proxy, r, read)).toEqual([{ v: 'c' }]);
    await w.query(`LOCK TABLES ${t} WRITE`);
    await w.query(`UPDATE ${t} SET v = 'locked' WHERE id = 3`);
    await w.query('UNLOCK TABLES');
    expect(await rowsOf(r, read)).toEqual([{ v: 'locked' }]);
  });
});

describe('the current database disappears', () => {
  it('after DROP DATABASE of the current database, an unqualified read errors (1046) as in MariaDB, not served from cache', async () => {
    const db = name('rv_gone_db');
    await directSql(`CREATE DATABASE ${db}`);
    drops.push(`DROP DATABASE IF EXISTS ${db}`);
    const t = 'items';
    await directSql(`CREATE TABLE ${db}.${t} (id INT PRIMARY KEY); INSERT INTO ${db}.${t} VALUES (1)`);
    const a = await clients.open(proxy.port, { database: db });
    await cachedRows(proxy, a, `SELECT id FROM ${t}`);
    await a.query(`DROP DATABASE ${db}`);
    await directSql(`CREATE DATABASE ${db}; CREATE TABLE ${db}.${t} (id INT PRIMARY KEY); INSERT INTO ${db}.${t} VALUES (2)`);
    const b = await clients.open(proxy.port, { database: db });
    expect(await cachedRows(proxy, b, `SELECT id FROM ${t}`)).toEqual([{ id: 2 }]);
    // The control: MariaDB's answer in the same situation, on a scratch database.
    const scratch = name('rv_gone_ctl');
    await directSql(`CREATE DATABASE ${scratch}`);
    drops.push(`DROP DATABASE IF EXISTS ${scratch}`);
    const direct = await clients.open(MY_PORT, { database: scratch });
    await direct.query(`DROP DATABASE ${scratch}`);
    const want = await myRejection(direct.query(`SELECT id FROM ${t}`));
    expect(want.errno).toBe(1046);
    const got = await a.query(`SELECT id FROM ${t}`).then(
      ([rows]) => ({ rows: JSON.stringify(rows) }),
      (e: { errno?: number }) => ({ errno: e.errno }),
    );
    expect(got, 'the session whose database was dropped').toEqual({ errno: 1046 });
  });
});

describe('the read-side race', () => {
  it('a slow read that started before a write does not store its pre-write rows after the write\'s OK', async () => {
    const t = await table('rv_race');
    const big = name('rv_big');
    drops.push(`DROP TABLE IF EXISTS ${big}`);
    await directSql(`CREATE TABLE ${big} (n INT PRIMARY KEY); INSERT INTO ${big} SELECT seq FROM seq_1_to_2500`);
    const slowSql = `SELECT ${t}.v, (SELECT COUNT(*) FROM ${big} a, ${big} b WHERE a.n + b.n > ${t}.id) AS c FROM ${t} WHERE ${t}.id = 1`;
    const slow = await clients.open(proxy.port);
    const w = await clients.open(proxy.port);
    await warm(proxy, () => rowsOf(slow, `SELECT v FROM ${t} WHERE id = 2`)); // catalog facts known
    await proxy.invalidate({ all: true });
    const t0 = Date.now();
    const pending = rowsOf(slow, slowSql);
    await new Promise((r) => setTimeout(r, 150));
    await w.query(`UPDATE ${t} SET v = 'after' WHERE id = 1`);
    const old = await pending;
    const took = Date.now() - t0;
    expect(old[0]!['v'], `the slow read saw the old row (took ${took} ms)`).toBe('a');
    for (let i = 0; i < 3; i += 1) expect((await rowsOf(w, slowSql))[0]!['v']).toBe('after');
  }, 60_000);
});
