// The extended query protocol (Parse/Bind/Describe/Execute/Sync) through the
// proxy: pg with parameters, named statements and binary results, and
// postgres.js, which pipelines many queries before one Sync and uses cursors.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import postgres from 'postgres';
import { connectClient, directQuery, directUrl, dropTables, endDirect, rawTypes, uniqueName } from '../../helpers/db.js';
import { errorShape, hitsDuring, rejection, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';

const E = uniqueName('xq_items');
const ROWS = 300;
let proxy: TestProxy;
let client: pg.Client;
let directClient: pg.Client;
const sqls: postgres.Sql[] = [];

function pgjs(options: postgres.Options<Record<string, postgres.PostgresType>> = {}): postgres.Sql {
  const sql = postgres(proxy.url(), { max: 1, fetch_types: false, onnotice: () => {}, ...options });
  sqls.push(sql);
  return sql;
}

const byId = (id: number, c: pg.Client = client) =>
  c.query<{ v: string }>(`SELECT v FROM ${E} WHERE id = $1`, [id]).then((r) => r.rows[0]?.v);

const named = (name: string, id: number, c: pg.Client = client) =>
  c.query<{ v: string }>({ name, text: `SELECT v FROM ${E} WHERE id = $1`, values: [id] }).then((r) => r.rows[0]?.v);

async function truth(): Promise<Map<number, string>> {
  const r = await directQuery<{ id: number; v: string }>(`SELECT id, v FROM ${E}`);
  return new Map(r.rows.map((row) => [row.id, row.v]));
}

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${E} (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL, f float8, b bool, ts timestamptz, by bytea, arr int[])`);
  await directQuery(
    `INSERT INTO ${E} SELECT g, 'v' || g, g * 7, g / 3.0, g % 2 = 0, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
       decode(md5(g::text), 'hex'), ARRAY[g, -g] FROM generate_series(1, ${ROWS}) g`,
  );
  proxy = await startProxy();
  client = await connectClient(proxy.url());
  directClient = await connectClient(directUrl());
});

afterAll(async () => {
  await Promise.all(sqls.map((s) => s.end({ timeout: 1 }).catch(() => {})));
  await client?.end().catch(() => {});
  await directClient?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(E);
  await endDirect();
});

describe('extended query with pg', () => {
  it('a parameterised SELECT is a hit for the same parameters and a miss for others', async () => {
    expect(await warm(proxy, () => byId(1))).toBe('v1');
    await directQuery(`UPDATE ${E} SET v = 'behind' WHERE id IN (1, 2)`);
    const again = await hitsDuring(proxy, () => byId(1));
    expect(again.value, 'same parameters: served from cache').toBe('v1');
    expect(again.hits).toBe(1);
    expect(await byId(2), 'other parameters: another key, read from the database').toBe('behind');
    await client.query(`UPDATE ${E} SET v = $1 WHERE id = $2`, ['through', 1]);
    expect(await byId(1), 'a parameterised write through the proxy invalidates').toBe('through');
  });

  it('a named prepared statement is a hit on the connection that prepared it', async () => {
    expect(await warm(proxy, () => named('xq_get', 3))).toBe('v3');
    await directQuery(`UPDATE ${E} SET v = 'behind' WHERE id = 3`);
    const r = await hitsDuring(proxy, () => named('xq_get', 3));
    expect(r.value).toBe('v3');
    expect(r.hits).toBe(1);
  });

  it('a second connection hits the entry the first filled, and its lazily prepared statement then serves a miss', async () => {
    expect(await warm(proxy, () => named('xq_shared', 4))).toBe('v4');
    await directQuery(`UPDATE ${E} SET v = 'behind' WHERE id IN (4, 5)`);
    const b = await connectClient(proxy.url());
    try {
      const hit = await hitsDuring(proxy, () => named('xq_shared', 4, b));
      expect(hit.value, 'first use of the statement on B: served from the entry A filled').toBe('v4');
      expect(hit.hits).toBe(1);
      expect(await named('xq_shared', 5, b), 'a miss on B with the same statement name works').toBe('behind');
      expect(await named('xq_shared', 4, b)).toBe('v4');
      await b.query(`UPDATE ${E} SET v = 'through' WHERE id = 4`);
      expect(await named('xq_shared', 4, b)).toBe('through');
      expect(await named('xq_shared', 6, b)).toBe('v6');
    } finally {
      await b.end();
    }
  });

  it('binary results are the database\'s bytes, and text and binary requests never share an entry', async () => {
    const text = `SELECT id, v, n, f, b, ts, by, arr FROM ${E} WHERE id = $1`;
    // pg asks for binary results only when the client is in binary mode; it still hands the
    // field bytes over as a latin1-unsafe string, so the exact bytes are compared in
    // protocol.test.ts over a raw socket. Here: format and values as pg sees them.
    const binary = { binary: true } as Omit<pg.ClientConfig, 'connectionString'>;
    const binProxy = await connectClient(proxy.url(), binary);
    const binDirectClient = await connectClient(directUrl(), binary);
    const run = (c: pg.Client) =>
      c.query({ text, values: [7], types: rawTypes, rowMode: 'array' }).then((r) => ({ formats: r.fields.map((f) => String(f.format)), row: r.rows[0] as unknown[] }));
    try {
      const textViaProxy = await warm(proxy, () => run(client)); // the text-format entry
      expect(textViaProxy).toEqual(await run(directClient));
      const binDirect = await run(binDirectClient);
      expect(new Set(binDirect.formats)).toEqual(new Set(['binary']));
      expect(binDirect.row[0], 'id 7 as a binary int4').toBe('\x00\x00\x00\x07');
      expect(await run(binProxy), 'binary request answered with binary bytes, not the cached text').toEqual(binDirect);
      const again = await hitsDuring(proxy, () => run(binProxy));
      expect(again.value).toEqual(binDirect);
      expect(again.hits).toBe(1);
      expect(await run(client), 'and the text entry still answers text').toEqual(textViaProxy);
    } finally {
      await binProxy.end();
      await binDirectClient.end();
    }
  });

  it('a Bind error is the database\'s error and the connection recovers at Sync', async () => {
    const bad = () => client.query(`SELECT v FROM ${E} WHERE id = $1`, ['not-an-int']);
    const viaProxy = await rejection(bad());
    expect(viaProxy.code).toBe('22P02');
    expect(errorShape(viaProxy)).toEqual(errorShape(await rejection(directClient.query(`SELECT v FROM ${E} WHERE id = $1`, ['not-an-int']))));
    expect(await byId(8)).toBe('v8');
  });

  it('SQL-level PREPARE / EXECUTE returns what the database returns', async () => {
    const script = async (c: pg.Client) => {
      await c.query(`PREPARE xq_sql(int) AS SELECT id, v FROM ${E} WHERE id = $1`);
      const r = await c.query('EXECUTE xq_sql(9)');
      await c.query('DEALLOCATE xq_sql');
      return r.rows;
    };
    expect(await script(client)).toEqual(await script(directClient));
  });
});

describe('extended query with postgres.js', () => {
  it('200 queries pipelined on one connection each get their own, correct row', async () => {
    const sql = pgjs({ max: 1 });
    const ids = Array.from({ length: 200 }, (_, i) => i + 50);
    const round = () => Promise.all(ids.map((i) => sql<{ id: number; v: string }[]>`SELECT id, v FROM ${sql(E)} WHERE id = ${i}`));

    const before = await truth();
    const first = await round();
    first.forEach((rows, k) => expect(rows.map((r) => ({ ...r }))).toEqual([{ id: ids[k], v: before.get(ids[k]!) }]));

    await directQuery(`UPDATE ${E} SET v = v || '+' WHERE id BETWEEN 50 AND 249`);
    const after = await truth();
    const { value: second, hits } = await hitsDuring(proxy, round);
    let stale = 0;
    second.forEach((rows, k) => {
      const id = ids[k]!;
      expect(rows).toHaveLength(1);
      expect(rows[0]?.id).toBe(id);
      expect([before.get(id), after.get(id)]).toContain(rows[0]?.v);
      if (rows[0]?.v === before.get(id)) stale += 1;
    });
    expect(stale, 'every pre-write answer is a counted hit, and every hit is a pre-write answer').toBe(hits);

    await proxy.invalidate({ table: E });
    const third = await round();
    third.forEach((rows, k) => expect(rows[0]?.v).toBe(after.get(ids[k]!)));
  });

  it.each([
    ['named statements (prepare: true)', true],
    ['unnamed statements (prepare: false)', false],
  ])('%s: a repeated query is a hit', async (_label, prepare) => {
    const sql = pgjs({ max: 1, prepare });
    const id = prepare ? 10 : 11;
    const get = () => sql<{ v: string }[]>`SELECT v FROM ${sql(E)} WHERE id = ${id}`.then((r) => r[0]?.v);
    expect(await warm(proxy, get)).toBe(`v${id}`);
    await directQuery(`UPDATE ${E} SET v = 'behind' WHERE id = $1`, [id]);
    const r = await hitsDuring(proxy, get);
    expect(r.value).toBe(`v${id}`);
    expect(r.hits).toBe(1);
    await sql`UPDATE ${sql(E)} SET v = 'through' WHERE id = ${id}`;
    expect(await get()).toBe('through');
  });

  it('a cursor (Execute with a row limit) returns every row, and is not cached', async () => {
    const sql = pgjs({ max: 1 });
    const readAll = async () => {
      const rows: { id: number; v: string }[] = [];
      for await (const batch of sql<{ id: number; v: string }[]>`SELECT id, v FROM ${sql(E)} ORDER BY id`.cursor(10)) {
        rows.push(...batch.map((r) => ({ id: r.id, v: r.v })));
      }
      return rows;
    };
    const expected = async () => (await directQuery(`SELECT id, v FROM ${E} ORDER BY id`)).rows;
    expect(await readAll()).toEqual(await expected());
    await directQuery(`UPDATE ${E} SET v = 'behind-cursor' WHERE id = 299`);
    const before = await proxy.stats();
    const second = await readAll();
    expect(second).toHaveLength(ROWS);
    expect(second, 'the second cursor read sees the direct write: nothing was cached').toEqual(await expected());
    const after = await proxy.stats();
    expect(after.hits - before.hits).toBe(0);
    // The plain query afterwards is whole, not the first 10 rows of a suspended portal.
    const plain = await sql`SELECT id, v FROM ${sql(E)} ORDER BY id`;
    expect(plain).toHaveLength(ROWS);
  });
});
