// Sizing is Redis's (maxmemory + an eviction policy): any key of the store
// may vanish at any moment — an entry, and also a table-version counter or
// an epoch. Whatever Redis evicts, two instances must stay fresh: the
// cross-instance handoffs run while filler reads push a small Redis past its
// maxmemory, under the recommended allkeys-lru and under allkeys-random
// (where the version counters go as often as the entries).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { runHandoffs, type Lane } from '../../helpers/cross-instance.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis.js';

const HANDOFFS = Number(process.env['SQLCACHED_REDIS_EVICTION_HANDOFFS'] ?? 600);
const FILLER = uniqueName('rev_fill');
const tables: string[] = [FILLER];
const servers: RedisServer[] = [];
const proxies: TestProxy[] = [];

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${FILLER} (id int PRIMARY KEY, payload text NOT NULL)`);
  await directQuery(`INSERT INTO ${FILLER} SELECT g, repeat(md5(g::text), 128) FROM generate_series(1, 100) g`);
});

afterAll(async () => {
  for (const p of proxies.splice(0)) await p.stop().catch(() => {});
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await dropTables(...tables);
  await endDirect();
});

function infoNumber(info: unknown, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(String(info));
  return m === null ? NaN : Number(m[1]);
}

describe.each(['allkeys-lru', 'allkeys-random'])('Redis at its maxmemory, policy %s', (policy) => {
  it(`${HANDOFFS} handoffs while filler reads make Redis evict: always fresh`, async () => {
    const server = await startRedisServer({ args: ['--maxmemory', '3mb', '--maxmemory-policy', policy] });
    servers.push(server);
    const keyPrefix = uniqueName('rev');
    const a = await startProxy({ redis: { url: server.url, keyPrefix } });
    const b = await startProxy({ redis: { url: server.url, keyPrefix } });
    proxies.push(a, b);
    const t1 = uniqueName('rev_a');
    const t2 = uniqueName('rev_b');
    tables.push(t1, t2);
    for (const t of [t1, t2]) {
      await directQuery(`CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL)`);
      await directQuery(`INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, 4) g`);
    }

    // Filler: distinct ~4 kB results through both instances, until the handoffs are done.
    let filling = true;
    const fillers: pg.Client[] = await Promise.all([a, b, a, b].map((p) => connectClient(p.url())));
    let filled = 0;
    const loops = fillers.map(async (c, j) => {
      let k = j * 1_000_000;
      while (filling) {
        k += 1;
        await c.query(`SELECT id, payload, ${k} AS k FROM ${FILLER} WHERE id = ${1 + (k % 100)}`);
        filled += 1;
      }
    });
    const lanes: Lane[] = [
      { db: 'test', table: t1, id: 1 },
      { db: 'test', table: t1, id: 2 },
      { db: 'test', table: t2, id: 1 },
      { db: 'test', table: t2, id: 2 },
    ];
    let r;
    try {
      r = await runHandoffs({ a, b, lanes, handoffs: HANDOFFS, backgroundPerDb: 1, label: `eviction ${policy}` });
    } finally {
      filling = false;
      await Promise.all(loops);
      await Promise.all(fillers.map((c) => c.end()));
    }
    const evicted = infoNumber(await server.command('INFO', 'stats'), 'evicted_keys');
    console.info(`[eviction ${policy}] ${filled} filler reads, evicted_keys ${evicted}`);
    expect(evicted, 'Redis did evict keys during the run').toBeGreaterThan(100);
    expect(r.violations, `stale or failed reads (first 5):\n${r.violations.slice(0, 5).join('\n\n')}`).toEqual([]);
    expect(r.handoffs).toBeGreaterThanOrEqual(HANDOFFS);
    expect(r.b.hits, 'B still served hits').toBeGreaterThan(0);
  }, 40_000);
});
