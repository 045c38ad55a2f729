// GET /metrics and GET /stats after a known workload through both listeners
// of one proxy (real PostgreSQL and MariaDB): exact counts, by listener.

import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../../src/server.js';
import { connectClient, directQuery, dropTables, endDirect, pgUrl, uniqueName } from '../../helpers/db.js';
import { connectMysql, directSql, dropMyTables, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { parsePrometheus, type Exposition } from '../../helpers/prometheus.js';
import { mysqlTestConfig, testConfig } from '../../helpers/proxy.js';

const T = uniqueName('met_t');
const MT = uniqueName('met_m');
let server: RunningServer;
let base: string;
let pgc: pg.Client;
let my: MyConnection;

const port = (name: string) => server.listeners.find((l) => l.name === name)!.port;
const scrape = async (): Promise<Exposition> => {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- /stats is JSON; the test reads fields by name
type Json = any;
const stats = async (): Promise<Json> => (await fetch(`${base}/stats`)).json();

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 'a'), (2, 'b')`);
  await directSql(`CREATE TABLE ${MT} (id INT PRIMARY KEY, v VARCHAR(10))`);
  await directSql(`INSERT INTO ${MT} VALUES (1, 'a'), (2, 'b')`);
  const config = testConfig();
  config.listeners = [...config.listeners, ...mysqlTestConfig().listeners];
  server = await startServer(config, { log: pino({ level: 'silent' }) });
  base = `http://127.0.0.1:${server.admin!.port}`;
  pgc = await connectClient(pgUrl(port('pg'), 'test', 'postgres', undefined, '127.0.0.1'));
  my = await connectMysql(port('mysql'));
  // The first read of a table may be passed through while the proxy looks it up in the catalog.
  for (let i = 0; i < 3; i++) {
    await pgc.query(`SELECT v FROM ${T} WHERE id = 1`);
    await my.query(`SELECT v FROM ${MT} WHERE id = 1`);
  }
});

afterAll(async () => {
  await pgc?.end().catch(() => {});
  await my?.end().catch(() => {});
  await server?.stop();
  await dropTables(T);
  await dropMyTables(MT);
  await endDirect();
  await endMyDirect();
});

describe('GET /metrics', () => {
  it('has every public family with its type', async () => {
    const m = await scrape();
    expect(Object.fromEntries(m.types)).toMatchObject({
      sqlcached_hits_total: 'counter',
      sqlcached_misses_total: 'counter',
      sqlcached_bypasses_total: 'counter',
      sqlcached_stores_total: 'counter',
      sqlcached_invalidations_total: 'counter',
      sqlcached_evictions_total: 'counter',
      sqlcached_store_errors_total: 'counter',
      sqlcached_entries: 'gauge',
      sqlcached_bytes: 'gauge',
      sqlcached_max_memory_bytes: 'gauge',
      sqlcached_client_connections: 'gauge',
      sqlcached_upstream_connections: 'gauge',
      sqlcached_hit_duration_seconds: 'histogram',
      sqlcached_miss_duration_seconds: 'histogram',
      sqlcached_process_resident_memory_bytes: 'gauge',
    });
    for (const name of m.types.keys()) expect(name).toMatch(/^sqlcached_[a-z0-9_]+$/);
    expect(m.value('sqlcached_max_memory_bytes')).toBe(64 * 1024 * 1024);
    expect(m.value('sqlcached_client_connections', { listener: 'pg' })).toBe(1);
    expect(m.value('sqlcached_client_connections', { listener: 'mysql' })).toBe(1);
    expect(m.value('sqlcached_upstream_connections', { listener: 'pg' })).toBe(1);
    // Histogram buckets are cumulative, end at +Inf = _count, and are in seconds.
    const les = m.samples.filter((s) => s.name === 'sqlcached_hit_duration_seconds_bucket' && s.labels['listener'] === 'pg');
    expect(Number(les[0]!.labels['le'])).toBe(0.00001);
    expect(les.at(-1)!.labels['le']).toBe('+Inf');
    for (let i = 1; i < les.length; i++) expect(les[i]!.value).toBeGreaterThanOrEqual(les[i - 1]!.value);
    expect(les.at(-1)!.value).toBe(m.value('sqlcached_hit_duration_seconds_count', { listener: 'pg' }));
  });

  it('counts a known workload exactly, per listener: hits, misses, bypasses by reason, invalidations by table, latency counts', async () => {
    const before = await scrape();
    const statsBefore = await stats();
    // PostgreSQL: a new key (miss), two hits, an UPDATE (bypass + invalidation), a miss, a hit.
    for (let i = 0; i < 3; i++) expect((await pgc.query(`SELECT v FROM ${T} WHERE id = 2`)).rows).toEqual([{ v: 'b' }]);
    await pgc.query(`UPDATE ${T} SET v = 'B' WHERE id = 2`);
    for (let i = 0; i < 2; i++) expect((await pgc.query(`SELECT v FROM ${T} WHERE id = 2`)).rows).toEqual([{ v: 'B' }]);
    // MariaDB: the same, with a DELETE.
    for (let i = 0; i < 3; i++) await my.query(`SELECT v FROM ${MT} WHERE id = 2`);
    await my.query(`DELETE FROM ${MT} WHERE id = 1`);
    await my.query(`SELECT v FROM ${MT} WHERE id = 2`);
    const after = await scrape();
    const d = (name: string, labels: Record<string, string> = {}) => after.valueOr0(name, labels) - before.valueOr0(name, labels);

    expect(d('sqlcached_hits_total', { listener: 'pg' })).toBe(3);
    expect(d('sqlcached_misses_total', { listener: 'pg' })).toBe(2);
    expect(d('sqlcached_hits_total', { listener: 'mysql' })).toBe(2);
    expect(d('sqlcached_misses_total', { listener: 'mysql' })).toBe(2);
    expect(d('sqlcached_bypasses_total', { reason: 'not-a-read' })).toBe(2);
    expect(d('sqlcached_invalidations_total', { database: 'test', table: T })).toBe(1);
    expect(d('sqlcached_invalidations_total', { database: 'test', table: MT })).toBe(1);
    expect(d('sqlcached_stores_total')).toBe(4);
    expect(d('sqlcached_hit_duration_seconds_count', { listener: 'pg' })).toBe(3);
    expect(d('sqlcached_miss_duration_seconds_count', { listener: 'pg' })).toBe(2);
    expect(d('sqlcached_hit_duration_seconds_count', { listener: 'mysql' })).toBe(2);
    expect(d('sqlcached_miss_duration_seconds_count', { listener: 'mysql' })).toBe(2);
    expect(d('sqlcached_miss_duration_seconds_sum', { listener: 'pg' })).toBeGreaterThan(0);

    // /stats says the same, per shape and per table.
    const s = await stats();
    expect(s.hits - statsBefore.hits).toBe(5);
    expect(s.misses - statsBefore.misses).toBe(4);
    const shape = s.queries.find((q: Json) => q.fingerprint === `SELECT v FROM ${T} WHERE id = ?`);
    expect(shape).toMatchObject({ ttl_ms: 60_000, rule: null, bypass_reason: null });
    const shapeBefore = statsBefore.queries.find((q: Json) => q.fingerprint === `SELECT v FROM ${T} WHERE id = ?`);
    expect(shape.hits - shapeBefore.hits).toBe(3);
    expect(shape.misses - shapeBefore.misses).toBe(2);
    expect(shape.p95_upstream_ms).toBeGreaterThan(0);
    expect(shape.mean_hit_us).toBeGreaterThan(0);
    const table = s.tables[`test.${T}`];
    const tableBefore = statsBefore.tables[`test.${T}`];
    expect(table.reads - tableBefore.reads).toBe(5);
    expect(table.hits - tableBefore.hits).toBe(3);
    expect(table.writes - tableBefore.writes).toBe(1);
    expect(table.invalidations - tableBefore.invalidations).toBe(1);
    expect(s.listeners).toEqual([
      expect.objectContaining({ name: 'pg', protocol: 'postgres', clients: 1, upstreams: 1 }),
      expect.objectContaining({ name: 'mysql', protocol: 'mysql', clients: 1, upstreams: 1 }),
    ]);
    expect(s).toMatchObject({ store: 'memory', max_memory: 64 * 1024 * 1024 });
    expect(s.history.length).toBeGreaterThanOrEqual(1);
    expect(s.top_saved.length).toBeGreaterThan(0);
  });

  it('invalidation labels stay bounded: past admin.metrics_table_limit tables share __other__', async () => {
    const config = testConfig({ metricsTableLimit: 1 });
    const small = await startServer(config, { log: pino({ level: 'silent' }) });
    try {
      for (const table of ['a_t', 'b_t', 'c_t']) {
        const res = await fetch(`http://127.0.0.1:${small.admin!.port}/invalidate`, { method: 'POST', body: JSON.stringify({ database: 'x', table }) });
        expect(res.status).toBe(200);
      }
      const m = parsePrometheus(await (await fetch(`http://127.0.0.1:${small.admin!.port}/metrics`)).text());
      const labels = m.samples.filter((s) => s.name === 'sqlcached_invalidations_total').map((s) => s.labels);
      expect(labels).toEqual([
        { database: 'x', table: 'a_t' },
        { database: '__other__', table: '__other__' },
      ]);
      expect(m.value('sqlcached_invalidations_total', { table: '__other__' })).toBe(2);
    } finally {
      await small.stop();
    }
  });

  it('no raw SQL in any label', async () => {
    await pgc.query(`SELECT v FROM ${T} WHERE v = 'label-leak-check'`);
    const m = await scrape();
    for (const s of m.samples) for (const v of Object.values(s.labels)) expect(v).not.toContain('label-leak-check');
  });
});
