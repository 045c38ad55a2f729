// Review of issue 5: QueryCache.invalidatePattern over two RedisStores that
// share one key prefix (two proxy instances), driven through QueryCache's
// public methods only. Two ways the pattern call answers 200 "shapes: 1" or
// "shapes: 0" while the other instance keeps serving a matching result:
//  - instance B is past MAX_KNOWN_SHAPES: its later shapes are versioned
//    under tags it never registers in Redis, and only B knows it overflowed
//    (A's own shapesOverflow is false, so A does not fall back to bumpAll);
//  - the shared list of databases (P:dbs) cannot be read: FailOpenStore
//    turns the failure into [], so A bumps the tags only in the databases A
//    itself has seen (shapesOrNull's failure, by contrast, bumps everything).

import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../../src/cache/redis-store.js';
import type { CacheEntry } from '../../../src/cache/store.js';
import { QueryCache } from '../../../src/core/query-cache.js';
import type { CacheDecision } from '../../../src/core/types.js';
import { uniqueName } from '../../helpers/db.js';
import { testConfig } from '../../helpers/proxy.js';
import { deleteRedisKeys, redisCommand, REDIS_PORT, REDIS_URL } from '../../helpers/redis.js';

const log = pino({ level: 'silent' });
const classifier = { analyse: () => { throw new Error('not used'); } };
const opened: { qc: QueryCache; prefix: string }[] = [];

async function instance(prefix: string): Promise<QueryCache> {
  const config = testConfig({ redis: { keyPrefix: prefix }, defaultTtlMs: 0 });
  const store = new RedisStore({ config: config.cache.redis, log });
  for (let i = 0; ; i++) {
    try {
      await store.ready();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const qc = new QueryCache({ config, store, classifier, log, storeTimeoutMs: 2_000 });
  opened.push({ qc, prefix });
  return qc;
}

afterAll(async () => {
  for (const { qc, prefix } of opened) {
    await qc.close();
    await deleteRedisKeys({ url: REDIS_URL }, prefix).catch(() => {});
  }
});

const decision = (database: string, shape: string): CacheDecision => ({ action: 'cache', database, reads: ['articles'], ttlMs: 0, shape, rule: null });

/** B reads and stores a result of `d` the way a session does (snapshot → fill); resolves once the put landed. */
async function cache(qc: QueryCache, d: CacheDecision, key: string): Promise<void> {
  // A put waits for the shape's registration in Redis (refused until then):
  // read through again, as a session would, until the entry is there.
  const ok = await (async () => {
    for (let i = 0; i < 100; i++) {
      qc.fill(d, key, await qc.snapshot(d), null, Buffer.from('stale rows'));
      await new Promise((r) => setTimeout(r, 50));
      if ((await qc.lookup(d, key)) !== undefined) return true;
    }
    return false;
  })();
  expect(ok, 'B serves its own entry before the pattern call').toBe(true);
}

const served = async (qc: QueryCache, d: CacheDecision, key: string): Promise<CacheEntry | undefined> => qc.lookup(d, key);

describe('invalidation by pattern, two instances over one Redis', () => {
  it('the shared list of databases cannot be read: the pattern must not report success while B still serves the shape', async () => {
    const prefix = uniqueName('ri5d');
    const a = await instance(prefix);
    const b = await instance(prefix);
    const d = decision('ri5_only_b_db', 'SELECT * FROM articles WHERE id = ?');
    await cache(b, d, 'k1');
    // P:dbs unreadable (here: the wrong type; in production a timeout or a
    // failover does the same): databases() fails open to [].
    await redisCommand(REDIS_PORT, ['DEL', `${prefix}:dbs`]);
    await redisCommand(REDIS_PORT, ['SET', `${prefix}:dbs`, 'x']);
    const res = await a.invalidatePattern('SELECT * FROM articles%');
    expect(await served(b, d, 'k1'), `B still serves it after A answered ${JSON.stringify(res)}`).toBeUndefined();
  });

  it('B past MAX_KNOWN_SHAPES: a pattern posted to A must retire the shapes B could not register', async () => {
    const prefix = uniqueName('ri5o');
    const a = await instance(prefix);
    const b = await instance(prefix);
    // 100 000 one-off shapes fill B's table of known shapes (an ORM that
    // inlines literals into IN lists or column lists can do this over days).
    const db = 'ri5_overflow_db';
    for (let base = 0; base < 100_000; base += 10_000) {
      const batch: Promise<unknown>[] = [];
      for (let i = base; i < base + 10_000; i++) batch.push(Promise.resolve(b.snapshot(decision(db, `SELECT c${i} FROM filler`))));
      await Promise.all(batch);
    }
    await new Promise((r) => setTimeout(r, 1_100)); // let a store circuit opened by that burst close again
    const d = decision(db, 'SELECT * FROM articles WHERE slug = ?');
    await cache(b, d, 'k2');
    const res = await a.invalidatePattern('SELECT * FROM articles%');
    expect(await served(b, d, 'k2'), `B still serves it after A answered ${JSON.stringify(res)}`).toBeUndefined();
  }, 30_000);
});
