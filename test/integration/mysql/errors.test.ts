// ERR packets through the MySQL listener keep MariaDB's error number,
// SQLSTATE and message on the text and the prepared path; an error is never
// stored as a query's answer; warnings are MariaDB's; and the connection
// stays usable after each.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { answerShape, directSql, dropMyTables, endMyDirect, myErrorShape, myRejection, MY_PORT, type MyConnection } from '../../helpers/mysql.js';
import { executeRows, MyClients, rowsOf } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_err');
const MISSING = uniqueName('my_missing');
let proxy: TestProxy;
const clients = new MyClients();
let client: MyConnection;
let direct: MyConnection;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, n INT); INSERT INTO ${T} VALUES (1, 'one', 1), (2, 'two', 0)`);
  proxy = await startMysqlProxy();
  client = await clients.open(proxy.port, { multipleStatements: true });
  direct = await clients.open(MY_PORT, { multipleStatements: true });
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T, MISSING);
  await endMyDirect();
});

async function usable(c: MyConnection = client): Promise<void> {
  expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`), 'the connection is usable afterwards').toEqual([{ v: 'one' }]);
}

const CASES: [string, string, number, string, unknown[]][] = [
  ['syntax error', `SELEC v FROM ${T}`, 1064, '42000', []],
  ['unknown table', `SELECT v FROM ${MISSING} WHERE id = ?`, 1146, '42S02', [1]],
  ['unknown column', `SELECT nope FROM ${T} WHERE id = ?`, 1054, '42S22', [1]],
  ['duplicate key', `INSERT INTO ${T} VALUES (?, 'dup', 0)`, 1062, '23000', [1]],
  ['NOT NULL violated', `INSERT INTO ${T} VALUES (?, NULL, 0)`, 1048, '23000', [99]],
  ['data too long (strict mode)', `INSERT INTO ${T} VALUES (?, 'far too long', 0)`, 1406, '22001', [98]],
];

describe('text protocol (COM_QUERY)', () => {
  it.each(CASES)('%s: ERR %i, same SQLSTATE and message as MariaDB', async (_name, sql, errno, sqlState, params) => {
    const inlined = params.reduce<string>((s, p) => s.replace('?', String(p)), sql);
    const viaProxy = myErrorShape(await myRejection(client.query(inlined)));
    expect(viaProxy).toMatchObject({ errno, sqlState });
    expect(viaProxy).toEqual(myErrorShape(await myRejection(direct.query(inlined))));
    await usable();
  });

  it('an error in the middle of several statements: the results before it, then MariaDB\'s error, then nothing', async () => {
    const sql = `SELECT 1 AS a; SELECT v FROM ${MISSING}; SELECT 3 AS c`;
    const viaProxy = myErrorShape(await myRejection(client.query(sql)));
    expect(viaProxy).toMatchObject({ errno: 1146 });
    expect(viaProxy).toEqual(myErrorShape(await myRejection(direct.query(sql))));
    await usable();
  });

  it('an unknown-table error is not stored as the answer: once the table exists, the same SELECT returns rows', async () => {
    const sql = `SELECT v FROM ${MISSING} WHERE id = 1`;
    for (let k = 0; k < 3; k += 1) expect((await myRejection(client.query(sql))).errno).toBe(1146);
    await directSql(`CREATE TABLE ${MISSING} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${MISSING} VALUES (1, 'now-here')`);
    expect(await rowsOf(client, sql)).toEqual([{ v: 'now-here' }]);
    await directSql(`DROP TABLE ${MISSING}`);
  });

  it('a data-dependent error (subquery returns more than 1 row) is never cached', async () => {
    const sql = `SELECT id FROM ${T} WHERE id = (SELECT id FROM ${T} WHERE n >= 0)`;
    for (let k = 0; k < 3; k += 1) expect(myErrorShape(await myRejection(client.query(sql)))).toMatchObject({ errno: 1242, sqlState: '21000' });
    await directSql(`UPDATE ${T} SET n = -1 WHERE id = 2`);
    expect(await rowsOf(client, sql)).toEqual([{ id: 1 }]);
    await directSql(`UPDATE ${T} SET n = 0 WHERE id = 2`);
  });

  it('warnings: a SELECT that warns reports the same warning count, and SHOW WARNINGS after it lists what MariaDB lists', async () => {
    const sql = `SELECT v, CAST('12abc' AS SIGNED) AS n FROM ${T} WHERE id = 1`;
    const run = async (c: MyConnection): Promise<unknown[]> => {
      const answer = await c.query(sql);
      return [answerShape(answer), await rowsOf(c, 'SHOW WARNINGS')];
    };
    const want = await run(direct);
    expect((want[1] as unknown[]).length, 'MariaDB warns (else this test proves nothing)').toBeGreaterThan(0);
    for (let k = 0; k < 3; k += 1) expect(await run(client), `run ${k + 1}`).toEqual(want);
  });
});

describe('prepared statements (COM_STMT_PREPARE / EXECUTE)', () => {
  it.each(CASES)('%s: ERR %i, same SQLSTATE and message as MariaDB', async (_name, sql, errno, sqlState, params) => {
    const viaProxy = myErrorShape(await myRejection(client.execute(sql, params as never[])));
    expect(viaProxy).toMatchObject({ errno, sqlState });
    expect(viaProxy).toEqual(myErrorShape(await myRejection(direct.execute(sql, params as never[]))));
    await usable();
    expect(await executeRows(client, `SELECT v FROM ${T} WHERE id = ?`, [2]), 'prepared statements still work').toEqual([{ v: 'two' }]);
  });

  it('an execute error leaves the prepared statement usable with other parameters', async () => {
    const sql = `INSERT INTO ${T} VALUES (?, ?, 0)`;
    expect((await myRejection(client.execute(sql, [1, 'dup']))).errno).toBe(1062);
    await client.execute(sql, [50, 'ok']);
    expect(await executeRows(client, `SELECT v FROM ${T} WHERE id = ?`, [50])).toEqual([{ v: 'ok' }]);
    await directSql(`DELETE FROM ${T} WHERE id = 50`);
  });

  it('a wrong number of parameters: the same error as from MariaDB', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = ? AND n = ?`;
    const viaProxy = myErrorShape(await myRejection(client.execute(sql, [1])));
    expect(viaProxy).toEqual(myErrorShape(await myRejection(direct.execute(sql, [1]))));
    await usable();
  });
});

describe('errors and the cache', () => {
  it('a cached SELECT keeps answering after errors on the same connection', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 2`;
    await warm(proxy, () => rowsOf(client, sql));
    await myRejection(client.query('SELEC 1'));
    expect(await rowsOf(client, sql)).toEqual([{ v: 'two' }]);
    await myRejection(client.execute(`SELECT nope FROM ${T}`));
    expect(await rowsOf(client, sql)).toEqual([{ v: 'two' }]);
  });

  it('a multi-row INSERT that fails on a duplicate: the table reads as MariaDB has it (the statement rolled back)', async () => {
    const sql = `SELECT id, v FROM ${T} ORDER BY id`;
    const before = await warm(proxy, () => rowsOf(client, sql));
    await myRejection(client.query(`INSERT INTO ${T} VALUES (3, 'ok', 0), (1, 'dup', 0)`));
    expect(await rowsOf(client, sql)).toEqual(before);
    expect(await rowsOf(client, sql)).toEqual(await rowsOf(direct, sql));
  });
});
