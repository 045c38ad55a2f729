// Issue 7 on MariaDB: views (information_schema.VIEWS definitions parsed with
// the classifier), triggers (ACTION_STATEMENT classified), cascades two
// levels deep and YAML edges. Each read is first answered from cache (a
// counted hit), then a write through the proxy reaches what it reads, and
// the next read through the proxy equals the database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { expectWriteInvalidates, MyClients } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const P = uniqueName('mdg');
let proxy: TestProxy;
const clients = new MyClients();
let writer: MyConnection;
let other: MyConnection;

const check = (reads: string[], write: string) => expectWriteInvalidates(proxy, [writer, other], reads, () => writer.query(write));

async function hitsOf(sql: string): Promise<number> {
  const before = (await proxy.stats()).hits;
  await writer.query(sql);
  return (await proxy.stats()).hits - before;
}

beforeAll(async () => {
  for (const sql of [
    `CREATE TABLE ${P}_t (id INT PRIMARY KEY, v INT)`,
    `INSERT INTO ${P}_t VALUES (1, 1), (2, 2), (3, 3)`,
    `CREATE TABLE ${P}_u (id INT PRIMARY KEY, w VARCHAR(10))`,
    `INSERT INTO ${P}_u VALUES (1, 'one'), (2, 'two')`,
    `CREATE VIEW ${P}_v AS SELECT id, v FROM ${P}_t WHERE v < 100`,
    `CREATE VIEW ${P}_vv AS SELECT id, v * 2 AS v2 FROM ${P}_v`,
    `CREATE VIEW ${P}_vj AS SELECT t.id, t.v, u.w FROM ${P}_t t JOIN ${P}_u u ON u.id = t.id`,
    `CREATE TABLE ${P}_orders (id INT PRIMARY KEY, amount INT)`,
    `CREATE TABLE ${P}_audit (op VARCHAR(10), id INT)`,
    `CREATE TABLE ${P}_audit2 (id INT)`,
    `CREATE TRIGGER ${P}_ai AFTER INSERT ON ${P}_orders FOR EACH ROW INSERT INTO ${P}_audit VALUES ('insert', NEW.id)`,
    `CREATE TRIGGER ${P}_au AFTER UPDATE ON ${P}_orders FOR EACH ROW BEGIN INSERT INTO ${P}_audit VALUES ('update', NEW.id); INSERT INTO ${P}_audit2 VALUES (NEW.id); END`,
    `CREATE TABLE ${P}_other (v INT)`,
    `INSERT INTO ${P}_other VALUES (1)`,
    `CREATE TABLE ${P}_late (id INT)`,
    `CREATE TABLE ${P}_late_log (id INT)`,
    `CREATE TABLE ${P}_fa (id INT PRIMARY KEY) ENGINE=InnoDB`,
    `CREATE TABLE ${P}_fb (id INT PRIMARY KEY, a INT, FOREIGN KEY (a) REFERENCES ${P}_fa (id) ON DELETE CASCADE) ENGINE=InnoDB`,
    `CREATE TABLE ${P}_fc (id INT PRIMARY KEY, b INT, FOREIGN KEY (b) REFERENCES ${P}_fb (id) ON DELETE CASCADE) ENGINE=InnoDB`,
    `CREATE VIEW ${P}_fcv AS SELECT COUNT(*) AS n FROM ${P}_fc`,
    `INSERT INTO ${P}_fa VALUES (1), (2)`,
    `INSERT INTO ${P}_fb VALUES (10, 1), (20, 2)`,
    `INSERT INTO ${P}_fc VALUES (100, 10), (200, 20)`,
    `CREATE TABLE ${P}_ext (id INT)`,
    `CREATE TABLE ${P}_ext_totals (n INT)`,
    `INSERT INTO ${P}_ext_totals VALUES (0)`,
  ]) {
    await directSql(sql);
  }
  proxy = await startMysqlProxy({ dependencies: [{ writes: `${P}_ext`, invalidates: [`${P}_ext_totals`] }] });
  writer = await clients.open(proxy.port);
  other = await clients.open(proxy.port);
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const v of ['fcv', 'vj', 'vv', 'v']) await directSql(`DROP VIEW IF EXISTS ${P}_${v}`).catch(() => {});
  for (const t of ['fc', 'fb', 'fa', 't', 'u', 'orders', 'audit', 'audit2', 'other', 'late', 'late_log', 'ext', 'ext_totals']) {
    await directSql(`DROP TABLE IF EXISTS ${P}_${t}`).catch(() => {});
  }
  await endMyDirect();
});

describe('views', () => {
  it('a write to the base table invalidates a cached read of the view', () => check([`SELECT id, v FROM ${P}_v ORDER BY id`], `UPDATE ${P}_t SET v = v + 1 WHERE id = 1`));

  it('a nested view follows the write down two levels', () => check([`SELECT id, v2 FROM ${P}_vv ORDER BY id`], `UPDATE ${P}_t SET v = v + 1 WHERE id = 2`));

  it('a view over a join: a write to the second table', () => check([`SELECT * FROM ${P}_vj ORDER BY id`], `UPDATE ${P}_u SET w = 'uno' WHERE id = 1`));

  it('a write through an updatable view invalidates reads of the view and of its base table', () =>
    check([`SELECT id, v FROM ${P}_v ORDER BY id`, `SELECT id, v FROM ${P}_t ORDER BY id`], `UPDATE ${P}_v SET v = v + 10 WHERE id = 3`));
});

describe('triggers', () => {
  it('a one-statement trigger: its target is fresh, an unrelated table stays cached', async () => {
    const unrelated = `SELECT v FROM ${P}_other`;
    await writer.query(unrelated);
    expect(await hitsOf(unrelated)).toBe(1);
    await check([`SELECT op, id FROM ${P}_audit ORDER BY id, op`], `INSERT INTO ${P}_orders VALUES (1, 100)`);
    expect(await hitsOf(unrelated), 'the trigger body was analysed: only what it writes was invalidated').toBe(1);
  });

  it('a BEGIN … END trigger writing two tables: both are fresh', () =>
    check([`SELECT op, id FROM ${P}_audit ORDER BY id, op`, `SELECT COUNT(*) AS n FROM ${P}_audit2`], `UPDATE ${P}_orders SET amount = 7 WHERE id = 1`));

  it('a trigger created through the proxy after start-up is followed at once', async () => {
    await writer.query(`INSERT INTO ${P}_late VALUES (1)`);
    await writer.query(`CREATE TRIGGER ${P}_late_ai AFTER INSERT ON ${P}_late FOR EACH ROW INSERT INTO ${P}_late_log VALUES (NEW.id)`);
    await check([`SELECT COUNT(*) AS n FROM ${P}_late_log`], `INSERT INTO ${P}_late VALUES (2)`);
  });
});

describe('foreign keys and config edges', () => {
  it('ON DELETE CASCADE two levels deep reaches the grandchild and a view over it', () =>
    check([`SELECT id, b FROM ${P}_fc ORDER BY id`, `SELECT n FROM ${P}_fcv`], `DELETE FROM ${P}_fa WHERE id = 1`));

  it('a dependencies: edge written without a database matches the table in the session database', async () => {
    const sql = `SELECT n FROM ${P}_ext_totals`;
    await writer.query(sql);
    expect(await hitsOf(sql)).toBe(1);
    await directSql(`UPDATE ${P}_ext_totals SET n = n + 1`); // an external job, behind the proxy
    await writer.query(`INSERT INTO ${P}_ext VALUES (1)`);
    const [got] = await writer.query(sql);
    expect(got).toEqual([{ n: 1 }]);
  });
});
