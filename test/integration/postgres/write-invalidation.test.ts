// "Never staler than a write you made": every form of write sent through the
// proxy makes the cached reads of what it touched fresh, before its
// acknowledgement reaches the client; transactions keep that promise too.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import postgres from 'postgres';
import { connectClient, direct, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { expectWriteInvalidates as expectWriteInvalidatesVia, readVia, rejection, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';

const A = uniqueName('wi_a');
const B = uniqueName('wi_b');
const C = uniqueName('wi_c');
const D = uniqueName('wi_d');
const V = uniqueName('wi_view');
const MV = uniqueName('wi_mview');
const FN = uniqueName('wi_bump');
const PROC = uniqueName('wi_proc');
let proxy: TestProxy;
let client: pg.Client;

const expectWriteInvalidates = (reads: string[], write: () => Promise<unknown>, declaredBypass: string[] = []) =>
  expectWriteInvalidatesVia(proxy, client, reads, write, declaredBypass);
const read = (sql: string) => readVia(client, sql);
const readDirect = (sql: string) => readVia(direct(), sql);

const sumA = `SELECT count(*)::int AS n, coalesce(sum(v), 0)::int AS s FROM ${A}`;
const sumB = `SELECT count(*)::int AS n, coalesce(sum(v), 0)::int AS s FROM ${B}`;
const run = (sql: string) => () => client.query(sql);
/** DO, CALL and EXECUTE may change session settings, so the proxy stops
 * caching for the session that ran them: run them on a connection of their own. */
const runAlone = (sql: string) => async () => {
  const other = await connectClient(proxy.url());
  try {
    await other.query(sql);
  } finally {
    await other.end();
  }
};

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${A} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`CREATE TABLE ${B} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`CREATE TABLE ${C} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`CREATE TABLE ${D} (id int, w text)`);
  await directQuery(`CREATE VIEW ${V} AS SELECT id, v FROM ${A} WHERE v > 0`);
  await directQuery(`CREATE MATERIALIZED VIEW ${MV} AS SELECT count(*)::int AS n, coalesce(sum(v), 0)::int AS s FROM ${A}`);
  await directQuery(`CREATE FUNCTION ${FN}() RETURNS int VOLATILE LANGUAGE sql AS 'UPDATE ${A} SET v = v + 1 WHERE id = 1 RETURNING v'`);
  await directQuery(`CREATE PROCEDURE ${PROC}() LANGUAGE sql AS 'UPDATE ${A} SET v = v + 1 WHERE id = 1'`);
  proxy = await startProxy();
  client = await connectClient(proxy.url());
});

beforeEach(async () => {
  await client.query(`TRUNCATE ${A}, ${B}, ${C}`); // through the proxy: no entry survives from the last test
  await client.query(`INSERT INTO ${A} SELECT g, g FROM generate_series(1, 10) g`);
  await client.query(`INSERT INTO ${B} SELECT g, g * 3 FROM generate_series(5, 15) g`);
  await client.query(`INSERT INTO ${C} VALUES (1, 1), (2, 2)`);
});

afterAll(async () => {
  await client?.end().catch(() => {});
  await proxy?.stop();
  await directQuery(`DROP FUNCTION IF EXISTS ${FN}(); DROP PROCEDURE IF EXISTS ${PROC}()`);
  await dropTables(A, B, C, D);
  await endDirect();
});

describe('each write form through the proxy invalidates what it writes', () => {
  it('INSERT', () => expectWriteInvalidates([sumA], run(`INSERT INTO ${A} VALUES (100, 5)`)));
  it('UPDATE', () => expectWriteInvalidates([sumA], run(`UPDATE ${A} SET v = v + 1 WHERE id = 1`)));
  it('DELETE', () => expectWriteInvalidates([sumA], run(`DELETE FROM ${A} WHERE id = 2`)));
  it('INSERT … SELECT (the target, not the source)', () =>
    expectWriteInvalidates([sumA], run(`INSERT INTO ${A} (id, v) SELECT id + 2000, v FROM ${B}`)));
  it('UPDATE … FROM', () => expectWriteInvalidates([sumA], run(`UPDATE ${A} SET v = ${B}.v * 10 FROM ${B} WHERE ${A}.id = ${B}.id`)));
  it('DELETE … USING', () => expectWriteInvalidates([sumA], run(`DELETE FROM ${A} USING ${B} WHERE ${A}.id = ${B}.id AND ${B}.v = 15`)));
  it('MERGE', () =>
    expectWriteInvalidates(
      [sumA],
      run(`MERGE INTO ${A} t USING ${B} s ON t.id = s.id
           WHEN MATCHED THEN UPDATE SET v = t.v + 100 WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)`),
    ));
  it('a data-modifying CTE under INSERT invalidates both tables', () =>
    expectWriteInvalidates([sumA, sumB], run(`WITH d AS (DELETE FROM ${A} WHERE id = 3 RETURNING id, v) INSERT INTO ${B} SELECT id, v FROM d`)));

  it('a SELECT over a data-modifying CTE runs every time and invalidates the table', async () => {
    const sql = `WITH u AS (UPDATE ${A} SET v = v + 1 WHERE id = 1 RETURNING v) SELECT v FROM u`;
    await expectWriteInvalidates([sumA], async () => {
      expect((await client.query(sql)).rows).toEqual([{ v: 2 }]);
      expect((await client.query(sql)).rows, 'not answered from cache: it wrote again').toEqual([{ v: 3 }]);
    });
  });

  it('TRUNCATE a, b invalidates both', () => expectWriteInvalidates([sumA, sumB], run(`TRUNCATE ${A}, ${B}`)));

  it('COPY FROM STDIN (postgres.js writable)', async () => {
    const sql = postgres(proxy.url(), { max: 1, fetch_types: false });
    try {
      await expectWriteInvalidates([sumA], async () => {
        const writable = await sql`COPY ${sql(A)} (id, v) FROM STDIN`.writable();
        await pipeline(Readable.from(['500\t1\n', '501\t2\n', '502\t3\n']), writable);
        await sql`SELECT 1`; // same connection: the COPY's CommandComplete has been read
      });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('ALTER TABLE … ADD COLUMN: the next SELECT * shows the column', () =>
    expectWriteInvalidates([`SELECT * FROM ${C} ORDER BY id`], run(`ALTER TABLE ${C} ADD COLUMN extra int DEFAULT 7`)));

  it('DROP then re-CREATE: in between the table is missing, after it the new rows show', async () => {
    await directQuery(`INSERT INTO ${D} VALUES (1, 'old')`);
    await expectWriteInvalidates([`SELECT * FROM ${D}`], async () => {
      await client.query(`DROP TABLE ${D}`);
      expect((await rejection(client.query(`SELECT * FROM ${D}`))).code).toBe('42P01');
      await client.query(`CREATE TABLE ${D} (id int, w text, z int)`);
      await client.query(`INSERT INTO ${D} VALUES (1, 'new', 3)`);
    });
  });

  it('CREATE OR REPLACE VIEW changes what the view returns at once', () =>
    expectWriteInvalidates(
      [`SELECT * FROM ${V} ORDER BY id`],
      run(`CREATE OR REPLACE VIEW ${V} AS SELECT id, v * 2 AS v FROM ${A} WHERE v > 0`),
      ['relation-kind'], // a view may be left uncached, if the proxy says so
    ));

  it('REFRESH MATERIALIZED VIEW (and a write to its base table alone leaves it as the database has it)', async () => {
    const mv = `SELECT n, s FROM ${MV}`;
    await client.query(`REFRESH MATERIALIZED VIEW ${MV}`);
    await expectWriteInvalidates([mv], async () => {
      await client.query(`INSERT INTO ${A} VALUES (300, 1)`);
      expect(await read(mv), 'not refreshed yet: still the old contents, like the database').toEqual(await readDirect(mv));
      await client.query(`REFRESH MATERIALIZED VIEW ${MV}`);
    });
  });

  it('EXECUTE of a SQL-level prepared UPDATE', () =>
    expectWriteInvalidates([sumA], async () => {
      const other = await connectClient(proxy.url());
      try {
        await other.query(`PREPARE wi_upd(int) AS UPDATE ${A} SET v = v + $1 WHERE id = 1`);
        await other.query('EXECUTE wi_upd(5)');
      } finally {
        await other.end();
      }
    }));

  it('a DO block that writes', () => expectWriteInvalidates([sumA], runAlone(`DO $$ BEGIN UPDATE ${A} SET v = v + 1 WHERE id = 1; END $$`)));
  it('CALL of a procedure that writes', () => expectWriteInvalidates([sumA], runAlone(`CALL ${PROC}()`)));
  it('a SELECT of a volatile user function that writes', () => expectWriteInvalidates([sumA], run(`SELECT ${FN}()`)));
  it('an UPDATE sent with parameters (extended protocol)', () =>
    expectWriteInvalidates([sumA], () => client.query(`UPDATE ${A} SET v = $1 WHERE id = $2`, [42, 4])));
});

describe.each([
  ['in_transactions: false', false],
  ['in_transactions: true', true],
])('transactions (%s)', (_label, inTransactions) => {
  let p: TestProxy;
  let c: pg.Client;
  const one = (id: number) => c.query<{ v: number }>(`SELECT v FROM ${A} WHERE id = ${id}`).then((r) => r.rows[0]?.v);
  /** Outside a transaction: the read is (soon) answered from cache. */
  const cached = (id: number) => warm(p, () => one(id));

  beforeAll(async () => {
    p = await startProxy({ inTransactions });
    c = await connectClient(p.url());
  });
  beforeEach(async () => {
    await p.invalidate({ all: true }); // the shared beforeEach wrote through the other proxy
  });
  afterAll(async () => {
    await c?.end().catch(() => {});
    await p?.stop();
  });

  it('read-your-writes inside the transaction and after COMMIT', async () => {
    expect(await cached(5)).toBe(5);
    await c.query('BEGIN');
    await c.query(`UPDATE ${A} SET v = 777 WHERE id = 5`);
    expect(await one(5), 'inside: the transaction sees its own write').toBe(777);
    await c.query('COMMIT');
    expect(await one(5), 'after COMMIT').toBe(777);
  });

  it('ROLLBACK leaves the cache correct: the uncommitted value is never served afterwards', async () => {
    expect(await cached(6)).toBe(6);
    await c.query('BEGIN');
    await c.query(`UPDATE ${A} SET v = 888 WHERE id = 6`);
    expect(await one(6)).toBe(888);
    expect(await one(6)).toBe(888);
    await c.query('ROLLBACK');
    expect(await cached(6), 'after ROLLBACK: the committed value, cached again').toBe(6);
  });

  it('ROLLBACK TO SAVEPOINT undoes only the later write', async () => {
    expect(await cached(7)).toBe(7);
    await c.query('BEGIN');
    await c.query(`UPDATE ${A} SET v = 1001 WHERE id = 7`);
    await c.query('SAVEPOINT s');
    await c.query(`UPDATE ${A} SET v = 1002 WHERE id = 7`);
    expect(await one(7)).toBe(1002);
    await c.query('ROLLBACK TO SAVEPOINT s');
    expect(await one(7)).toBe(1001);
    await c.query('COMMIT');
    expect(await cached(7)).toBe(1001);
  });

  it('a read inside a REPEATABLE READ transaction is never served to later, outside reads', async () => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    expect(await one(8)).toBe(8);
    await directQuery(`UPDATE ${A} SET v = 808 WHERE id = 8`);
    expect(await one(8), 'the snapshot still shows the old value').toBe(8);
    await c.query('COMMIT');
    expect(await cached(8), 'outside the transaction: the committed value, not the snapshot').toBe(808);
  });

  it('a statement error inside the transaction does not leave a stale entry after ROLLBACK', async () => {
    expect(await cached(9)).toBe(9);
    await c.query('BEGIN');
    await c.query(`UPDATE ${A} SET v = 999 WHERE id = 9`);
    await rejection(c.query(`SELECT 1 / 0 FROM ${A}`));
    await c.query('ROLLBACK');
    expect(await cached(9)).toBe(9);
  });
});
