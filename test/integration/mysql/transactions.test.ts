// Transactions through the MySQL listener: read-your-own-writes inside,
// ROLLBACK leaves nothing behind (not even in the cache), COMMIT shows the
// new rows, autocommit=0, savepoints, implicit commit by DDL; inside a
// transaction nothing is served from cache (cache.in_transactions: false).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { directSql, dropMyTables, endMyDirect, MY_PORT, type MyConnection } from '../../helpers/mysql.js';
import { executeRows, MyClients, rowsOf, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_tx');
const DDL = uniqueName('my_tx_ddl');
let proxy: TestProxy;
const clients = new MyClients();
let a: MyConnection; // the transaction
let b: MyConnection; // another session reading meanwhile
const all = `SELECT id, v FROM ${T} ORDER BY id`;
const one = (id: number): string => `SELECT v FROM ${T} WHERE id = ${id}`;
const initial = [1, 2, 3].map((id) => ({ id, v: `v${id}` }));

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB`);
  proxy = await startMysqlProxy();
  a = await clients.open(proxy.port);
  b = await clients.open(proxy.port);
});

beforeEach(async () => {
  await directSql(`DELETE FROM ${T}; INSERT INTO ${T} VALUES (1, 'v1'), (2, 'v2'), (3, 'v3')`);
  await proxy.invalidate({ all: true });
  await a.query('SET autocommit = 1');
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T, DDL);
  await endMyDirect();
});

describe('ROLLBACK', () => {
  it('BEGIN, INSERT, read-your-own-write, ROLLBACK: every later read shows the old rows, never the rolled-back one', async () => {
    expect(await warm(proxy, () => rowsOf(a, all))).toEqual(initial);
    await a.query('BEGIN');
    await a.query(`INSERT INTO ${T} VALUES (4, 'uncommitted')`);
    expect(await rowsOf(a, all), 'the transaction sees its own insert').toContainEqual({ id: 4, v: 'uncommitted' });
    expect(await rowsOf(b, all), 'another session does not').toEqual(initial);
    await a.query('ROLLBACK');
    for (const c of [a, b, a, b]) expect(await rowsOf(c, all)).toEqual(initial);
  });

  it('a read inside the transaction is not stored: after ROLLBACK no session gets the uncommitted rows from cache', async () => {
    await a.query('START TRANSACTION');
    await a.query(`UPDATE ${T} SET v = 'dirty' WHERE id = 2`);
    for (let k = 0; k < 3; k += 1) expect(await rowsOf(a, one(2))).toEqual([{ v: 'dirty' }]);
    for (let k = 0; k < 3; k += 1) expect(await executeRows(a, `SELECT v FROM ${T} WHERE id = ?`, [2])).toEqual([{ v: 'dirty' }]);
    await a.query('ROLLBACK');
    expect(await rowsOf(b, one(2))).toEqual([{ v: 'v2' }]);
    expect(await rowsOf(a, one(2))).toEqual([{ v: 'v2' }]);
    expect(await executeRows(b, `SELECT v FROM ${T} WHERE id = ?`, [2])).toEqual([{ v: 'v2' }]);
  });

  it('ROLLBACK TO SAVEPOINT undoes only the later write, and COMMIT shows the earlier one', async () => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 'kept' WHERE id = 1`);
    await a.query('SAVEPOINT s1');
    await a.query(`UPDATE ${T} SET v = 'undone' WHERE id = 2`);
    expect(await rowsOf(a, one(2))).toEqual([{ v: 'undone' }]);
    await a.query('ROLLBACK TO SAVEPOINT s1');
    expect(await rowsOf(a, one(2)), 'inside, after ROLLBACK TO').toEqual([{ v: 'v2' }]);
    await a.query('COMMIT');
    expect(await rowsOf(b, all)).toEqual([{ id: 1, v: 'kept' }, { id: 2, v: 'v2' }, { id: 3, v: 'v3' }]);
  });
});

describe('COMMIT', () => {
  it('START TRANSACTION, writes, COMMIT: another session\'s cached read is fresh at once', async () => {
    expect(await warm(proxy, () => rowsOf(b, all))).toEqual(initial);
    await a.query('START TRANSACTION');
    await a.query(`UPDATE ${T} SET v = 'committed' WHERE id = 1`);
    await a.query(`DELETE FROM ${T} WHERE id = 3`);
    expect(await rowsOf(b, all), 'not yet committed').toEqual(initial);
    await a.query('COMMIT');
    expect(await rowsOf(b, all)).toEqual([{ id: 1, v: 'committed' }, { id: 2, v: 'v2' }]);
    expect(await rowsOf(a, all)).toEqual(await truth(all));
  });

  it('a read of the old rows cached by another session while the transaction was open is not served after COMMIT', async () => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 'late' WHERE id = 2`);
    expect(await warm(proxy, () => rowsOf(b, one(2))), 'b caches the committed (old) row meanwhile').toEqual([{ v: 'v2' }]);
    await a.query('COMMIT');
    expect(await rowsOf(b, one(2))).toEqual([{ v: 'late' }]);
  });

  it('SET autocommit = 0, writes, COMMIT: fresh after the COMMIT; a ROLLBACK in that mode leaves the old rows', async () => {
    expect(await warm(proxy, () => rowsOf(b, all))).toEqual(initial);
    await a.query('SET autocommit = 0');
    await a.query(`UPDATE ${T} SET v = 'ac0' WHERE id = 1`);
    await a.query(`INSERT INTO ${T} VALUES (5, 'ac0-new')`);
    expect(await rowsOf(a, one(1)), 'own write').toEqual([{ v: 'ac0' }]);
    expect(await rowsOf(b, all), 'b before COMMIT').toEqual(initial);
    await a.query('COMMIT');
    const committed = [{ id: 1, v: 'ac0' }, { id: 2, v: 'v2' }, { id: 3, v: 'v3' }, { id: 5, v: 'ac0-new' }];
    expect(await rowsOf(b, all), 'b after COMMIT').toEqual(committed);

    await a.query(`DELETE FROM ${T} WHERE id = 5`); // a new implicit transaction
    expect(await rowsOf(a, all)).not.toContainEqual({ id: 5, v: 'ac0-new' });
    await a.query('ROLLBACK');
    expect(await rowsOf(b, all), 'b after ROLLBACK').toEqual(committed);
    expect(await rowsOf(a, all), 'a after ROLLBACK').toEqual(committed);
    await a.query('SET autocommit = 1');
  });

  it('implicit commit by DDL: a ROLLBACK after CREATE TABLE does not undo the earlier INSERT', async () => {
    expect(await warm(proxy, () => rowsOf(b, all))).toEqual(initial);
    await a.query('BEGIN');
    await a.query(`INSERT INTO ${T} VALUES (6, 'implicitly-committed')`);
    await a.query(`CREATE TABLE ${DDL} (id INT)`); // commits the transaction
    await a.query('ROLLBACK');
    expect(await rowsOf(b, all)).toContainEqual({ id: 6, v: 'implicitly-committed' });
    expect(await rowsOf(a, all)).toEqual(await truth(all));
    await a.query(`DROP TABLE ${DDL}`);
  });

  it('a transaction ended by disconnecting rolls back, and the next reads are the old rows', async () => {
    const c = await clients.open(proxy.port);
    await c.query('BEGIN');
    await c.query(`UPDATE ${T} SET v = 'lost' WHERE id = 3`);
    await c.end();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await rowsOf(b, one(3))).toEqual([{ v: 'v3' }]);
  });
});

describe('no cache inside a transaction (in_transactions: false)', () => {
  it('a read inside BEGIN … COMMIT goes to the database: no hit, and it sees a committed write the cache has not', async () => {
    const sql = one(1);
    expect(await warm(proxy, () => rowsOf(a, sql))).toEqual([{ v: 'v1' }]);
    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 1`); // the cache still holds v1
    await a.query('BEGIN');
    const inside = await hitsDuring(proxy, () => rowsOf(a, sql));
    expect(inside.hits, 'no hit inside a transaction').toBe(0);
    expect(inside.value).toEqual([{ v: 'behind' }]);
    await a.query('COMMIT');
  });

  it('the same with START TRANSACTION READ ONLY and with autocommit = 0', async () => {
    const sql = one(2);
    expect(await warm(proxy, () => rowsOf(a, sql))).toEqual([{ v: 'v2' }]);
    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 2`);
    await a.query('START TRANSACTION READ ONLY');
    expect((await hitsDuring(proxy, () => rowsOf(a, sql))).hits).toBe(0);
    await a.query('COMMIT');
    await a.query('SET autocommit = 0');
    const r = await hitsDuring(proxy, () => rowsOf(a, sql));
    expect(r.hits, 'autocommit = 0: every statement is in a transaction').toBe(0);
    expect(r.value).toEqual([{ v: 'behind' }]);
    await a.query('COMMIT');
    await a.query('SET autocommit = 1');
  });

  it('REPEATABLE READ: a transaction keeps its snapshot, as against MariaDB directly', async () => {
    const run = async (port: number): Promise<unknown[]> => {
      await directSql(`UPDATE ${T} SET v = 'v3' WHERE id = 3`);
      const c = await clients.open(port);
      await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await c.query('BEGIN');
      const first = await rowsOf(c, one(3));
      await directSql(`UPDATE ${T} SET v = 'moved-on' WHERE id = 3`);
      const second = await rowsOf(c, one(3));
      await c.query('COMMIT');
      const after = await rowsOf(c, one(3));
      return [first, second, after];
    };
    const viaProxy = await run(proxy.port);
    expect(viaProxy).toEqual([[{ v: 'v3' }], [{ v: 'v3' }], [{ v: 'moved-on' }]]);
    expect(viaProxy).toEqual(await run(MY_PORT));
  });
});

describe('errors inside a transaction (MySQL keeps the transaction open)', () => {
  it('a duplicate key inside BEGIN does not end the transaction; COMMIT keeps the other write', async () => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 'before-error' WHERE id = 1`);
    await expect(a.query(`INSERT INTO ${T} VALUES (2, 'dup')`)).rejects.toMatchObject({ errno: 1062 });
    expect(await rowsOf(a, one(1)), 'still in the transaction').toEqual([{ v: 'before-error' }]);
    await a.query('COMMIT');
    expect(await rowsOf(b, one(1))).toEqual([{ v: 'before-error' }]);
  });
});
