// Regression (found in review): with cache.in_transactions: true, a
// transaction that had written a table was answered from cache for that
// table — a result another client had just cached from the committed state,
// without the transaction's own write. A transaction always reads its own
// writes: once it wrote a table, its reads of that table go to the database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../helpers/db.js';
import { warm } from '../helpers/compare.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';

const T = uniqueName('txn_own');
let proxy: TestProxy;
let a: pg.Client;
let b: pg.Client;
const read = (c: pg.Client) => c.query<{ v: number }>(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v);

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 1)`);
  proxy = await startProxy({ inTransactions: true });
  a = await connectClient(proxy.url());
  b = await connectClient(proxy.url());
});

afterAll(async () => {
  await a?.end().catch(() => {});
  await b?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('in_transactions: true', () => {
  it('a transaction reads its own write even when another client re-cached the committed row', async () => {
    await a.query('BEGIN');
    await a.query(`UPDATE ${T} SET v = 2 WHERE id = 1`);
    // B (autocommit) caches the committed value 1, proven by a counted hit.
    expect(await warm(proxy, () => read(b))).toBe(1);
    expect(await read(a), 'A sees its own uncommitted write').toBe(2);
    await a.query('COMMIT');
    expect(await read(b), 'after COMMIT everyone sees it').toBe(2);
  });

  it('a cached read is still served inside a transaction that did not write the table', async () => {
    expect(await warm(proxy, () => read(b))).toBe(2);
    await directQuery(`UPDATE ${T} SET v = 3 WHERE id = 1`); // behind the proxy
    await a.query('BEGIN');
    expect(await read(a), 'served from cache inside the transaction').toBe(2);
    await a.query('ROLLBACK');
  });
});
