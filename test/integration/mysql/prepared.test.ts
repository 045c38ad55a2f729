// Prepared statements through the MySQL listener with mysql2's execute()
// (COM_STMT_PREPARE / COM_STMT_EXECUTE, binary rows) and COM_STMT_CLOSE:
// every parameter and column type as MariaDB answers it, re-execution with
// other and same parameters, NULLs, and the prepared path's cache.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import {
  answerShape,
  connectMysql,
  directSql,
  dropMyTables,
  endMyDirect,
  lastQueryId,
  myErrorShape,
  myRejection,
  MY_PORT,
  RAW_VALUES,
  type MyConnection,
} from '../../helpers/mysql.js';
import { executeRows, MyClients, rowsOf, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_prep');
let proxy: TestProxy;
const clients = new MyClients();
let client: MyConnection;
let direct: MyConnection;

const COLUMNS = 'id, i, bi, dec1, dbl, vc, bl, day, dtm, js, ts, tiny, u';

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (
    id INT PRIMARY KEY, i INT, bi BIGINT, dec1 DECIMAL(20,6), dbl DOUBLE, vc VARCHAR(100), bl BLOB,
    day DATE, dtm DATETIME(6), js JSON, ts TIMESTAMP(3) NULL, tiny TINYINT, u BIGINT UNSIGNED
  ) CHARACTER SET utf8mb4`);
  await directSql(
    `INSERT INTO ${T} SELECT seq, seq * 10, seq * 1000000000007, seq / 9, seq / 7, CONCAT('v', seq, 'ü'), UNHEX(REPEAT('a5', seq)),
       '2000-01-01' + INTERVAL seq DAY, '2024-02-29 23:59:59.123456' + INTERVAL seq SECOND, JSON_ARRAY(seq, 'x'),
       '2024-01-01 00:00:00.5', CAST(seq AS SIGNED) - 100, 18446744073709551615 - seq
     FROM seq_1_to_40`,
  );
  await directSql(`INSERT INTO ${T} (id) VALUES (1000)`); // a row of NULLs
  proxy = await startMysqlProxy();
  client = await clients.open(proxy.port);
  direct = await clients.open(MY_PORT);
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

describe('execute(): the same answer as MariaDB', () => {
  it('every column type in binary rows: same values and column definitions (raw values and mysql2 defaults)', async () => {
    const sql = `SELECT ${COLUMNS} FROM ${T} WHERE id IN (?, ?, ?) ORDER BY id`;
    for (const options of [RAW_VALUES, {}]) {
      const p = await connectMysql(proxy.port, options);
      const d = await connectMysql(MY_PORT, options);
      try {
        const want = answerShape(await d.execute(sql, [1, 7, 1000]));
        expect(answerShape(await p.execute(sql, [1, 7, 1000]))).toEqual(want);
        expect(answerShape(await warm(proxy, () => p.execute(sql, [1, 7, 1000]))), 'the cached answer').toEqual(want);
      } finally {
        await p.end();
        await d.end();
      }
    }
  });

  it('parameters of every type are bound as MariaDB binds them', async () => {
    const sql =
      'SELECT ? AS i, ? AS bi, ? AS dbl, ? AS s, ? AS buf, ? AS dt, ? AS nul, ? AS bool, ? AS neg, ? AS bigs, ? AS js';
    const params = [42, 9007199254740993n, 3.14159, 'hé ✓', Buffer.from([0, 1, 255]), new Date(Date.UTC(2024, 1, 29, 12, 0, 0)), null, true, -7, '123456789012345678901234567890', JSON.stringify({ a: 1 })];
    const via = await connectMysql(proxy.port, RAW_VALUES);
    const d = await connectMysql(MY_PORT, RAW_VALUES);
    try {
      expect(answerShape(await via.execute(sql, params))).toEqual(answerShape(await d.execute(sql, params)));
    } finally {
      await via.end();
      await d.end();
    }
  });

  it('the same statement executed with other parameters, then the same again: the right rows every time', async () => {
    const sql = `SELECT id, vc FROM ${T} WHERE id = ?`;
    for (const id of [2, 3, 2, 4, 3, 3]) {
      expect(await executeRows(client, sql, [id]), `id ${id}`).toEqual(await truth(`SELECT id, vc FROM ${T} WHERE id = ?`, [id]));
    }
  });

  it('NULL parameters: `<=> ?` matches the NULL row, `= ?` matches nothing, as in MariaDB', async () => {
    expect(await executeRows(client, `SELECT id FROM ${T} WHERE i <=> ?`, [null])).toEqual([{ id: 1000 }]);
    expect(await executeRows(client, `SELECT id FROM ${T} WHERE i = ?`, [null])).toEqual([]);
    expect(await executeRows(client, `SELECT id FROM ${T} WHERE i <=> ? AND vc <=> ?`, [20, null])).toEqual([]);
    expect(await executeRows(client, `SELECT id FROM ${T} WHERE i <=> ? OR vc <=> ? ORDER BY id`, [20, null])).toEqual([{ id: 2 }, { id: 1000 }]);
  });

  it('many parameters (an IN list of 100)', async () => {
    const ids = Array.from({ length: 100 }, (_, k) => k + 1);
    const sql = `SELECT id FROM ${T} WHERE id IN (${ids.map(() => '?').join(', ')}) ORDER BY id`;
    expect(await executeRows(client, sql, ids)).toEqual(await truth(sql, ids));
  });

  it('an insert of every type through execute() stores what a direct execute() stores', async () => {
    const sql = `INSERT INTO ${T} (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    const row = (id: number) => [id, -5, '-9223372036854775808', '12345678901234.123456', -0.5, 'ünï', Buffer.from('0001ff', 'hex'), '1999-12-31', '2038-01-19 03:14:08.999999', '{"k": [1, 2]}', '2001-02-03 04:05:06.789', 127, '18446744073709551615'];
    await client.execute(sql, row(2001));
    await direct.execute(sql, row(2002));
    const read = `SELECT ${COLUMNS.replace('id, ', '')} FROM ${T} WHERE id = ?`;
    expect(await truth(read, [2001])).toEqual(await truth(read, [2002]));
  });
});

describe('execute(): caching', () => {
  it('a repeated execute() is a hit; a write behind the proxy\'s back stays unseen until a prepared write through it', async () => {
    const sql = `SELECT vc FROM ${T} WHERE id = ?`;
    expect(await warm(proxy, () => executeRows(client, sql, [5]))).toEqual([{ vc: 'v5ü' }]);
    const second = await hitsDuring(proxy, () => executeRows(client, sql, [5]));
    expect(second.hits).toBe(1);
    expect(second.after.misses - second.before.misses).toBe(0);

    await directSql(`UPDATE ${T} SET vc = 'behind' WHERE id = 5`);
    expect(await executeRows(client, sql, [5]), 'served from cache').toEqual([{ vc: 'v5ü' }]);
    expect(await executeRows(client, sql, [6]), 'other parameters are another entry').toEqual([{ vc: 'v6ü' }]);

    await client.execute(`UPDATE ${T} SET vc = ? WHERE id = ?`, ['through', 5]);
    expect(await executeRows(client, sql, [5]), 'a prepared write makes the next read fresh').toEqual([{ vc: 'through' }]);
  });

  it('a prepared hit never reaches the database: the upstream connection\'s last QUERY_ID does not move', async () => {
    const c = await clients.open(proxy.port);
    const upstream = Number((await rowsOf(c, 'SELECT CONNECTION_ID() AS id'))[0]!['id']);
    const sql = `SELECT vc FROM ${T} WHERE id = ?`;
    await warm(proxy, () => executeRows(c, sql, [13]));
    const before = await lastQueryId(upstream);
    expect((await hitsDuring(proxy, () => executeRows(c, sql, [13]))).hits).toBe(1);
    expect(await lastQueryId(upstream), 'MariaDB ran nothing for the hit').toBe(before);
    await executeRows(c, sql, [14]); // control: a miss does reach it
    expect(await lastQueryId(upstream)).toBeGreaterThan(before);
  });

  it('a prepared read cached on one connection is fresh on another after a text write', async () => {
    const sql = `SELECT vc FROM ${T} WHERE id = ?`;
    await warm(proxy, () => executeRows(client, sql, [8]));
    const other = await clients.open(proxy.port);
    await other.query(`UPDATE ${T} SET vc = 'text-write' WHERE id = 8`);
    expect(await executeRows(client, sql, [8])).toEqual([{ vc: 'text-write' }]);
    expect(await executeRows(other, sql, [8])).toEqual([{ vc: 'text-write' }]);
  });

  it('the text and the binary answer of one SELECT are never swapped', async () => {
    const sql = `SELECT id, i, dbl, day FROM ${T} WHERE id = 9`;
    const text = await warm(proxy, () => client.query(sql));
    const binary = await warm(proxy, () => client.execute(sql));
    expect(answerShape(text)).toEqual(answerShape(await direct.query(sql)));
    expect(answerShape(binary)).toEqual(answerShape(await direct.execute(sql)));
  });
});

describe('COM_STMT_CLOSE', () => {
  it('after close(), executing the closed statement id gets MariaDB\'s ERR 1243, even for a cached read', async () => {
    const sql = `SELECT vc FROM ${T} WHERE id = ?`;
    const run = async (port: number): Promise<{ rows: unknown; err: unknown }> => {
      const c = await connectMysql(port);
      try {
        const stmt = await c.prepare(sql);
        const [rows] = await stmt.execute([10]);
        await stmt.execute([10]); // now cached (through the proxy)
        stmt.close();
        const err = myErrorShape(await myRejection(stmt.execute([10])));
        // The message names the statement id, which is per connection.
        return { rows: (rows as object[]).map((r) => ({ ...r })), err: { ...err, sqlMessage: err.sqlMessage?.replace(/\(\d+\)/, '(id)') } };
      } finally {
        await c.end();
      }
    };
    const viaProxy = await run(proxy.port);
    expect(viaProxy.err).toMatchObject({ errno: 1243 });
    expect(viaProxy).toEqual(await run(MY_PORT));
  });

  it('unprepare() then execute() again prepares anew and answers correctly', async () => {
    const sql = `SELECT vc FROM ${T} WHERE id = ?`;
    await executeRows(client, sql, [11]);
    client.unprepare(sql);
    expect(await executeRows(client, sql, [11])).toEqual([{ vc: 'v11ü' }]);
    client.unprepare(sql);
    await client.query(`UPDATE ${T} SET vc = 'after-unprepare' WHERE id = 11`);
    expect(await executeRows(client, sql, [11])).toEqual([{ vc: 'after-unprepare' }]);
  });

  it('many prepare/close cycles leave MariaDB with no open statements for the session', async () => {
    const c = await clients.open(proxy.port);
    for (let k = 0; k < 50; k += 1) {
      const stmt = await c.prepare(`SELECT vc FROM ${T} WHERE id = ? AND ${k} = ${k}`);
      await stmt.execute([12]);
      stmt.close();
    }
    await c.ping(); // a round trip later, every close has reached the server
    const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Com_stmt_close'");
    const closed = Number((rows as { Value: string }[])[0]?.Value);
    const [prep] = await c.query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'");
    expect(closed, 'every COM_STMT_CLOSE reached MariaDB').toBe(Number((prep as { Value: string }[])[0]?.Value));
  });
});
