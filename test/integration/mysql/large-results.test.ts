// Large answers through the MySQL listener (DESIGN promise 5: bounded):
// 200 000 rows over cache.max_entry_size stream through intact and are not
// stored; the same rows under a large max_entry_size are cached and replayed
// intact; a single row over 16 MiB (split into continuation packets) arrives
// whole, on the text and the prepared path.

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import mysqlCallbacks from 'mysql2';
import { connectMysql, directSql, dropMyTables, endMyDirect, myOptions, MY_PORT, RAW_VALUES, type MyConnection } from '../../helpers/mysql.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_big');
const ROWS = 200_000;
const SMALL = `SELECT id, v, n FROM ${T} WHERE id <= 50 ORDER BY id`;
const BIG = `SELECT id, v, n FROM ${T} ORDER BY id`;
let proxy: TestProxy; // default max_entry_size (1 MiB): the 200k rows (~6 MiB) are too large to store

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(60) NOT NULL, n BIGINT NOT NULL)`);
  await directSql(`INSERT INTO ${T} SELECT seq, CONCAT('row-', seq, '-', MD5(seq)), seq * 7919 FROM seq_1_to_${ROWS}`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

/** Row count and a SHA-256 over every value of every row, in order (rows as arrays, values as the server's text). */
async function digest(c: MyConnection, sql: string, prepared = false): Promise<{ count: number; sha: string }> {
  const [rows] = prepared ? await c.execute({ sql, rowsAsArray: true }) : await c.query({ sql, rowsAsArray: true });
  const h = createHash('sha256');
  const list = rows as unknown[][];
  for (const row of list) h.update(`${row.map((v) => (v === null ? '\\N' : Buffer.isBuffer(v) ? v.toString('hex') : String(v))).join('\t')}\n`);
  return { count: list.length, sha: h.digest('hex') };
}

async function withConnections<R>(port: number, fn: (viaProxy: MyConnection, direct: MyConnection) => Promise<R>): Promise<R> {
  const viaProxy = await connectMysql(port, RAW_VALUES);
  const direct = await connectMysql(MY_PORT, RAW_VALUES);
  try {
    return await fn(viaProxy, direct);
  } finally {
    await viaProxy.end();
    await direct.end();
  }
}

describe('200 000 rows', () => {
  it('over max_entry_size: streamed through intact twice (count and checksum equal MariaDB\'s), never a hit', async () => {
    await withConnections(proxy.port, async (p, d) => {
      const want = await digest(d, BIG);
      expect(want.count).toBe(ROWS);
      for (let k = 0; k < 2; k += 1) {
        const r = await hitsDuring(proxy, () => digest(p, BIG));
        expect(r.value, `run ${k + 1}`).toEqual(want);
        expect(r.hits, 'a result over max_entry_size is not stored').toBe(0);
      }
      const stats = await proxy.stats();
      const notStored = (stats as unknown as { not_stored?: Record<string, number> }).not_stored ?? {};
      expect(notStored['too-large'] ?? 0, '/stats not_stored.too-large').toBeGreaterThan(0);
    });
  });

  it('the prepared path (binary rows): intact', async () => {
    await withConnections(proxy.port, async (p, d) => {
      expect(await digest(p, BIG, true)).toEqual(await digest(d, BIG, true));
    });
  });

  it('a small result on the same proxy is cached and replayed intact', async () => {
    await withConnections(proxy.port, async (p, d) => {
      const want = await digest(d, SMALL);
      expect(want.count).toBe(50);
      expect(await warm(proxy, () => digest(p, SMALL))).toEqual(want);
    });
  });

  it('under a 64 MiB max_entry_size the 200 000 rows are cached, and the replay is intact', async () => {
    const roomy = await startMysqlProxy({ maxEntrySizeBytes: 64 * 1024 * 1024, maxMemoryBytes: 256 * 1024 * 1024 });
    try {
      await withConnections(roomy.port, async (p, d) => {
        const want = await digest(d, BIG);
        expect(await warm(roomy, () => digest(p, BIG))).toEqual(want);
        expect(await warm(roomy, () => digest(p, BIG, true)), 'binary rows too').toEqual(await digest(d, BIG, true));
      });
    } finally {
      await roomy.stop();
    }
  });

  it('a client that reads slowly still gets every row (backpressure, nothing lost)', async () => {
    const c = mysqlCallbacks.createConnection(myOptions(proxy.port, RAW_VALUES));
    c.on('error', () => {});
    try {
      const stream = c.query({ sql: BIG, rowsAsArray: true }).stream({ highWaterMark: 16 });
      let count = 0;
      let last = 0;
      for await (const row of stream as AsyncIterable<unknown[]>) {
        count += 1;
        const id = Number(row[0]);
        expect(id).toBe(last + 1);
        last = id;
        if (count % 20_000 === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(count).toBe(ROWS);
    } finally {
      c.end();
    }
  });
});

describe('one row over 16 MiB (continuation packets)', () => {
  it('a 16 777 212-byte value arrives whole, text and prepared, and so does the next answer', async () => {
    await withConnections(proxy.port, async (p, d) => {
      const sql = `SELECT REPEAT('x', 16777212) AS big, 1 AS after_it`;
      for (const prepared of [false, true]) {
        const [rows] = prepared ? await p.execute(sql) : await p.query(sql);
        const [want] = prepared ? await d.execute(sql) : await d.query(sql);
        const got = (rows as { big: string; after_it: number }[])[0]!;
        expect(got.big.length).toBe(16777212);
        expect(got).toEqual({ ...(want as object[])[0] });
      }
      const [rows] = await p.query(`SELECT v FROM ${T} WHERE id = 3`);
      expect((rows as { v: string }[])[0]!.v).toMatch(/^row-3-/);
    });
  });
});
