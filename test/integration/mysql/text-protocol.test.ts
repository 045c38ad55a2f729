// COM_QUERY through the MySQL listener with mysql2 (text protocol): rows,
// types and column metadata as MariaDB sends them, several result sets in
// one query, COM_PING; repeated SELECTs answered from cache without
// touching the database.

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
  MY_PORT,
  RAW_VALUES,
  type MyConnection,
} from '../../helpers/mysql.js';
import { MyClients, rowsOf } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_text');
let proxy: TestProxy;
const clients = new MyClients();
let client: MyConnection; // through the proxy, multipleStatements on
let direct: MyConnection; // the same statements, straight to MariaDB

async function value(id: number, c: MyConnection = client): Promise<unknown> {
  return (await rowsOf(c, `SELECT v FROM ${T} WHERE id = ${id}`))[0]?.['v'];
}

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (
    id INT PRIMARY KEY, v VARCHAR(50) NOT NULL, n INT NOT NULL, big BIGINT, d DECIMAL(12,3), f DOUBLE,
    dt DATETIME(3), day DATE, ts TIMESTAMP NULL, j JSON, b BLOB, e ENUM('a','b'), u INT UNSIGNED, t TEXT
  ) CHARACTER SET utf8mb4`);
  await directSql(
    `INSERT INTO ${T} SELECT seq, CONCAT('v', seq), seq, seq * 9007199254740993, seq / 7, seq / 3, '2024-02-29 12:34:56.789',
       '2024-02-29', '2024-02-29 10:00:00', JSON_OBJECT('k', seq), UNHEX('00ff10'), IF(seq % 2, 'a', 'b'), 4294967295, REPEAT('é', seq)
     FROM seq_1_to_30`,
  );
  proxy = await startMysqlProxy();
  client = await clients.open(proxy.port, { multipleStatements: true });
  direct = await clients.open(MY_PORT, { multipleStatements: true });
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

describe('COM_QUERY: the same answer as MariaDB', () => {
  it('every column type: same rows and same column definitions (raw values and mysql2 defaults)', async () => {
    const sql = `SELECT * FROM ${T} WHERE id <= 3 ORDER BY id`;
    for (const options of [RAW_VALUES, {}]) {
      const p = await connectMysql(proxy.port, options);
      const d = await connectMysql(MY_PORT, options);
      try {
        const truth = answerShape(await d.query(sql));
        expect(answerShape(await p.query(sql)), 'first answer (from the database)').toEqual(truth);
        expect(answerShape(await warm(proxy, () => p.query(sql))), 'the cached answer').toEqual(truth);
      } finally {
        await p.end();
        await d.end();
      }
    }
  });

  it('expressions, NULLs, an empty result and a zero-column OK answer equal MariaDB\'s', async () => {
    for (const sql of [
      `SELECT 1 AS one, NULL AS nothing, 'x' AS s, 1.5 AS d, CAST(1 AS UNSIGNED) AS u, 1e300 AS f`,
      `SELECT id, v FROM ${T} WHERE id < 0`,
      `SELECT COUNT(*) AS c, SUM(n) AS s, GROUP_CONCAT(v ORDER BY id) AS g FROM ${T}`,
      `DO 1`,
      `SET @a = 1`,
    ]) {
      expect(answerShape(await client.query(sql)), sql).toEqual(answerShape(await direct.query(sql)));
    }
  });

  it('OK packets of writes (affectedRows, insertId, changedRows, info, status) equal MariaDB\'s', async () => {
    const run = async (c: MyConnection, base: number): Promise<unknown[]> => {
      const out: unknown[] = [];
      for (const sql of [
        `INSERT INTO ${T} (id, v, n) VALUES (${base}, 'ok', 0), (${base + 1}, 'ok', 0)`,
        `UPDATE ${T} SET n = n + 1 WHERE id IN (${base}, ${base + 1})`,
        `UPDATE ${T} SET n = n WHERE id = ${base}`,
        `DELETE FROM ${T} WHERE id IN (${base}, ${base + 1})`,
      ]) {
        out.push(answerShape(await c.query(sql)).result);
      }
      return out;
    };
    expect(await run(client, 500)).toEqual(await run(direct, 600));
  });

  it('several statements in one COM_QUERY: every result set, as from MariaDB', async () => {
    const sql = `SELECT 1 AS a; SELECT 2 AS b; SELECT id, v FROM ${T} WHERE id IN (4, 5) ORDER BY id; UPDATE ${T} SET n = n WHERE id = 4; SELECT COUNT(*) AS c FROM ${T}`;
    const viaProxy = answerShape(await client.query(sql));
    expect((viaProxy.result as unknown[]).length).toBe(5);
    expect(viaProxy).toEqual(answerShape(await direct.query(sql)));
    expect(await value(6), 'the connection is usable afterwards').toBe('v6');
  });

  it('COM_PING is answered and the connection keeps working', async () => {
    await client.ping();
    await client.ping();
    expect(await value(7)).toBe('v7');
  });
});

describe('COM_QUERY: caching', () => {
  it('a repeated SELECT is a hit: hits +1, misses unchanged, and a write behind the proxy\'s back stays unseen until a write through it', async () => {
    await warm(proxy, () => value(1)); // the table is known to the proxy from now on
    const sql = `SELECT v, n FROM ${T} WHERE id = 2`;
    const first = await hitsDuring(proxy, () => rowsOf(client, sql));
    expect(first.value).toEqual([{ v: 'v2', n: 2 }]);
    expect(first.hits, 'a first run is not a hit').toBe(0);
    const second = await hitsDuring(proxy, () => rowsOf(client, sql));
    expect(second.value).toEqual([{ v: 'v2', n: 2 }]);
    expect(second.hits, 'the second run is a hit').toBe(1);
    expect(second.after.misses - second.before.misses, 'and not a miss').toBe(0);

    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 2`);
    const stale = await hitsDuring(proxy, () => rowsOf(client, sql));
    expect(stale.value, 'served from cache, so the direct write is invisible').toEqual([{ v: 'v2', n: 2 }]);
    expect(stale.hits).toBe(1);

    await client.query(`UPDATE ${T} SET v = 'through' WHERE id = 2`);
    expect(await rowsOf(client, sql), 'a write through the proxy makes the next read fresh').toEqual([{ v: 'through', n: 2 }]);
  });

  it('a cache hit never reaches the database: the upstream connection\'s last QUERY_ID does not move', async () => {
    const c = await clients.open(proxy.port);
    const [idRows] = await c.query('SELECT CONNECTION_ID() AS id');
    const upstreamId = Number((idRows as { id: number }[])[0]!.id);
    const sql = `SELECT v FROM ${T} WHERE id = 8`;
    await warm(proxy, () => rowsOf(c, sql));

    const before = await lastQueryId(upstreamId);
    const hit = await hitsDuring(proxy, () => rowsOf(c, sql));
    expect(hit.hits).toBe(1);
    expect(await lastQueryId(upstreamId), 'MariaDB ran nothing for the hit').toBe(before);

    // Control: a statement that is not a hit moves it (so the probe can fail).
    await rowsOf(c, `SELECT v FROM ${T} WHERE id = 9 AND n = 9`);
    expect(await lastQueryId(upstreamId)).toBeGreaterThan(before);
  });

  it('a cached result is served to a second connection of the same user and database', async () => {
    expect(await warm(proxy, () => value(10))).toBe('v10');
    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 10`);
    const other = await clients.open(proxy.port, { multipleStatements: true }); // the same capability flags as `client`
    const r = await hitsDuring(proxy, () => value(10, other));
    expect(r.value).toBe('v10');
    expect(r.hits).toBe(1);
  });

  it('POST /invalidate by table, then by all, makes the next read fresh', async () => {
    expect(await warm(proxy, () => value(11))).toBe('v11');
    await directSql(`UPDATE ${T} SET v = 'behind-1' WHERE id = 11`);
    expect(await value(11)).toBe('v11');
    await proxy.invalidate({ database: 'test', table: T });
    expect(await warm(proxy, () => value(11))).toBe('behind-1');
    await directSql(`UPDATE ${T} SET v = 'behind-2' WHERE id = 11`);
    await proxy.invalidate({ all: true });
    expect(await value(11)).toBe('behind-2');
  });

  it('an entry older than the TTL is not served', async () => {
    const short = await startMysqlProxy({ defaultTtlMs: 1_000 });
    const c = await connectMysql(short.port);
    try {
      expect(await warm(short, () => value(12, c))).toBe('v12');
      await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 12`);
      expect(await value(12, c), 'still fresh: served from cache').toBe('v12');
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      expect(await value(12, c), 'expired: read from the database').toBe('behind');
    } finally {
      await c.end();
      await short.stop();
    }
  });

  it('/stats counts the table under "test.<table>"', async () => {
    await warm(proxy, () => value(13));
    const stats = await proxy.stats();
    expect(stats.tables[`test.${T}`]?.hits ?? 0).toBeGreaterThan(0);
  });

  it('UPDATE …; SELECT … in one COM_QUERY returns both results and the SELECT is fresh', async () => {
    expect(await warm(proxy, () => value(14))).toBe('v14');
    const [results] = await client.query(`UPDATE ${T} SET v = 'multi' WHERE id = 14; SELECT v FROM ${T} WHERE id = 14`);
    const [ok, rows] = results as unknown as [{ affectedRows: number }, { v: string }[]];
    expect(ok.affectedRows).toBe(1);
    expect(rows.map((r) => ({ ...r }))).toEqual([{ v: 'multi' }]);
    expect(await value(14), 'and the next single read too').toBe('multi');
  });

  it('a multi-statement COM_QUERY is never answered from cache', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 15; SELECT v FROM ${T} WHERE id = 16`;
    await client.query(sql);
    await client.query(sql);
    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 15`);
    const [results] = await client.query(sql);
    expect((results as unknown as { v: string }[][])[0]![0]!.v).toBe('behind');
  });
});
