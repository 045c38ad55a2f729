// Review of issue 5: invalidation by pattern with two instances sharing one
// Redis. A shape's tag is registered in Redis once per process (fire and
// forget; QueryCache.shapeTags and RedisStore.knownShapes both remember it
// locally for good). When the registration never lands or is lost (Redis
// restarted without persistence, the hash evicted under allkeys-lru, the
// HSET failing while Redis blinked), the instance keeps caching the shape
// under a tag no other instance can find: POST /invalidate {"pattern"} sent
// to the other instance answers 200 with shapes: 0 (or without that shape)
// and the stale rows stay servable. It should never claim success while an
// instance can still serve a matching result.

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, directQuery, dropTables, endDirect, uniqueName, waitFor } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { redisCommand, REDIS_PORT, startRedisLink, startRedisServer, type RedisServer } from '../../helpers/redis.js';

const T = uniqueName('ri5_t');

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
});

afterAll(async () => {
  await dropTables(T);
  await endDirect();
});

/** Read until the proxy answers from cache (hits counted), within `ms`. */
async function cachedSoon(proxy: TestProxy, read: () => Promise<unknown>, ms = 5_000): Promise<unknown> {
  let value: unknown;
  const ok = await waitFor(async () => {
    const before = (await proxy.stats()).hits;
    value = await read();
    return (await proxy.stats()).hits > before;
  }, ms, 100);
  expect(ok, 'the read became a cache hit').toBe(true);
  return value;
}

describe('a shape registered by instance B only, then lost from Redis', () => {
  let a: TestProxy;
  let b: TestProxy;
  let cb: pg.Client;
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer();
    const prefix = uniqueName('ri5r');
    a = await startProxy({ redis: { url: redis.url, keyPrefix: prefix }, defaultTtlMs: 0 });
    b = await startProxy({ redis: { url: redis.url, keyPrefix: prefix }, defaultTtlMs: 0 });
    cb = await connectClient(b.url());
  });
  afterAll(async () => {
    await cb?.end().catch(() => {});
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('Redis restarted (no persistence): B caches the shape again, a pattern posted to A must still retire it', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 1`;
    const read = async () => (await cb.query(sql)).rows;
    expect(await cachedSoon(b, read)).toEqual([{ v: 'a' }]);

    await redis.restart(); // everything in Redis is gone, P:shapes included
    // B reconnects, bumps the global epoch and caches the shape anew.
    expect(await cachedSoon(b, read, 8_000)).toEqual([{ v: 'a' }]);

    await directQuery(`UPDATE ${T} SET v = 'A' WHERE id = 1`); // behind the proxies
    const res = (await a.invalidate({ pattern: `SELECT v FROM ${T} WHERE %` })) as { shapes?: number };
    const after = await read();
    expect(after, `B must not serve the pre-invalidation row (A answered ${JSON.stringify(res)})`).toEqual([{ v: 'A' }]);
  });
});

describe('the shapes hash evicted / the first HSET lost', () => {
  let a: TestProxy;
  let b: TestProxy;
  let cb: pg.Client;
  let prefix: string;

  beforeAll(async () => {
    prefix = uniqueName('ri5e');
    a = await startProxy({ redis: { keyPrefix: prefix }, defaultTtlMs: 0 });
    b = await startProxy({ redis: { keyPrefix: prefix }, defaultTtlMs: 0 });
    cb = await connectClient(b.url());
  });
  afterAll(async () => {
    await cb?.end().catch(() => {});
    await a?.stop();
    await b?.stop();
  });

  it('P:shapes evicted (allkeys-lru) while B still caches the shape: a pattern posted to A must retire it', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 2`;
    const read = async () => (await cb.query(sql)).rows;
    expect(await cachedSoon(b, read)).toEqual([{ v: 'b' }]);
    await redisCommand(REDIS_PORT, ['DEL', `${prefix}:shapes`]); // what an LRU eviction of the hash does
    await directQuery(`UPDATE ${T} SET v = 'B' WHERE id = 2`);
    const res = await a.invalidate({ pattern: `SELECT v FROM ${T} WHERE %` });
    expect(await read(), `B serves a stale row after A answered ${JSON.stringify(res)}`).toEqual([{ v: 'B' }]);
  });
});

describe('the registration fails while B cannot reach Redis', () => {
  it('B first runs the shape during a Redis blip; after it recovers, a pattern posted to A must retire what B caches', async () => {
    const prefix = uniqueName('ri5l');
    const link = await startRedisLink(REDIS_PORT);
    const a = await startProxy({ redis: { keyPrefix: prefix }, defaultTtlMs: 0 });
    const b = await startProxy({ redis: { url: link.url, keyPrefix: prefix }, defaultTtlMs: 0 });
    const cb = await connectClient(b.url());
    try {
      const sql = `SELECT v FROM ${T} WHERE id = 3`;
      const read = async () => (await cb.query(sql)).rows;
      // Another shape first, so B's connection to Redis is known to work.
      await cachedSoon(b, async () => (await cb.query(`SELECT id FROM ${T} WHERE id = 3`)).rows);
      link.cut();
      expect(await read()).toEqual([{ v: 'c' }]); // fails open: from the database; the HSET of its tag is lost
      link.restore();
      expect(await cachedSoon(b, read, 8_000)).toEqual([{ v: 'c' }]);

      await directQuery(`UPDATE ${T} SET v = 'C' WHERE id = 3`);
      const res = await a.invalidate({ pattern: `SELECT v FROM ${T} WHERE %` });
      expect(await read(), `B serves a stale row after A answered ${JSON.stringify(res)}`).toEqual([{ v: 'C' }]);
    } finally {
      await cb.end().catch(() => {});
      await a.stop();
      await b.stop();
      await link.stop();
    }
  });
});
