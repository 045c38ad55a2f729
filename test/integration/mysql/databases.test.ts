// One table name in two databases (sqlcached_db1.N and sqlcached_db2.N,
// different rows): the current database decides what an unqualified name
// means, whichever way it was chosen (connect, USE, COM_INIT_DB,
// COM_CHANGE_USER), and a write to one is seen by qualified reads from
// sessions whose current database is the other.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { directSql, endMyDirect, mysqlCliOk, MY_DB1, MY_DB2, PW_USER, TEST_PASSWORD } from '../../helpers/mysql.js';
import { cachedRows, MyClients, rowsOf } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const N = uniqueName('my_items'); // in db1 and db2
let proxy: TestProxy;
const clients = new MyClients();
const read = `SELECT v FROM ${N} WHERE id = 1`;

beforeAll(async () => {
  for (const db of [MY_DB1, MY_DB2]) {
    await directSql(`CREATE TABLE ${db}.${N} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${db}.${N} VALUES (1, '${db}'), (2, '${db}-2')`);
  }
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directSql(`DROP TABLE IF EXISTS ${MY_DB1}.${N}, ${MY_DB2}.${N}`);
  await endMyDirect();
});

/** Put back the rows every test starts from. */
async function reset(): Promise<void> {
  for (const db of [MY_DB1, MY_DB2]) await directSql(`UPDATE ${db}.${N} SET v = IF(id = 1, '${db}', '${db}-2')`);
  await proxy.invalidate({ all: true });
}

describe('the current database decides an unqualified name', () => {
  it('two connections, one per database, same text: each gets its own database\'s rows, also from cache', async () => {
    await reset();
    const one = await clients.open(proxy.port, { database: MY_DB1 });
    const two = await clients.open(proxy.port, { database: MY_DB2 });
    expect(await cachedRows(proxy, one, read)).toEqual([{ v: MY_DB1 }]);
    expect(await rowsOf(two, read)).toEqual([{ v: MY_DB2 }]);
    expect(await cachedRows(proxy, two, read)).toEqual([{ v: MY_DB2 }]);
    expect(await rowsOf(one, read)).toEqual([{ v: MY_DB1 }]);
  });

  it('USE (COM_QUERY) switches back and forth without mixing the two', async () => {
    await reset();
    const c = await clients.open(proxy.port, { database: MY_DB1 });
    expect(await cachedRows(proxy, c, read)).toEqual([{ v: MY_DB1 }]);
    await c.query(`USE ${MY_DB2}`);
    expect(await rowsOf(c, read), 'after USE db2').toEqual([{ v: MY_DB2 }]);
    expect(await cachedRows(proxy, c, read)).toEqual([{ v: MY_DB2 }]);
    await c.query(`USE \`${MY_DB1}\``);
    expect(await rowsOf(c, read), 'after USE `db1`').toEqual([{ v: MY_DB1 }]);
    expect((await rowsOf(c, 'SELECT DATABASE() AS db'))[0]!['db']).toBe(MY_DB1);
  });

  it('USE inside a multi-statement COM_QUERY switches too', async () => {
    await reset();
    const c = await clients.open(proxy.port, { database: MY_DB1, multipleStatements: true });
    expect(await cachedRows(proxy, c, read)).toEqual([{ v: MY_DB1 }]);
    await c.query(`SELECT 1; USE ${MY_DB2}`);
    expect(await rowsOf(c, read)).toEqual([{ v: MY_DB2 }]);
  });

  it('COM_INIT_DB (the mariadb CLI\'s `use`) switches, in one session, also when answered from cache', async () => {
    await reset();
    const script = `SELECT v FROM ${N} WHERE id = 1;\nuse ${MY_DB2}\nSELECT v FROM ${N} WHERE id = 1;\nuse ${MY_DB1}\nSELECT v FROM ${N} WHERE id = 1;\n`;
    const expected = [MY_DB1, MY_DB2, MY_DB1].join('\n');
    for (let run = 0; run < 3; run += 1) {
      expect(await mysqlCliOk(proxy.port, ['-N'], script, { db: MY_DB1 }), `run ${run + 1}`).toBe(expected);
    }
    await mysqlCliOk(proxy.port, [], `use ${MY_DB2}\nUPDATE ${N} SET v = 'changed' WHERE id = 1;\n`, { db: MY_DB1 });
    expect(await mysqlCliOk(proxy.port, ['-N'], script, { db: MY_DB1 })).toBe([MY_DB1, 'changed', MY_DB1].join('\n'));
  });

  it('COM_CHANGE_USER with another database switches what an unqualified name reads', async () => {
    await reset();
    const c = await clients.open(proxy.port, { user: PW_USER, password: TEST_PASSWORD, database: MY_DB1 });
    expect(await cachedRows(proxy, c, read)).toEqual([{ v: MY_DB1 }]);
    await c.changeUser({ user: PW_USER, password: TEST_PASSWORD, database: MY_DB2 });
    expect(await rowsOf(c, read)).toEqual([{ v: MY_DB2 }]);
  });
});

describe('qualified names and writes across databases', () => {
  it('a qualified read of db1 from a session in db2 is db1\'s rows', async () => {
    await reset();
    const two = await clients.open(proxy.port, { database: MY_DB2 });
    expect(await cachedRows(proxy, two, `SELECT v FROM ${MY_DB1}.${N} WHERE id = 1`)).toEqual([{ v: MY_DB1 }]);
    expect(await rowsOf(two, read)).toEqual([{ v: MY_DB2 }]);
  });

  it('an unqualified write in db1 makes a qualified db1 read from a db2 session fresh', async () => {
    await reset();
    const one = await clients.open(proxy.port, { database: MY_DB1 });
    const two = await clients.open(proxy.port, { database: MY_DB2 });
    const qualified = `SELECT v FROM ${MY_DB1}.${N} WHERE id = 2`;
    expect(await cachedRows(proxy, two, qualified)).toEqual([{ v: `${MY_DB1}-2` }]);
    await one.query(`UPDATE ${N} SET v = 'written-in-db1' WHERE id = 2`);
    expect(await rowsOf(two, qualified)).toEqual([{ v: 'written-in-db1' }]);
    expect(await rowsOf(two, `SELECT v FROM ${N} WHERE id = 2`), 'db2 untouched').toEqual([{ v: `${MY_DB2}-2` }]);
  });

  it('a qualified write to db1 from a db2 session makes an unqualified db1 read fresh', async () => {
    await reset();
    const one = await clients.open(proxy.port, { database: MY_DB1 });
    const two = await clients.open(proxy.port, { database: MY_DB2 });
    expect(await cachedRows(proxy, one, read)).toEqual([{ v: MY_DB1 }]);
    expect(await cachedRows(proxy, two, read)).toEqual([{ v: MY_DB2 }]);
    await two.query(`UPDATE ${MY_DB1}.${N} SET v = 'from-db2-session' WHERE id = 1`);
    expect(await rowsOf(one, read)).toEqual([{ v: 'from-db2-session' }]);
    expect(await rowsOf(two, read), 'db2 untouched').toEqual([{ v: MY_DB2 }]);
  });

  it('a write after USE lands in the new database\'s table, and reads there are fresh', async () => {
    await reset();
    const c = await clients.open(proxy.port, { database: MY_DB1 });
    const other = await clients.open(proxy.port, { database: MY_DB2 });
    expect(await cachedRows(proxy, other, read)).toEqual([{ v: MY_DB2 }]);
    await c.query(`USE ${MY_DB2}`);
    await c.query(`UPDATE ${N} SET v = 'after-use' WHERE id = 1`);
    expect(await rowsOf(other, read)).toEqual([{ v: 'after-use' }]);
    expect(await rowsOf(c, `SELECT v FROM ${MY_DB1}.${N} WHERE id = 1`)).toEqual([{ v: MY_DB1 }]);
  });

  it('a write to db2 through a session without a current database, by qualified name', async () => {
    await reset();
    const two = await clients.open(proxy.port, { database: MY_DB2 });
    const none = await clients.open(proxy.port, { database: undefined });
    expect(await warm(proxy, () => rowsOf(two, read))).toEqual([{ v: MY_DB2 }]);
    await none.query(`UPDATE ${MY_DB2}.${N} SET v = 'no-db-session' WHERE id = 1`);
    expect(await rowsOf(two, read)).toEqual([{ v: 'no-db-session' }]);
  });
});
