// Streams through the proxy: COPY both ways (psql \copy, postgres.js
// readable/writable) with 10 000 rows intact, and a 200 000-row result that
// is over cache.max_entry_size (1 MiB): it streams through whole, is never
// stored, and the proxy's memory stays bounded (logged, not asserted).

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { serialize } from 'pg-protocol';
import { connectClient, directQuery, dropTables, endDirect, PG_PORT, uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { psql, psqlOk } from '../../helpers/psql.js';
import { RawClient } from '../../helpers/wire.js';

const CP = uniqueName('strm_copy');
const BIG = uniqueName('strm_big');
const COPY_ROWS = 10_000;
const BIG_ROWS = 200_000;
const MiB = 1024 * 1024;
let proxy: TestProxy;
let dir: string;

const fingerprint = async (table: string) =>
  (await directQuery<{ n: number; s: string }>(`SELECT count(*)::int AS n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) AS s FROM ${table}`)).rows[0];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sqlcached-streams-'));
  await directQuery(`CREATE TABLE ${CP} (id int PRIMARY KEY, v text)`);
  await directQuery(`INSERT INTO ${CP} SELECT g, 'seed ' || g FROM generate_series(1, ${COPY_ROWS}) g`); // each test can run alone
  await directQuery(`CREATE TABLE ${BIG} (id int PRIMARY KEY, h text NOT NULL)`);
  await directQuery(`INSERT INTO ${BIG} SELECT g, md5(g::text) FROM generate_series(1, ${BIG_ROWS}) g`);
  proxy = await startProxy({ maxEntrySizeBytes: MiB });
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(CP, BIG);
  await endDirect();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** 10 000 rows of CSV with the characters COPY must not mangle. */
function csvRows(from: number): string {
  const lines: string[] = [];
  for (let i = from; i < from + COPY_ROWS; i += 1) lines.push(`${i},"row ${i}, with ""quotes"", tab\t and é ${'x'.repeat(i % 50)}"`);
  return `${lines.join('\n')}\n`;
}

describe('COPY', () => {
  it('psql \\copy FROM a file through the proxy loads 10 000 rows intact', async () => {
    await directQuery(`TRUNCATE ${CP}`);
    const file = join(dir, 'in.csv');
    await writeFile(file, csvRows(1));
    expect(await psqlOk(proxy.port, [`\\copy ${CP} FROM '${file}' WITH (FORMAT csv)`])).toBe(`COPY ${COPY_ROWS}`);
    const viaDb = await psqlOk(PG_PORT, [
      `CREATE TEMP TABLE e (id int, v text)`,
      `\\copy e FROM '${file}' WITH (FORMAT csv)`,
      `SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM e`,
    ]);
    const f = await fingerprint(CP);
    expect(viaDb.split('\n').pop()).toBe(`${f?.n}|${f?.s}`);
  });

  it('psql \\copy TO a file through the proxy writes the same bytes as directly, and is never cached', async () => {
    const out = (name: string) => join(dir, name);
    await psqlOk(proxy.port, [`\\copy ${CP} TO '${out('proxy-1.csv')}' WITH (FORMAT csv)`]);
    await psqlOk(PG_PORT, [`\\copy ${CP} TO '${out('direct-1.csv')}' WITH (FORMAT csv)`]);
    const first = await readFile(out('proxy-1.csv'));
    expect(first.length).toBeGreaterThan(COPY_ROWS * 10);
    expect(first.equals(await readFile(out('direct-1.csv')))).toBe(true);

    await directQuery(`UPDATE ${CP} SET v = 'changed behind' WHERE id = 1`);
    await psqlOk(proxy.port, [`\\copy ${CP} TO '${out('proxy-2.csv')}' WITH (FORMAT csv)`]);
    const second = (await readFile(out('proxy-2.csv'), 'utf8')).split('\n');
    expect(second, 'the second COPY TO saw the direct write').toContain('1,changed behind');
  });

  it('a COPY FROM STDIN with bad data gets the database\'s error, and nothing is loaded', async () => {
    const bad = `\\copy ${CP} FROM STDIN WITH (FORMAT csv)`;
    const input = '900001,fine\nnot-a-number,oops\n';
    const viaProxy = await psql(proxy.port, [bad], { input });
    const viaDb = await psql(PG_PORT, [bad], { input });
    expect(viaProxy.code).not.toBe(0);
    expect(viaProxy.stderr).toContain('invalid input syntax for type integer');
    expect(viaProxy.stderr).toBe(viaDb.stderr);
    expect((await directQuery(`SELECT count(*)::int AS n FROM ${CP} WHERE id = 900001`)).rows[0].n).toBe(0);
  });

  it('postgres.js COPY FROM STDIN (writable) and COPY TO STDOUT (readable) move 10 000 rows intact', async () => {
    const sql = postgres(proxy.url(), { max: 1, fetch_types: false });
    try {
      await sql`TRUNCATE ${sql(CP)}`;
      const lines = Array.from({ length: COPY_ROWS }, (_, k) => `${k + 1}\tstream \\\\ ${k} é\n`);
      const writable = await sql`COPY ${sql(CP)} (id, v) FROM STDIN`.writable();
      await pipeline(Readable.from(lines), writable);
      await sql`SELECT 1`;
      expect((await fingerprint(CP))?.n).toBe(COPY_ROWS);

      const chunks: Buffer[] = [];
      const readable = await sql`COPY ${sql(CP)} TO STDOUT`.readable();
      for await (const chunk of readable) chunks.push(Buffer.from(chunk as Buffer));
      const viaProxy = Buffer.concat(chunks).toString('utf8');
      const viaDb = await psqlOk(PG_PORT, [`COPY ${CP} TO STDOUT`]);
      expect(viaProxy).toBe(`${viaDb}\n`);
      expect(viaProxy.split('\n')).toHaveLength(COPY_ROWS + 1);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe('a result larger than max_entry_size', () => {
  const bigSql = `SELECT id, h FROM ${BIG} ORDER BY id`;
  const truth = async () =>
    (await directQuery<{ n: number; s: string; h: string }>(`SELECT count(*)::int AS n, sum(id)::text AS s, md5(string_agg(h, '' ORDER BY id)) AS h FROM ${BIG}`)).rows[0];

  async function readBig(): Promise<{ n: number; s: string; h: string }> {
    const c = await connectClient(proxy.url());
    try {
      const r = await c.query({ text: bigSql, rowMode: 'array' });
      const md5 = createHash('md5');
      let sum = 0n;
      for (const row of r.rows as [number, string][]) {
        sum += BigInt(row[0]);
        md5.update(row[1]);
      }
      return { n: r.rows.length, s: sum.toString(), h: md5.digest('hex') };
    } finally {
      await c.end();
    }
  }

  it('200 000 rows stream through intact and are not stored', async () => {
    const rss0 = process.memoryUsage().rss;
    const before = await proxy.stats();
    expect(await readBig()).toEqual(await truth());
    const after = await proxy.stats();
    const tooLarge = (after.bypass_reasons['too-large'] ?? 0) - (before.bypass_reasons['too-large'] ?? 0);
    expect(tooLarge > 0 || after.entries === before.entries, 'counted as too-large, or at least no entry stored').toBe(true);
    expect(after.bytes - before.bytes, 'nothing near the result size was stored').toBeLessThan(MiB);

    await directQuery(`UPDATE ${BIG} SET h = 'changed behind' WHERE id = ${BIG_ROWS}`);
    const second = await readBig();
    expect(second, 'the second read saw the direct write: nothing was served from cache').toEqual(await truth());
    expect((await proxy.stats()).hits - after.hits).toBe(0);
    console.info(`[protocol-streams] process RSS ${Math.round(rss0 / MiB)} MiB -> ${Math.round(process.memoryUsage().rss / MiB)} MiB (proxy and pg client share the process)`);
  });

  it('a client that stops reading gets every row once it resumes (backpressure; memory logged)', async () => {
    const raw = await RawClient.connect(proxy.port);
    try {
      raw.keep = false;
      await raw.startup({ user: 'postgres', database: 'test', application_name: uniqueName('strm_slow') });
      raw.socket.pause();
      const rss0 = process.memoryUsage().rss;
      raw.write(serialize.query(bigSql));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const rssPaused = process.memoryUsage().rss;
      raw.socket.resume();
      expect(await raw.until(() => raw.count('readyForQuery') >= 2, 20_000)).toBe(true);
      expect(raw.count('dataRow')).toBe(BIG_ROWS);
      expect(raw.count('error')).toBe(0);
      console.info(`[protocol-streams] paused reader: RSS ${Math.round(rss0 / MiB)} MiB -> ${Math.round(rssPaused / MiB)} MiB while paused`);
    } finally {
      raw.destroy();
    }
  });

  it('the connection that received the big result is still usable for a normal cached read', async () => {
    const c = await connectClient(proxy.url());
    try {
      await c.query(bigSql);
      const small = `SELECT h FROM ${BIG} WHERE id = 1`;
      const expected = (await directQuery(small)).rows;
      expect((await c.query(small)).rows).toEqual(expected);
      expect((await warm(proxy, () => c.query(small))).rows).toEqual(expected);
    } finally {
      await c.end();
    }
  });
});
