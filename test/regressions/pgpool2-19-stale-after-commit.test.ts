// Regression: pgpool2 #19 — Pgpool-II's query cache served a stale result
// after `BEGIN; UPDATE; COMMIT` by another client: the cache was invalidated
// at the UPDATE, a concurrent reader re-cached the still-committed old row
// before the COMMIT, and nothing invalidated it again. sqlcached bumps the
// written tables again at COMMIT, so client B never sees the old row once A's
// COMMIT has been acknowledged.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../helpers/db.js';
import { warm } from '../helpers/compare.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';

const T = uniqueName('pgpool19');
let proxy: TestProxy;
let a: pg.Client; // the writer
let b: pg.Client; // the reader

const readB = () => b.query<{ v: number }>(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v);

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL)`);
  proxy = await startProxy();
  a = await connectClient(proxy.url());
  b = await connectClient(proxy.url());
});

beforeEach(async () => {
  await a.query(`DELETE FROM ${T}; INSERT INTO ${T} VALUES (1, 1)`);
  // B caches the committed value, proven by a counted hit.
  expect(await warm(proxy, readB)).toBe(1);
});

afterAll(async () => {
  await a?.end().catch(() => {});
  await b?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('pgpool2 #19: no stale read after another client\'s COMMIT', () => {
  it.each(['COMMIT', 'END', 'COMMIT AND NO CHAIN'])('BEGIN; UPDATE; (B reads the old row, re-caching it); %s → B reads the new row', async (commit) => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 2 WHERE id = 1`);
    expect(await readB(), 'before COMMIT B sees the committed value').toBe(1);
    expect(await readB()).toBe(1);
    await a.query(commit);
    expect(await readB(), `after A's ${commit} was acknowledged`).toBe(2);
  });

  it('the whole transaction in one simple-query message', async () => {
    await a.query(`BEGIN; UPDATE ${T} SET v = 3 WHERE id = 1; COMMIT`);
    expect(await readB()).toBe(3);
  });

  it('BEGIN / UPDATE / COMMIT sent with the extended protocol', async () => {
    const extended = (text: string) => a.query({ text, queryMode: 'extended' } as pg.QueryConfig);
    await extended('BEGIN');
    await a.query(`UPDATE ${T} SET v = $1 WHERE id = $2`, [4, 1]);
    expect(await readB()).toBe(1);
    await extended('COMMIT');
    expect(await readB()).toBe(4);
  });

  it('a write after a SAVEPOINT, released, then COMMIT', async () => {
    await a.query('BEGIN');
    await a.query('SAVEPOINT s1');
    await a.query(`UPDATE ${T} SET v = 5 WHERE id = 1`);
    await a.query('RELEASE SAVEPOINT s1');
    expect(await readB()).toBe(1);
    await a.query('COMMIT');
    expect(await readB()).toBe(5);
  });

  it('INSERT and DELETE inside the transaction, with B re-reading in between', async () => {
    const countB = () => b.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${T}`).then((r) => r.rows[0]?.n);
    expect(await countB()).toBe(1);
    await a.query('BEGIN');
    await a.query(`INSERT INTO ${T} VALUES (2, 2), (3, 3)`);
    expect(await countB()).toBe(1);
    await a.query(`DELETE FROM ${T} WHERE id = 1`);
    expect(await countB()).toBe(1);
    await a.query('COMMIT');
    expect(await countB()).toBe(2);
    expect(await readB()).toBeUndefined();
  });

  it('a ROLLBACK leaves B with the old row (and nothing uncommitted was cached)', async () => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 6 WHERE id = 1`);
    expect(await a.query(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v)).toBe(6);
    await a.query('ROLLBACK');
    expect(await readB()).toBe(1);
    expect(await a.query(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v)).toBe(1);
  });
});
