// The cross-instance test against a 3-master Redis Cluster started by the
// test (redis-cli --cluster create on loopback ports): two instances with
// `cluster_nodes`, tables in several PostgreSQL databases so the keys land
// on more than one node, writes through A and reads through B always fresh.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import pg from 'pg';
import { connectClient, directQuery, directUrl, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { runHandoffs, type Lane } from '../../helpers/cross-instance.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { keysPerNode, startRedisCluster, type RedisClusterHandle } from '../../helpers/redis.js';

const HANDOFFS = Number(process.env['SQLCACHED_REDIS_HANDOFFS'] ?? 2_000);
const PREFIX = uniqueName('rc');
const TABLES = [uniqueName('rc_a'), uniqueName('rc_b')];
let cluster: RedisClusterHandle;
let a: TestProxy;
let b: TestProxy;
/** Databases this file created (dropped at the end); `test` is used too. */
const createdDbs: string[] = [];
const dbs: string[] = ['test'];

async function inDb<T>(db: string, body: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connectClient(directUrl(db));
  try {
    return await body(c);
  } finally {
    await c.end().catch(() => {});
  }
}

async function makeTables(db: string): Promise<void> {
  await inDb(db, async (c) => {
    for (const t of TABLES) {
      await c.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL)`);
      await c.query(`INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, 4) g`);
    }
  });
}

let probe = 0;
/** The cluster nodes that gained keys of this test when A cached one new read in `db`. */
async function nodesTouchedBy(db: string): Promise<number[]> {
  const before = await keysPerNode(cluster.nodes, PREFIX);
  const c = await connectClient(a.url(db));
  try {
    probe += 1;
    await c.query(`SELECT v, ${probe} AS probe FROM ${TABLES[0]} WHERE id = 4`);
  } finally {
    await c.end();
  }
  const after = await keysPerNode(cluster.nodes, PREFIX);
  return cluster.nodes.map((n) => n.port).filter((p) => (after[p] ?? 0) > (before[p] ?? 0));
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  a = await startProxy({ redis: { nodes: cluster.nodes, keyPrefix: PREFIX } });
  b = await startProxy({ redis: { nodes: cluster.nodes, keyPrefix: PREFIX } });
  await makeTables('test');
  // Warm up the store's shared keys, then add databases until their entries
  // span at least two nodes (which node a database lands on is the store's
  // business; the test only looks at where keys appear).
  await nodesTouchedBy('test');
  const spread = new Set(await nodesTouchedBy('test'));
  for (let i = 0; (createdDbs.length < 1 || spread.size < 2) && i < 8; i += 1) {
    const db = uniqueName('rcdb');
    await directQuery(`CREATE DATABASE ${db}`);
    createdDbs.push(db);
    dbs.push(db);
    await makeTables(db);
    for (const p of await nodesTouchedBy(db)) spread.add(p);
  }
  console.info(`[cluster] nodes ${cluster.nodes.map((n) => n.port).join(', ')}; databases ${dbs.join(', ')}; entries span ${spread.size} node(s)`);
}, 60_000);

afterAll(async () => {
  await a?.stop().catch(() => {});
  await b?.stop().catch(() => {});
  await cluster?.stop();
  await dropTables(...TABLES);
  for (const db of createdDbs) await directQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
  await endDirect();
});

describe('Redis Cluster (3 masters): two instances share one cache', () => {
  it('the cluster spreads this test\'s keys over more than one master (checked with ioredis directly)', async () => {
    const perNode = await keysPerNode(cluster.nodes, PREFIX);
    expect(Object.values(perNode).filter((n) => n > 0).length, `keys per node: ${JSON.stringify(perNode)}`).toBeGreaterThanOrEqual(2);
    const c = new Cluster(cluster.nodes, { clusterRetryStrategy: () => null });
    c.on('error', () => {});
    try {
      expect((await c.cluster('INFO')).includes('cluster_state:ok')).toBe(true);
      expect(c.nodes('master').length).toBe(3);
    } finally {
      c.disconnect();
    }
  });

  it(`${HANDOFFS} write-through-A / read-through-B handoffs over ${TABLES.length} tables in several databases: always fresh, B served from the cluster`, async () => {
    const lanes: Lane[] = dbs.flatMap((db) => TABLES.map((table) => ({ db, table, id: 1 })));
    const r = await runHandoffs({ a, b, lanes, handoffs: HANDOFFS, backgroundPerDb: 1, label: 'cluster' });
    expect(r.violations, `stale or failed reads (first 5):\n${r.violations.slice(0, 5).join('\n\n')}`).toEqual([]);
    expect(r.handoffs).toBeGreaterThanOrEqual(HANDOFFS);
    expect(r.b.hits, "B's reads were served from the cluster between writes").toBeGreaterThan(0);
    expect(r.a.storeErrors + r.b.storeErrors, 'the cluster was up: no store errors').toBe(0);
    for (const db of dbs) {
      for (const t of TABLES) {
        const truth = await inDb(db, async (c) => (await c.query(`SELECT id, v FROM ${t} ORDER BY id`)).rows);
        for (const p of [a, b]) {
          const c = await connectClient(p.url(db));
          try {
            expect((await c.query(`SELECT id, v FROM ${t} ORDER BY id`)).rows, `${db}.${t} through the proxy`).toEqual(truth);
            expect((await c.query(`SELECT id, v FROM ${t} ORDER BY id`)).rows, `${db}.${t} again (cache)`).toEqual(truth);
          } finally {
            await c.end();
          }
        }
      }
    }
  }, 60_000);

  it('POST /invalidate {"table"} on A reaches what B cached in every database', async () => {
    const clients = await Promise.all(dbs.map((db) => connectClient(b.url(db))));
    try {
      const sql = `SELECT id, v FROM ${TABLES[1]} WHERE id = 3`;
      for (const c of clients) await c.query(sql);
      const s0 = await b.stats();
      for (const c of clients) await c.query(sql);
      const s1 = await b.stats();
      expect(s1.hits - s0.hits, 'precondition: B serves them from the cluster').toBe(dbs.length);
      await a.invalidate({ table: TABLES[1]! });
      for (const c of clients) await c.query(sql);
      const s2 = await b.stats();
      expect({ hits: s2.hits - s1.hits, misses: s2.misses - s1.misses }).toEqual({ hits: 0, misses: dbs.length });
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
  });
});
