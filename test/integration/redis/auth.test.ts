// cache.redis credentials: an ACL user (redis://user:password@host:port)
// and a plain requirepass (redis://:password@host:port) let two instances
// share the cache; wrong credentials fail open — every read answered from
// the database, no client error, store errors counted.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type Stats, type TestProxy } from '../../helpers/proxy.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis.js';

const T = uniqueName('rauth');
const servers: RedisServer[] = [];
const proxies: TestProxy[] = [];
const clients: pg.Client[] = [];
let acl: RedisServer;
let pass: RedisServer;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 0 FROM generate_series(1, 3) g`);
  acl = await startRedisServer({
    args: ['--user', 'default', 'off', '--user', 'sqlc', 'on', '>s3cret', '~*', '&*', '+@all'],
    auth: { user: 'sqlc', password: 's3cret' },
  });
  pass = await startRedisServer({ args: ['--requirepass', 'pa55'], auth: { password: 'pa55' } });
  servers.push(acl, pass);
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  for (const p of proxies.splice(0)) await p.stop().catch(() => {});
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await dropTables(T);
  await endDirect();
});

async function pair(url: string): Promise<[TestProxy, TestProxy]> {
  const keyPrefix = uniqueName('rauth');
  const a = await startProxy({ redis: { url, keyPrefix } });
  const b = await startProxy({ redis: { url, keyPrefix } });
  proxies.push(a, b);
  return [a, b];
}

async function client(p: TestProxy): Promise<pg.Client> {
  const c = await connectClient(p.url());
  clients.push(c);
  return c;
}

const storeErrors = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? NaN);

/** Write through A, read through B (fresh each time); returns B's hits and both instances' store errors over the run. */
async function exercise(a: TestProxy, b: TestProxy, id: number): Promise<{ hitsB: number; storeErrors: number }> {
  const ca = await client(a);
  const cb = await client(b);
  const [a0, b0] = await Promise.all([a.stats(), b.stats()]);
  for (let n = 1; n <= 20; n += 1) {
    await cb.query(`SELECT v FROM ${T} WHERE id = ${id}`);
    await cb.query(`SELECT v FROM ${T} WHERE id = ${id}`);
    await ca.query(`UPDATE ${T} SET v = $1 WHERE id = $2`, [n, id]);
    expect((await cb.query<{ v: number }>(`SELECT v FROM ${T} WHERE id = ${id}`)).rows[0]?.v, `B right after A's write of ${n}`).toBe(n);
  }
  const [a1, b1] = await Promise.all([a.stats(), b.stats()]);
  return { hitsB: b1.hits - b0.hits, storeErrors: storeErrors(a1) - storeErrors(a0) + storeErrors(b1) - storeErrors(b0) };
}

describe('Redis credentials', () => {
  it('an ACL user in the URL: the two instances share the cache', async () => {
    const [a, b] = await pair(`redis://sqlc:s3cret@127.0.0.1:${acl.port}`);
    const r = await exercise(a, b, 1);
    expect(r).toEqual({ hitsB: expect.any(Number), storeErrors: 0 });
    expect(r.hitsB).toBeGreaterThan(0);
  });

  it('a password only (requirepass) in the URL: the same', async () => {
    const [a, b] = await pair(`redis://:pa55@127.0.0.1:${pass.port}`);
    const r = await exercise(a, b, 2);
    expect(r.storeErrors).toBe(0);
    expect(r.hitsB).toBeGreaterThan(0);
  });

  it('a wrong password fails open: right answers, no client error, no hits, store errors counted', async () => {
    const [a, b] = await pair(`redis://sqlc:wrong@127.0.0.1:${acl.port}`);
    const r = await exercise(a, b, 3);
    expect(r.hitsB).toBe(0);
    expect(r.storeErrors).toBeGreaterThan(0);
  });
});
