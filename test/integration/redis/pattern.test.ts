// POST /invalidate {"pattern"} with two instances sharing one Redis: a
// pattern sent to A retires what B cached (B's shapes are registered in
// Redis), including shapes A never saw; other shapes stay cached.

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { REDIS_PORT, redisCommand } from '../../helpers/redis.js';

const T = uniqueName('rp_t');
const PREFIX = uniqueName('rp');
let a: TestProxy;
let b: TestProxy;
let cb: pg.Client;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 'a'), (2, 'b')`);
  // A registry created a minute ago: past its grace period, so a pattern
  // bumps only what matches (a younger one may be incomplete: all goes).
  const now = Number(((await redisCommand(REDIS_PORT, ['TIME'])) as string[])[0]);
  await redisCommand(REDIS_PORT, ['HSET', `${PREFIX}:reg`, '#born', `${now - 60}.0`]);
  a = await startProxy({ redis: { keyPrefix: PREFIX }, defaultTtlMs: 0 });
  b = await startProxy({ redis: { keyPrefix: PREFIX }, defaultTtlMs: 0 });
  cb = await connectClient(b.url());
});

afterAll(async () => {
  await cb?.end().catch(() => {});
  await a?.stop();
  await b?.stop();
  await dropTables(T);
  await endDirect();
});

describe('invalidation by pattern across instances', () => {
  it('a pattern posted to A retires the results B cached of a shape A never ran; the other shape stays', async () => {
    const v = async () => (await cb.query(`SELECT v FROM ${T} WHERE id = 1`)).rows;
    const both = async () => (await cb.query(`SELECT id, v FROM ${T} ORDER BY id`)).rows;
    expect(await warm(b, v)).toEqual([{ v: 'a' }]);
    expect(await warm(b, both)).toEqual([{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
    await directQuery(`UPDATE ${T} SET v = 'A' WHERE id = 1`); // behind the proxies

    const res = await a.invalidate({ pattern: `SELECT v FROM ${T} %` });
    expect(res).toEqual({ invalidated: [`SELECT v FROM ${T} WHERE id = ?`], shapes: 1 });

    const after = await hitsDuring(b, v);
    expect(after.hits).toBe(0);
    expect(after.value).toEqual([{ v: 'A' }]);
    const other = await hitsDuring(b, both);
    expect(other.hits, 'the shape that does not match is still served from Redis').toBe(1);
    expect((await hitsDuring(b, v)).hits, 'the re-read is cached again').toBe(1);
  });

  it('a registry lost (evicted, Redis restarted) may be incomplete: the pattern then retires everything, and says so', async () => {
    await redisCommand(REDIS_PORT, ['DEL', `${PREFIX}:reg`]);
    const both = async () => (await cb.query(`SELECT id, v FROM ${T} ORDER BY id`)).rows;
    expect((await hitsDuring(b, both)).hits, 'still cached before the pattern').toBe(1);
    expect(await a.invalidate({ pattern: 'no shape looks like this%' })).toEqual({
      invalidated: ['*'],
      detail: 'shapes not all known: everything was invalidated',
    });
    expect((await hitsDuring(b, both)).hits, 'everything was retired').toBe(0);
  });
});
