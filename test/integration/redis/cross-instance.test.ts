// Two proxy instances in one process share one Redis (the local one at 6379,
// one key prefix): DESIGN promise 2 across instances — once a write through
// A is acknowledged, B never serves what it made stale — and the admin
// contract of a shared store: POST /invalidate on any instance invalidates
// for all, /stats shows the shared entry count and the instance's own hits.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName, waitFor } from '../../helpers/db.js';
import { runHandoffs, type Lane } from '../../helpers/cross-instance.js';
import { startProxy, type Stats, type TestProxy } from '../../helpers/proxy.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis.js';

const HANDOFFS = Number(process.env['SQLCACHED_REDIS_HANDOFFS'] ?? 2_000);
const T1 = uniqueName('rx_a');
const T2 = uniqueName('rx_b');
const TI = uniqueName('rx_inv');
const TE = uniqueName('rx_ent');
const TX = uniqueName('rx_tx');
const TL = uniqueName('rx_large');
const PREFIX = uniqueName('rx');
const proxies: TestProxy[] = [];
const servers: RedisServer[] = [];
const clients: pg.Client[] = [];
let a: TestProxy;
let b: TestProxy;

async function proxy(keyPrefix: string, url?: string): Promise<TestProxy> {
  const p = await startProxy({ redis: url === undefined ? { keyPrefix } : { keyPrefix, url } });
  proxies.push(p);
  return p;
}

async function client(p: TestProxy): Promise<pg.Client> {
  const c = await connectClient(p.url());
  clients.push(c);
  return c;
}

const storeErrors = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? NaN);

beforeAll(async () => {
  for (const t of [T1, T2]) {
    await directQuery(`CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL)`);
    await directQuery(`INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, 4) g`);
  }
  await directQuery(`CREATE TABLE ${TI} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${TI} VALUES (1, 0)`);
  await directQuery(`CREATE TABLE ${TE} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${TE} SELECT g, g FROM generate_series(1, 50) g`);
  await directQuery(`CREATE TABLE ${TX} (id int PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05+00')`);
  await directQuery(`INSERT INTO ${TX} (id, v) VALUES (1, 0)`);
  await directQuery(`CREATE TABLE ${TL} (id int PRIMARY KEY, payload text NOT NULL)`);
  await directQuery(`INSERT INTO ${TL} SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g`);
  a = await proxy(PREFIX);
  b = await proxy(PREFIX);
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  for (const p of proxies.splice(0)) await p.stop().catch(() => {});
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await dropTables(T1, T2, TI, TE, TX, TL);
  await endDirect();
});

describe('two instances, one Redis: a write acknowledged through A is never stale through B', () => {
  it(`${HANDOFFS} write-through-A / read-through-B handoffs with concurrent readers on both instances: always fresh, and B answers from the shared cache between writes`, async () => {
    const lanes: Lane[] = [
      { db: 'test', table: T1, id: 1 },
      { db: 'test', table: T1, id: 2 },
      { db: 'test', table: T2, id: 1 },
      { db: 'test', table: T2, id: 2 },
    ];
    const r = await runHandoffs({ a, b, lanes, handoffs: HANDOFFS, label: 'cross-instance' });
    expect(r.violations, `stale or failed reads (first 5):\n${r.violations.slice(0, 5).join('\n\n')}`).toEqual([]);
    expect(r.handoffs).toBeGreaterThanOrEqual(HANDOFFS);
    expect(r.b.hits, "B's reads were served from the shared cache between writes").toBeGreaterThan(0);
    expect(r.a.hits, "A's background readers were served from the shared cache too").toBeGreaterThan(0);
    expect(r.a.storeErrors + r.b.storeErrors, 'Redis was up: no store errors').toBe(0);
    // At the end, through either instance, the tables equal the database.
    for (const t of [T1, T2]) {
      const truth = (await directQuery(`SELECT id, v FROM ${t} ORDER BY id`)).rows;
      for (const p of [a, b]) {
        const c = await client(p);
        expect((await c.query(`SELECT id, v FROM ${t} ORDER BY id`)).rows).toEqual(truth);
        expect((await c.query(`SELECT id, v FROM ${t} ORDER BY id`)).rows, 'again (from the cache)').toEqual(truth);
      }
    }
  }, 60_000);

  it('control: the same checks catch writes the instances cannot see (made straight to PostgreSQL)', async () => {
    const lanes: Lane[] = [
      { db: 'test', table: T1, id: 3 },
      { db: 'test', table: T2, id: 3 },
    ];
    const r = await runHandoffs({ a, b, lanes, handoffs: 200, control: true, maxViolations: 5, label: 'cross-instance' });
    expect(r.b.hits, 'the control read from the cache').toBeGreaterThan(0);
    expect(r.violations.length, 'stale reads detected when no instance sees the writes').toBeGreaterThan(0);
    console.info(`[cross-instance] sample control report:\n${r.violations[0]}`);
    await a.invalidate({ all: true }); // the control left stale entries behind on purpose
  }, 30_000);
});

describe('across instances, the rest of the promise holds too', () => {
  it('a write inside a transaction on A: B reads (and caches) the old row until COMMIT, and the new one right after COMMIT is acknowledged (50 times)', async () => {
    const ca = await client(a);
    const cb = await client(b);
    const read = async (): Promise<number> => (await cb.query<{ v: number }>(`SELECT v FROM ${TX} WHERE id = 1`)).rows[0]!.v;
    let v = (await directQuery<{ v: number }>(`SELECT v FROM ${TX} WHERE id = 1`)).rows[0]!.v;
    const before = await b.stats();
    for (let i = 0; i < 50; i += 1) {
      expect(await read()).toBe(v);
      await ca.query('BEGIN');
      await ca.query(`UPDATE ${TX} SET v = v + 1 WHERE id = 1`);
      // Not committed: B must still see the old value, and may cache it now.
      expect(await read(), `iteration ${i}: B during A's transaction`).toBe(v);
      expect(await read(), `iteration ${i}: B during A's transaction (again)`).toBe(v);
      await ca.query('COMMIT');
      v += 1;
      expect(await read(), `iteration ${i}: B right after A's COMMIT was acknowledged`).toBe(v);
    }
    expect((await b.stats()).hits - before.hits, 'B served the pre-commit reads from the cache').toBeGreaterThan(0);
  });

  it("no leak across instances: B's session with another TimeZone never gets the bytes A cached for UTC", async () => {
    const ca = await client(a);
    const cb = await client(b);
    await ca.query(`SET TimeZone = 'UTC'`);
    await cb.query(`SET TimeZone = 'Asia/Tokyo'`);
    const sql = `SELECT at::text AS at FROM ${TX} WHERE id = 1`;
    for (let i = 0; i < 3; i += 1) expect((await ca.query(sql)).rows[0].at).toBe('2026-01-02 03:04:05+00');
    for (let i = 0; i < 3; i += 1) expect((await cb.query(sql)).rows[0].at).toBe('2026-01-02 12:04:05+09');
  });

  it('a large result (~650 kB) A cached is replayed by B byte for byte', async () => {
    const ca = await client(a);
    const cb = await client(b);
    const sql = `SELECT id, payload FROM ${TL} ORDER BY id`;
    const truth = (await directQuery(sql)).rows;
    expect((await ca.query(sql)).rows).toEqual(truth);
    const b0 = await b.stats();
    expect((await cb.query(sql)).rows).toEqual(truth);
    expect((await b.stats()).hits - b0.hits, 'B answered it from what A stored').toBe(1);
  });
});

describe('POST /invalidate on one instance invalidates what another cached', () => {
  const READ = `SELECT v FROM ${TI} WHERE id = 1`;

  /** B reads READ until it is a hit (the entry is in Redis), and returns the value. */
  async function cachedOnB(c: pg.Client): Promise<number> {
    let v = NaN;
    const ok = await waitFor(async () => {
      const before = await b.stats();
      v = (await c.query<{ v: number }>(READ)).rows[0]!.v;
      return (await b.stats()).hits - before.hits === 1;
    }, 5_000, 10);
    expect(ok, `B never answered ${READ} from the cache`).toBe(true);
    return v;
  }

  /** Write behind both proxies, invalidate through `via`, then B's next read is a miss and shows the write. */
  async function check(via: TestProxy, body: Parameters<TestProxy['invalidate']>[0], newValue: number): Promise<void> {
    const cb = await client(b);
    expect(await cachedOnB(cb)).toBe(newValue - 1);
    await directQuery(`UPDATE ${TI} SET v = $1 WHERE id = 1`, [newValue]);
    // Still cached (the write was behind the proxies' back): B serves the old value.
    expect((await cb.query<{ v: number }>(READ)).rows[0]!.v, 'precondition: B serves its cached (now stale) entry').toBe(newValue - 1);
    await via.invalidate(body);
    const before = await b.stats();
    const v = (await cb.query<{ v: number }>(READ)).rows[0]!.v;
    const after = await b.stats();
    expect({ v, hits: after.hits - before.hits, misses: after.misses - before.misses }, `after POST /invalidate ${JSON.stringify(body)} on another instance`).toEqual({
      v: newValue,
      hits: 0,
      misses: 1,
    });
  }

  it('{"database":"test","table":…} on A', async () => {
    await check(a, { database: 'test', table: TI }, 1);
  });

  it('{"table":…} on A', async () => {
    await check(a, { table: TI }, 2);
  });

  it('{"table":…} on a third instance that has served nothing yet (it knows no database itself)', async () => {
    const c = await proxy(PREFIX);
    await check(c, { table: TI }, 3);
  });

  it('{"all":true} on A', async () => {
    await check(a, { all: true }, 4);
  });
});

describe('/stats of a shared store', () => {
  it("`hits` are each instance's own: A's hits do not show on B", async () => {
    const ca = await client(a);
    const cb = await client(b);
    const sql = `SELECT v FROM ${TE} WHERE id = 7`;
    await ca.query(sql);
    const [a0, b0] = await Promise.all([a.stats(), b.stats()]);
    for (let i = 0; i < 5; i += 1) await ca.query(sql);
    const [a1, b1] = await Promise.all([a.stats(), b.stats()]);
    expect(a1.hits - a0.hits, "A's repeats are A's hits").toBe(5);
    expect(b1.hits - b0.hits, 'none of them counted on B').toBe(0);
    await cb.query(sql); // A stored it: B's first read is a hit
    const b2 = await b.stats();
    expect(b2.hits - b1.hits, 'B hits what A stored').toBe(1);
    expect(storeErrors(b2)).toBe(0);
  });

  it('`entries` is the shared count: B counts the entries A stored, and only the results cached under its key prefix', async () => {
    // A Redis of its own, so the count is not blurred by the other test files' keys in the local Redis.
    const server = await startRedisServer();
    servers.push(server);
    const prefix = uniqueName('rx_ent');
    const pa = await proxy(prefix, server.url);
    const pb = await proxy(prefix, server.url);
    // Another application's keys in the same Redis are not sqlcached entries.
    for (let i = 0; i < 25; i += 1) await server.command('SET', `otherapp:session:${i}`, 'x');
    const ca = await client(pa);
    const N = 20;
    const before = await pa.stats();
    for (let id = 1; id <= N; id += 1) await ca.query(`SELECT v FROM ${TE} WHERE id = ${id}`);
    const stored = (await pa.stats()).misses - before.misses;
    expect(stored, 'each distinct read was a miss on A (then stored)').toBe(N);
    let seen: number[] = [];
    const ok = await waitFor(async () => {
      seen = [(await pb.stats()).entries, (await pa.stats()).entries];
      return seen[0] === N && seen[1] === N;
    }, 8_000, 200);
    expect({ ok, entriesOnB: seen[0], entriesOnA: seen[1] }, `B (and A) report the ${N} results A cached`).toEqual({ ok: true, entriesOnB: N, entriesOnA: N });
  }, 20_000);
});
