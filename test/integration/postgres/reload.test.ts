// A config reload (SIGHUP, RunningServer.reload) changes rules and TTLs at
// once, for connections already open and for entries already cached: the
// TTL is decided at lookup against the rule in force then (proxysql #1013).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { startProxy, testConfig, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('reload_t');
let proxy: TestProxy;
let c: pg.Client;
const read = () => c.query<{ v: number }>(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 1)`);
  proxy = await startProxy({ defaultTtlMs: 800 });
  c = await connectClient(proxy.url());
});

afterAll(async () => {
  await c?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('reload', () => {
  it('a longer default_ttl reaches entries cached before the reload, on a connection that stays open', async () => {
    expect(await warm(proxy, read)).toBe(1);
    await directQuery(`UPDATE ${T} SET v = 2 WHERE id = 1`); // behind the proxy
    proxy.server.reload(testConfig({ defaultTtlMs: 3_600_000 }));
    await sleep(1000); // past the old TTL
    expect(await read(), 'still the cached value: the new TTL applies to it').toBe(1);
  });

  it('a shorter TTL expires entries already cached', async () => {
    proxy.server.reload(testConfig({ defaultTtlMs: 100 }));
    await sleep(200);
    expect(await read(), 'expired under the new TTL: read from the database').toBe(2);
  });

  it('a rule cache: false added by reload stops hits at once', async () => {
    proxy.server.reload(testConfig({ defaultTtlMs: 3_600_000 }));
    expect(await warm(proxy, read)).toBe(2);
    proxy.server.reload(testConfig({ defaultTtlMs: 3_600_000, rules: [{ tables: [T], cache: false }] }));
    await directQuery(`UPDATE ${T} SET v = 3 WHERE id = 1`);
    expect(await read()).toBe(3);
    const reasons = (await proxy.stats()).bypass_reasons as Record<string, number>;
    expect(reasons['rule']).toBeGreaterThan(0);
  });
});
