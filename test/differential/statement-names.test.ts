// Review: the prepared statements the client believes in versus the ones the
// server really has. A batch answered from cache "prepares" its statement
// for the client only; a forwarded Parse may be refused (42P05, syntax) or
// skipped (an earlier error in the batch). Every script is sent to the
// proxy and to the database on fresh sessions and the transcripts compared.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, directQuery, directUrl, dropTables, endDirect, uniqueName } from '../helpers/db.js';
import { rejection } from '../helpers/compare.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { B, CS, DP, DS, E, P, Q, S, Wire, differential, warmWire } from '../helpers/transcript.js';

const T = uniqueName('rv_stmt');
const S1 = uniqueName('rv_stmt_s1');
const S2 = uniqueName('rv_stmt_s2');
let proxy: TestProxy;

const byId = (id: number) => `SELECT v FROM ${T} WHERE id = ${id}`;
/** A read on T first, so the session's settings and T's catalog facts are known. */
const WARM = [`SELECT v FROM ${T} WHERE id = 10`];
const stats = () => proxy.stats();
/** The entry for `sql` run unnamed with no parameters is in the cache. */
const cached = (sql: string) => warmWire(proxy.port, stats, [P(sql), B(), E(), S()]);

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g, g * 100 FROM generate_series(1, 10) g`);
  for (const s of [S1, S2]) {
    await directQuery(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.same (id int PRIMARY KEY, v text); INSERT INTO ${s}.same VALUES (1, '${s}')`);
  }
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  await directQuery(`DROP SCHEMA IF EXISTS ${S1}, ${S2} CASCADE`);
  await endDirect();
});

describe('a statement the client prepared in a batch answered from cache', () => {
  it('Describe S of it gets the statement description, as from the database (not 26000)', async () => {
    await cached(byId(1));
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P(byId(1), 'rv_s1'), B('rv_s1'), E(), S()] }, // a hit through the proxy
        { send: [DS('rv_s1'), S()] },
      ],
      WARM,
    );
    expect(db[1]!.map((m) => m.name)).toEqual(['parameterDescription', 'rowDescription', 'readyForQuery']);
    expect(viaProxy).toEqual(db);
  });

  it('Describe S of the unnamed statement describes the statement just parsed, not an older one', async () => {
    const older = `SELECT v FROM ${T} WHERE id = 2`;
    const newer = `SELECT n, v FROM ${T} WHERE id = 2`;
    await cached(newer);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P(older), B(), E(), S()] }, // the server's unnamed statement is `older`
        { send: [P(newer), B(), E(), S()] }, // answered from cache: the server still has `older`
        { send: [DS(''), S()] },
        { send: [B(), DP(), E(), S()] },
      ],
      WARM,
    );
    expect(viaProxy[2], 'two columns (n, v), as the database describes the unnamed statement').toEqual(db[2]);
    expect(viaProxy).toEqual(db);
  });

  it('SQL-level EXECUTE and DEALLOCATE of it work as against the database (pg named statements)', async () => {
    const text = `SELECT v FROM ${T} WHERE id = $1`;
    // Fill the entry on one connection, then prepare the same name on a fresh one: a hit.
    const filler = await connectClient(proxy.url());
    const client = await connectClient(proxy.url());
    const dbClient = await connectClient(directUrl());
    try {
      for (let i = 0; i < 3; i += 1) await filler.query({ name: 'rv_named', text, values: [3] });
      await filler.query(byId(10)); // settings and catalog known on `client` too (shared memo)
      await client.query(byId(10));
      const before = (await proxy.stats()).hits;
      expect((await client.query({ name: 'rv_named', text, values: [3] })).rows).toEqual([{ v: 'v3' }]);
      expect((await proxy.stats()).hits, 'the named statement was answered from cache').toBeGreaterThan(before);
      await dbClient.query({ name: 'rv_named', text, values: [3] });

      const viaDb = await dbClient.query('EXECUTE rv_named(4)');
      expect(viaDb.rows).toEqual([{ v: 'v4' }]);
      const failed = (err: { code?: string; message: string }) => `${err.code}: ${err.message}`;
      const viaProxy = await client.query('EXECUTE rv_named(4)').then((r) => r.rows, failed);
      expect(viaProxy, 'EXECUTE of the protocol-level statement').toEqual(viaDb.rows);
      expect((await dbClient.query('DEALLOCATE rv_named')).command).toBe('DEALLOCATE');
      const dealloc = await client.query('DEALLOCATE rv_named').then((r) => r.command, failed);
      expect(dealloc, 'DEALLOCATE of the protocol-level statement').toBe('DEALLOCATE');
    } finally {
      await filler.end();
      await client.end();
      await dbClient.end();
    }
  });

  it('Close of it, then Parse of the same name with other text, then DISCARD ALL and re-use: as from the database', async () => {
    await cached(byId(5));
    await cached(byId(6));
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P(byId(5), 'rv_c'), B('rv_c'), E(), S()] },
        { send: [CS('rv_c'), S()] },
        { send: [P(byId(6), 'rv_c'), B('rv_c'), E(), S()] },
        { send: [B('rv_c'), E(), S()] },
        { send: [Q('DISCARD ALL')] },
        { send: [B('rv_c'), E(), S()] }, // 26000 on both
        { send: [P(byId(5), 'rv_c'), B('rv_c'), E(), S()] },
        { send: [DS('rv_c'), S()] },
      ],
      WARM,
    );
    expect(viaProxy).toEqual(db);
  });

  it('after SET search_path, Bind of it runs it under the new path, as the database re-parses it', async () => {
    const sql = 'SELECT v FROM same WHERE id = 1';
    for (const s of [S1, S2]) {
      const w = await Wire.open(proxy.port);
      await w.query(`SET search_path = ${s}`);
      for (let i = 0; i < 3; i += 1) await w.send([P(sql), B(), E(), S()]);
      w.close();
    }
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q(`SET search_path = ${S1}`) },
        { send: Q(sql) },
        { send: [P(sql, 'rv_sp'), B('rv_sp'), E(), S()] },
        { send: Q(`SET search_path = ${S2}`) },
        { send: [B('rv_sp'), E(), S()] },
        { send: [B('rv_sp'), DP(), E(), S()] },
      ],
    );
    expect(viaProxy[4]).toEqual(db[4]);
    expect(viaProxy).toEqual(db);
  });
});

describe('a Parse the server refused or skipped never renames a statement', () => {
  it('Parse of an existing name gets 42P05, and the old statement keeps answering with its own rows', async () => {
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P(byId(4), 'rv_dup'), B('rv_dup'), E(), S()] },
        { send: [P(byId(5), 'rv_dup'), S()] }, // 42P05: rv_dup is still "id = 4"
        { send: [B('rv_dup'), E(), S()] },
      ],
      WARM,
    );
    expect(db[1]!.map((m) => m.code ?? m.name)).toEqual(['42P05', 'readyForQuery']);
    expect.soft(viaProxy).toEqual(db);
    // The proxy must not have stored "id = 4"'s rows under "id = 5".
    const fresh = await Wire.open(proxy.port);
    try {
      await fresh.query(byId(10));
      const reply = await fresh.send([P(byId(5)), B(), E(), S()]);
      expect(reply.filter((m) => m.name === 'dataRow'), 'SELECT … id = 5 returns v5').toEqual([{ name: 'dataRow', fields: ['v5'] }]);
    } finally {
      fresh.close();
    }
  });

  it('a protocol Parse of a name taken by SQL PREPARE gets 42P05, and Bind runs the SQL-level statement', async () => {
    await cached(byId(7));
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q(`PREPARE rv_pp AS ${byId(8)}`) },
        { send: [P(byId(7), 'rv_pp'), B('rv_pp'), E(), S()] },
        { send: [B('rv_pp'), E(), S()] }, // rv_pp is "id = 8": v8
      ],
      WARM,
    );
    expect(db[1]!.map((m) => m.code ?? m.name)).toEqual(['42P05', 'readyForQuery']);
    expect(viaProxy[1], 'the Parse is refused, not answered from cache').toEqual(db[1]);
    expect(viaProxy[2], 'Bind rv_pp returns the rows of "id = 8"').toEqual(db[2]);
  });

  it('Bind to a statement whose Parse was skipped after an error gets 26000, never cached rows', async () => {
    await cached(byId(6));
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P('SELECT 1/0'), B(), E(), P(byId(6), 'rv_skipped'), S()] }, // the Parse is skipped
        { send: [B('rv_skipped'), E(), S()] },
      ],
      WARM,
    );
    expect(db[1]!.map((m) => m.code ?? m.name)).toEqual(['26000', 'readyForQuery']);
    expect(viaProxy).toEqual(db);
  });

  it('Bind to a name never prepared gets 26000 (held batch forwarded as is)', async () => {
    const { proxy: viaProxy, db } = await differential(proxy.port, [{ send: [B('rv_nowhere'), E(), S()] }, { send: [Q(byId(1))] }], WARM);
    expect(viaProxy).toEqual(db);
  });

  it('pg: a named query whose name SQL PREPARE already took gets 42P05, not the cached rows of its text', async () => {
    // The same scenario with a real client: an application that PREPAREs in SQL
    // and also uses pg's named queries with a colliding name.
    const filler = await connectClient(proxy.url());
    for (let i = 0; i < 3; i += 1) await filler.query({ name: 'rv_pg_fill', text: byId(8) }); // "id = 8" is cached
    await filler.end();
    const c = await connectClient(proxy.url());
    try {
      await c.query(`PREPARE rv_pg AS ${byId(9)}`);
      const err = await rejection(c.query({ name: 'rv_pg', text: byId(8) }));
      expect(err.code).toBe('42P05');
      expect((await c.query('EXECUTE rv_pg')).rows).toEqual([{ v: 'v9' }]);
    } finally {
      await c.end();
    }
  });
});
