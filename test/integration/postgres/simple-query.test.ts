// The simple query protocol (Q) through the proxy, with pg (no parameters)
// and psql: repeated SELECTs are hits, everything else is relayed exactly
// as the database says it (several statements, empty queries, errors, notices).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, directUrl, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { errorShape, hitsDuring, rejection, resultShape, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { psql, psqlOk } from '../../helpers/psql.js';

const T = uniqueName('sq_items');
const MISSING = uniqueName('sq_missing');
let proxy: TestProxy;
let client: pg.Client; // through the proxy
let directClient: pg.Client; // the same statements, straight to the database

async function value(id: number, c: pg.Client = client): Promise<string | undefined> {
  const r = await c.query<{ v: string }>(`SELECT v FROM ${T} WHERE id = ${id}`);
  return r.rows[0]?.v;
}

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g, g FROM generate_series(1, 20) g`);
  proxy = await startProxy();
  client = await connectClient(proxy.url());
  directClient = await connectClient(directUrl());
});

afterAll(async () => {
  await client?.end().catch(() => {});
  await directClient?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(T, MISSING);
  await endDirect();
});

describe('simple query: caching', () => {
  it('a repeated SELECT is a hit: a write behind the proxy\'s back is not seen until a write through the proxy', async () => {
    expect(await warm(proxy, () => value(1))).toBe('v1');

    await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 1`);
    const stale = await hitsDuring(proxy, () => value(1));
    expect(stale.value, 'served from cache, so the direct write is invisible').toBe('v1');
    expect(stale.hits).toBe(1);

    await client.query(`UPDATE ${T} SET v = 'through' WHERE id = 1`);
    expect(await value(1), 'a write through the proxy makes the next read fresh').toBe('through');
  });

  it('a cached result is served to a second connection of the same user and database', async () => {
    expect(await warm(proxy, () => value(2))).toBe('v2');
    await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 2`);
    const other = await connectClient(proxy.url());
    try {
      const r = await hitsDuring(proxy, () => value(2, other));
      expect(r.value).toBe('v2');
      expect(r.hits).toBe(1);
    } finally {
      await other.end();
    }
  });

  it('POST /invalidate by table, then by all, makes the next read fresh', async () => {
    expect(await warm(proxy, () => value(3))).toBe('v3');
    await directQuery(`UPDATE ${T} SET v = 'behind-1' WHERE id = 3`);
    expect(await value(3)).toBe('v3');
    await proxy.invalidate({ table: T });
    expect(await warm(proxy, () => value(3))).toBe('behind-1');

    await directQuery(`UPDATE ${T} SET v = 'behind-2' WHERE id = 3`);
    expect(await value(3)).toBe('behind-1');
    await proxy.invalidate({ all: true });
    expect(await value(3)).toBe('behind-2');
  });

  it('an entry older than the TTL is not served', async () => {
    const short = await startProxy({ defaultTtlMs: 1_000 });
    const c = await connectClient(short.url());
    try {
      expect(await warm(short, () => value(4, c))).toBe('v4');
      await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 4`);
      expect(await value(4, c), 'still fresh: served from cache').toBe('v4');
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      expect(await value(4, c), 'expired: read from the database').toBe('behind');
    } finally {
      await c.end();
      await short.stop();
    }
  });

  it('a rule with cache: false keeps the table out of the cache (bypass reason "rule")', async () => {
    const ruled = await startProxy({ rules: [{ tables: [T], cache: false }] });
    const c = await connectClient(ruled.url());
    try {
      for (let i = 0; i < 3; i += 1) await value(16, c);
      await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 16`);
      expect(await value(16, c)).toBe('behind');
      const stats = await ruled.stats();
      expect(stats.hits).toBe(0);
      expect(stats.bypass_reasons['rule'] ?? 0, 'at least every read after the first').toBeGreaterThanOrEqual(3);
    } finally {
      await c.end();
      await ruled.stop();
    }
  });

  it('psql -c: a repeated SELECT from separate psql processes is a hit', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 5`;
    expect(await warm(proxy, () => psqlOk(proxy.port, [sql]))).toBe('v5');
    await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 5`);
    const r = await hitsDuring(proxy, () => psqlOk(proxy.port, [sql]));
    expect(r.value).toBe('v5');
    expect(r.hits).toBe(1);
    await psqlOk(proxy.port, [`UPDATE ${T} SET v = 'through' WHERE id = 5`]);
    expect(await psqlOk(proxy.port, [sql])).toBe('through');
  });
});

describe('simple query: several statements in one message', () => {
  it('results are identical to the database\'s', async () => {
    const sql = `SELECT id, v FROM ${T} WHERE id IN (6, 7) ORDER BY id; SELECT count(*) FROM ${T}; UPDATE ${T} SET n = n WHERE id = 6; SELECT 1 AS one`;
    const viaProxy = (await client.query(sql)) as unknown as pg.QueryResult[];
    const viaDb = (await directClient.query(sql)) as unknown as pg.QueryResult[];
    expect(viaProxy).toHaveLength(4);
    expect(resultShape(viaProxy)).toEqual(resultShape(viaDb));
  });

  it('an error in the middle is the database\'s error and nothing after it runs', async () => {
    const sql = `INSERT INTO ${T} VALUES (100, 'x', 0); SELECT * FROM ${MISSING}; INSERT INTO ${T} VALUES (101, 'y', 0)`;
    const viaProxy = await rejection(client.query(sql));
    const viaDb = await rejection(directClient.query(sql));
    expect(viaProxy.code).toBe('42P01');
    expect(errorShape(viaProxy)).toEqual(errorShape(viaDb));
    const left = await directQuery(`SELECT count(*)::int AS n FROM ${T} WHERE id IN (100, 101)`);
    expect(left.rows[0].n, 'the implicit transaction rolled back the first INSERT').toBe(0);
    expect(await value(8), 'the connection is usable afterwards').toBe('v8');
  });

  it('a multi-statement message is never answered from cache', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 9; SELECT v FROM ${T} WHERE id = 10`;
    await client.query(sql);
    await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 9`);
    const r = (await client.query(sql)) as unknown as pg.QueryResult<{ v: string }>[];
    expect(r[0]?.rows[0]?.v).toBe('behind');
  });

  it('a write inside a multi-statement message invalidates what it wrote', async () => {
    expect(await warm(proxy, () => value(11))).toBe('v11');
    await client.query(`UPDATE ${T} SET v = 'multi' WHERE id = 11; SELECT 1`);
    expect(await value(11)).toBe('multi');
  });
});

describe('simple query: relayed as the database says it', () => {
  it.each(['', ';', '  ;  ', '-- only a comment'])('the empty query %j gets the database\'s answer', async (sql) => {
    const viaProxy = await client.query(sql);
    const viaDb = await directClient.query(sql);
    expect(resultShape(viaProxy)).toEqual(resultShape(viaDb));
    expect(await value(12), 'the connection is usable afterwards').toBe('v12');
  });

  it('42P01 (undefined table) is relayed with every field, and never cached', async () => {
    const sql = `SELECT v FROM ${MISSING} WHERE id = 1`;
    const viaProxy = await rejection(client.query(sql));
    expect(viaProxy.code).toBe('42P01');
    expect(errorShape(viaProxy)).toEqual(errorShape(await rejection(directClient.query(sql))));
    expect((await rejection(client.query(sql))).code).toBe('42P01');

    await directQuery(`CREATE TABLE ${MISSING} (id int, v text); INSERT INTO ${MISSING} VALUES (1, 'now-here')`);
    const r = await client.query<{ v: string }>(sql);
    expect(r.rows[0]?.v, 'the error was not stored as the answer').toBe('now-here');
  });

  it('22012 from a data-dependent SELECT is never cached', async () => {
    await directQuery(`UPDATE ${T} SET n = 0 WHERE id = 13`);
    const sql = `SELECT 100 / n AS q FROM ${T} WHERE id = 13`;
    const err = await rejection(client.query(sql));
    expect(err.code).toBe('22012');
    expect(errorShape(err)).toEqual(errorShape(await rejection(directClient.query(sql))));
    await directQuery(`UPDATE ${T} SET n = 4 WHERE id = 13`);
    expect((await client.query(sql)).rows[0].q).toBe(25);
  });

  it('23505 (unique violation) is relayed with its detail, constraint and table', async () => {
    const sql = `INSERT INTO ${T} VALUES (14, 'dup', 0)`;
    const viaProxy = await rejection(client.query(sql));
    expect(viaProxy.code).toBe('23505');
    expect(errorShape(viaProxy)).toEqual(errorShape(await rejection(directClient.query(sql))));
    await directQuery(`DELETE FROM ${T} WHERE id = 14`);
    await client.query(sql);
    expect(await value(14)).toBe('dup');
  });

  it('after an error in a transaction the next statement gets 25P02, as from the database', async () => {
    await client.query('BEGIN');
    await rejection(client.query(`SELECT * FROM ${T} WHERE id = 'x'`));
    const aborted = await rejection(client.query(`SELECT v FROM ${T} WHERE id = 15`));
    expect(aborted.code).toBe('25P02');
    await client.query('ROLLBACK');
    expect(await value(15)).toBe('v15');
  });

  it('NoticeResponse from RAISE NOTICE / WARNING in a DO block reaches the client', async () => {
    const sql = `DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$`;
    const collect = async (c: pg.Client): Promise<Record<string, unknown>[]> => {
      const seen: Record<string, unknown>[] = [];
      const onNotice = (n: unknown): void => void seen.push(errorShape(n));
      c.on('notice', onNotice);
      await c.query(sql);
      await c.query('SELECT 1'); // a round trip later, every notice has surely been read
      c.off('notice', onNotice);
      return seen;
    };
    const viaProxy = await collect(client);
    expect(viaProxy.map((n) => n['message'])).toEqual(['hello 42', 'careful']);
    expect(viaProxy).toEqual(await collect(directClient));
  });

  it('psql prints the notice on stderr', async () => {
    const r = await psql(proxy.port, [`DO $$ BEGIN RAISE NOTICE 'from psql'; END $$`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('NOTICE:  from psql');
  });
});
