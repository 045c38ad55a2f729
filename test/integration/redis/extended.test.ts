// The extended protocol (named prepared statements, as ORMs and pgbench -M
// prepared send them) with the Redis store: a miss takes its versions from
// Redis before the batch goes upstream, so its result is stored, a repeat is
// a hit on any instance, and a write through the other instance is seen at once.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, statsDelta, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('rx_ext');
const PREFIX = uniqueName('rxe');
let a: TestProxy;
let b: TestProxy;
let ca: pg.Client;
let cb: pg.Client;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 0), (2, 0)`);
  a = await startProxy({ redis: { keyPrefix: PREFIX } });
  b = await startProxy({ redis: { keyPrefix: PREFIX } });
  ca = await connectClient(a.url());
  cb = await connectClient(b.url());
});

afterAll(async () => {
  await ca?.end();
  await cb?.end();
  await a?.stop();
  await b?.stop();
  await dropTables(T);
  await endDirect();
});

const read = (c: pg.Client, id: number): Promise<number> =>
  c.query({ name: 'rx_ext_read', text: `SELECT v FROM ${T} WHERE id = $1`, values: [id] }).then((r) => (r.rows[0] as { v: number }).v);

describe('extended protocol with the Redis store', () => {
  it('a prepared read is stored on a miss and a hit afterwards, on the other instance too', async () => {
    const beforeA = await a.stats();
    expect(await read(ca, 1)).toBe(0); // miss on A: stored with versions taken before it went upstream
    expect(await read(ca, 1)).toBe(0);
    const afterA = await a.stats();
    expect(statsDelta(beforeA, afterA)).toMatchObject({ misses: 1, hits: 1 });
    const beforeB = await b.stats();
    expect(await read(cb, 1)).toBe(0);
    expect(statsDelta(beforeB, await b.stats())).toMatchObject({ hits: 1, misses: 0 });
  });

  it('200 writes through A, each read right after through B with the prepared statement: always fresh, and hits in between', async () => {
    const before = await b.stats();
    for (let i = 1; i <= 200; i++) {
      expect(await read(cb, 2)).toBe(i - 1);
      expect(await read(cb, 2)).toBe(i - 1);
      await ca.query({ name: 'rx_ext_write', text: `UPDATE ${T} SET v = $1 WHERE id = 2`, values: [i] });
      expect(await read(cb, 2)).toBe(i);
    }
    const d = statsDelta(before, await b.stats());
    expect(d.hits).toBeGreaterThanOrEqual(200);
  });
});
