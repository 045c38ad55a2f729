// Statements whose answer is not a function of the tables they read are
// never answered from cache: NOW(), RAND(), UUID(), LAST_INSERT_ID(),
// CONNECTION_ID(), FOUND_ROWS(), user variables, SQL_NO_CACHE, locking
// reads, information_schema. Each is run repeatedly: never a hit, and the
// values differ where MariaDB's do.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { directSql, dropMyTables, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { executeRows, MyClients, rowsOf, sleep } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_vol');
const AI = uniqueName('my_vol_ai');
let proxy: TestProxy;
const clients = new MyClients();
let c: MyConnection;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${T} SELECT seq, CONCAT('v', seq) FROM seq_1_to_10`);
  await directSql(`CREATE TABLE ${AI} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))`);
  proxy = await startMysqlProxy();
  c = await clients.open(proxy.port, { dateStrings: true });
  await warm(proxy, () => rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`)); // the table is known and cacheable
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T, AI);
  await endMyDirect();
});

/** Run `sql` `times` times through `conn` (text, or prepared with `params`); never a hit; returns each answer. */
async function neverCached(sql: string, times = 3, conn: MyConnection = c, params?: unknown[]): Promise<Record<string, unknown>[][]> {
  const answers: Record<string, unknown>[][] = [];
  for (let k = 0; k < times; k += 1) {
    const r = await hitsDuring(proxy, () => (params === undefined ? rowsOf(conn, sql) : executeRows(conn, sql, params)));
    expect(r.hits, `run ${k + 1} of ${sql} was answered from cache`).toBe(0);
    answers.push(r.value);
    await sleep(2); // NOW(6) moves on
  }
  return answers;
}

const distinct = (answers: unknown[]): number => new Set(answers.map((a) => JSON.stringify(a))).size;

describe('volatile functions: never a hit, and the values move', () => {
  it.each([
    ['NOW(6)', `SELECT id, NOW(6) AS t FROM ${T} WHERE id = 1`],
    ['SYSDATE(6)', `SELECT id, SYSDATE(6) AS t FROM ${T} WHERE id = 1`],
    ['CURRENT_TIMESTAMP(6)', `SELECT CURRENT_TIMESTAMP(6) AS t, v FROM ${T} WHERE id = 1`],
    ['UNIX_TIMESTAMP(NOW(6))', `SELECT UNIX_TIMESTAMP(NOW(6)) AS t FROM ${T} WHERE id = 1`],
    ['RAND()', `SELECT id, RAND() AS r FROM ${T} WHERE id = 1`],
    ['ORDER BY RAND()', `SELECT id FROM ${T} ORDER BY RAND() LIMIT 5`],
    ['UUID()', `SELECT UUID() AS u FROM ${T} WHERE id = 1`],
    ['UUID_SHORT()', `SELECT CAST(UUID_SHORT() AS CHAR) AS u FROM ${T} WHERE id = 1`],
  ])('%s', async (_name, sql) => {
    const answers = await neverCached(sql, 4);
    expect(distinct(answers), `MariaDB gives a new value each time: ${JSON.stringify(answers)}`).toBeGreaterThan(1);
  });

  it('NOW() in a prepared statement', async () => {
    const answers = await neverCached(`SELECT NOW(6) AS t, v FROM ${T} WHERE id = ?`, 3, c, [1]);
    expect(distinct(answers)).toBeGreaterThan(1);
  });

  it('LAST_INSERT_ID() follows this session\'s inserts', async () => {
    for (let k = 0; k < 3; k += 1) {
      const [ok] = await c.query(`INSERT INTO ${AI} (v) VALUES ('x')`);
      const id = (ok as { insertId: number }).insertId;
      const r = await hitsDuring(proxy, () => rowsOf(c, `SELECT LAST_INSERT_ID() AS id, v FROM ${T} WHERE id = 1`));
      expect(r.hits).toBe(0);
      expect(Number(r.value[0]!['id'])).toBe(id);
    }
  });

  it('CONNECTION_ID() differs between two connections and is each one\'s own', async () => {
    const other = await clients.open(proxy.port);
    const sql = `SELECT CONNECTION_ID() AS id, v FROM ${T} WHERE id = 1`;
    const mine = await neverCached(sql, 2, c);
    const theirs = await neverCached(sql, 2, other);
    expect(mine[0]).toEqual(mine[1]);
    expect(theirs[0]![0]!['id']).not.toBe(mine[0]![0]!['id']);
  });

  it('FOUND_ROWS() after SQL_CALC_FOUND_ROWS answers for the query before it', async () => {
    for (const limit of [1, 2, 3]) {
      await rowsOf(c, `SELECT SQL_CALC_FOUND_ROWS id FROM ${T} WHERE id <= ${limit * 3} LIMIT 1`);
      const r = await hitsDuring(proxy, () => rowsOf(c, 'SELECT FOUND_ROWS() AS n'));
      expect(r.hits).toBe(0);
      expect(Number(r.value[0]!['n'])).toBe(limit * 3);
    }
  });

  it('@user variables: assignment and reads in a SELECT', async () => {
    for (const k of [1, 2, 3]) {
      await c.query(`SET @k = ${k}`);
      const r = await hitsDuring(proxy, () => rowsOf(c, `SELECT @k AS k, v FROM ${T} WHERE id = 1`));
      expect(r.hits).toBe(0);
      expect(Number(r.value[0]!['k'])).toBe(k);
    }
    const counted = await neverCached(`SELECT @n := COALESCE(@n, 0) + 1 AS n FROM ${T} WHERE id = 1`, 3);
    expect(counted.map((a) => Number(a[0]!['n']))).toEqual([1, 2, 3]);
  });
});

describe('SQL_NO_CACHE, locking reads, information_schema', () => {
  it.each([
    ['SQL_NO_CACHE', (id: number) => `SELECT SQL_NO_CACHE v FROM ${T} WHERE id = ${id}`],
    ['FOR UPDATE', (id: number) => `SELECT v FROM ${T} WHERE id = ${id} FOR UPDATE`],
    ['LOCK IN SHARE MODE', (id: number) => `SELECT v FROM ${T} WHERE id = ${id} LOCK IN SHARE MODE`],
    ['a sqlcached:nocache hint', (id: number) => `SELECT /* sqlcached:nocache */ v FROM ${T} WHERE id = ${id}`],
  ])('%s: never a hit, and a write behind the proxy\'s back is seen at once', async (_name, sqlFor) => {
    const id = 2 + ['SQL_NO_CACHE', 'FOR UPDATE', 'LOCK IN SHARE MODE', 'a sqlcached:nocache hint'].indexOf(_name);
    const sql = sqlFor(id);
    await neverCached(sql, 3);
    await directSql(`UPDATE ${T} SET v = 'behind-${id}' WHERE id = ${id}`);
    expect(await rowsOf(c, sql)).toEqual([{ v: `behind-${id}` }]);
  });

  it('information_schema: never a hit, and a column added behind the proxy\'s back shows at once', async () => {
    const sql = `SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '${T}' ORDER BY ORDINAL_POSITION`;
    expect(await neverCached(sql, 3)).toContainEqual([{ c: 'id' }, { c: 'v' }]);
    await directSql(`ALTER TABLE ${T} ADD COLUMN extra INT`);
    expect(await rowsOf(c, sql)).toEqual([{ c: 'id' }, { c: 'v' }, { c: 'extra' }]);
    await directSql(`ALTER TABLE ${T} DROP COLUMN extra`);
  });

  it('information_schema.PROCESSLIST and SHOW statements reflect the moment', async () => {
    const sql = 'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()';
    await neverCached(sql, 2);
    await neverCached('SHOW SESSION STATUS LIKE "Questions"', 2);
  });
});
