// Review: cached reads and transaction state. With cache.in_transactions
// false and true, the same scripts go to the proxy and to the database; the
// ReadyForQuery status byte, 25P02 in a failed transaction, portals that
// live until COMMIT, and settings undone by ROLLBACK must all be the
// database's.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../helpers/db.js';
import { rejection, warm } from '../helpers/compare.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { B, DP, E, P, Q, S, Wire, differential, warmWire } from '../helpers/transcript.js';

const T = uniqueName('rv_txn');
const S1 = uniqueName('rv_txn_s1');
const S2 = uniqueName('rv_txn_s2');
const byId = (id: number) => `SELECT v FROM ${T} WHERE id = ${id}`;
const WARM = [`SELECT v FROM ${T} WHERE id = 10`];

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL, ts timestamptz NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g, '2024-03-10 12:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 10) g`);
  for (const s of [S1, S2]) {
    await directQuery(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.same (id int PRIMARY KEY, v text); INSERT INTO ${s}.same VALUES (1, '${s}')`);
  }
});

afterAll(async () => {
  await dropTables(T);
  await directQuery(`DROP SCHEMA IF EXISTS ${S1}, ${S2} CASCADE`);
  await endDirect();
});

describe.each([
  ['in_transactions: false', false],
  ['in_transactions: true', true],
])('%s', (_label, inTransactions) => {
  let proxy: TestProxy;
  const stats = () => proxy.stats();

  beforeAll(async () => {
    proxy = await startProxy({ inTransactions });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('BEGIN; cached reads (simple and extended); SAVEPOINT; an error; ROLLBACK TO; COMMIT: statuses T/E and 25P02 as from the database', async () => {
    const sql = byId(1);
    await warmWire(proxy.port, stats, Q(sql));
    await warmWire(proxy.port, stats, [P(sql), B(), E(), S()]);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q('BEGIN') },
        { send: Q(sql) }, // status T
        { send: [P(sql), B(), E(), S()] },
        { send: Q('SAVEPOINT rv_sp') },
        { send: Q('SELECT 1/0') },
        { send: Q(sql) }, // 25P02: never from cache
        { send: [P(sql), B(), E(), S()] }, // 25P02 too
        { send: Q('ROLLBACK TO rv_sp') },
        { send: Q(sql) },
        { send: [P(sql), B(), E(), S()] },
        { send: Q('COMMIT') },
        { send: Q(sql) },
      ],
      WARM,
    );
    expect(viaProxy).toEqual(db);
  });

  it('a read pipelined behind a statement that fails inside the transaction gets 25P02, not cached rows', async () => {
    const sql = byId(2);
    await warmWire(proxy.port, stats, Q(sql));
    await warmWire(proxy.port, stats, [P(sql), B(), E(), S()]);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q('BEGIN') },
        { send: [Q('SELECT 1/0'), Q(sql)], readies: 2 },
        { send: Q('ROLLBACK') },
        { send: Q('BEGIN') },
        { send: [P('SELECT 1/0'), B(), E(), S(), P(sql), B(), E(), S()], readies: 2 },
        { send: Q('ROLLBACK') },
      ],
      WARM,
    );
    expect(db[1]!.filter((m) => m.name === 'error').map((m) => m.code)).toEqual(['22012', '25P02']);
    expect(viaProxy).toEqual(db);
  });

  it('pg: a read in a failed transaction is refused with 25P02, never served from cache', async () => {
    const c = await connectClient(proxy.url());
    try {
      const read = () => c.query(byId(3));
      expect((await warm(proxy, read)).rows).toEqual([{ v: 'v3' }]);
      await c.query('BEGIN');
      expect((await rejection(c.query('SELECT 1/0'))).code).toBe('22012');
      expect((await rejection(read())).code).toBe('25P02');
      await c.query('ROLLBACK');
      expect((await read()).rows).toEqual([{ v: 'v3' }]);
    } finally {
      await c.end();
    }
  });

  it('a named portal answered from cache inside a transaction can be executed and described again until COMMIT', async () => {
    const sql = byId(4);
    await warmWire(proxy.port, stats, [P(sql), B('', [], 'rv_cur'), E('rv_cur'), S()]);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q('BEGIN') },
        { send: [P(sql), B('', [], 'rv_cur'), E('rv_cur'), S()] },
        { send: [DP('rv_cur'), E('rv_cur'), S()] }, // the portal is at its end: SELECT 0
        { send: Q('COMMIT') },
      ],
      WARM,
    );
    expect(viaProxy).toEqual(db);
  });

  it('SET search_path / SET LOCAL TimeZone undone by ROLLBACK: the next reads, pipelined or not, follow the restored settings', async () => {
    const same = 'SELECT v FROM same WHERE id = 1';
    const ts = `SELECT ts FROM ${T} WHERE id = 5`;
    // Entries under both paths and both zones: a read decided under stale
    // settings (the SET undone, the settings not read again yet) would hit one.
    for (const [path, zone] of [[S1, 'UTC'], [S2, 'UTC'], [S2, 'Asia/Tokyo']] as const) {
      const w = await Wire.open(proxy.port);
      await w.query(`SET search_path = ${path}, public`);
      await w.query(`SET TimeZone = '${zone}'`);
      for (let i = 0; i < 3; i += 1) {
        await w.query(same);
        await w.query(ts);
      }
      w.close();
    }
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q(`SET search_path = ${S1}, public`) },
        { send: Q(`SET TimeZone = 'UTC'`) },
        { send: Q(same) },
        { send: Q(ts) },
        { send: Q('BEGIN') },
        { send: Q(`SET search_path = ${S2}, public`) },
        { send: Q(`SET LOCAL TimeZone = 'Asia/Tokyo'`) },
        { send: Q(same) },
        { send: Q(ts) },
        { send: Q('ROLLBACK') },
        { send: [Q('SELECT now() IS NOT NULL'), Q(same), Q(ts)], readies: 3 },
        { send: Q(same) },
        { send: Q(`SET search_path = ${S2}, public`) },
        { send: [Q('SELECT now() IS NOT NULL'), Q(same)], readies: 2 },
        { send: [P('SELECT now() IS NOT NULL'), B(), E(), S(), P(same), B(), E(), S()], readies: 2 },
      ],
    );
    expect(viaProxy).toEqual(db);
  });
});
