// Wrong rows through functions the classifier does not see as calls or
// misjudges: builtin names resolved to user functions, user operators and
// aggregates, a quoted function name holding a dot, a table row type used as
// a type, and date/time input that reads the clock without a 'now' literal.
//
// Each stale test: the read is cached (a counted hit), a write goes THROUGH
// the proxy to a table the read depends on, and the proxy must then answer
// what the database answers.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { Clients, cached, expectSameAsDatabase, rows, sleep } from '../../helpers/stale-checks.js';

const FS = uniqueName('wrf_s'); // schema for the user functions
const T = uniqueName('wrf_t'); // the table the reads name
const U = uniqueName('wrf_u'); // a table only the functions read
const RT = uniqueName('wrf_rt'); // a table used only as a row type

let proxy: TestProxy;
const clients = new Clients();
let c: pg.Client; // through the proxy
let d: pg.Client; // the database

beforeAll(async () => {
  await directQuery(`CREATE SCHEMA ${FS}`);
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL); INSERT INTO ${T} VALUES (1, 10), (2, 20), (3, 30)`);
  await directQuery(`CREATE TABLE ${U} (k int NOT NULL); INSERT INTO ${U} VALUES (1)`);
  await directQuery(`CREATE TABLE ${RT} (id int, v int)`);
  // A function named like the builtin abs(), taking text: under search_path
  // ${FS}, abs(v::text) resolves to it (no builtin abs accepts text).
  await directQuery(`CREATE FUNCTION ${FS}.abs(text) RETURNS int STABLE LANGUAGE sql AS 'SELECT max(k) FROM ${U}'`);
  // An operator whose function reads ${U}.
  await directQuery(`CREATE FUNCTION ${FS}.plus_u(int, int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1 + $2 + (SELECT max(k) FROM ${U})'`);
  await directQuery(`CREATE OPERATOR ${FS}.#@@# (LEFTARG = int, RIGHTARG = int, FUNCTION = ${FS}.plus_u)`);
  // An aggregate whose transition function reads ${U}: pg_proc marks every
  // CREATE AGGREGATE 'i' whatever its support functions are.
  await directQuery(`CREATE FUNCTION ${FS}.sum_u_sf(int, int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT coalesce($1, 0) + $2 + (SELECT max(k) FROM ${U})'`);
  await directQuery(`CREATE AGGREGATE ${FS}.sum_u(int) (sfunc = ${FS}.sum_u_sf, stype = int)`);
  // A volatile function whose quoted name holds a dot, and an immutable one
  // named like the part after the dot.
  await directQuery(`CREATE FUNCTION ${FS}."x.wrdot"() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT max(k) FROM ${U}'`);
  await directQuery(`CREATE FUNCTION ${FS}.wrdot() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1'`);
  proxy = await startProxy();
  c = await clients.open(proxy.url(), { options: `-c search_path=${FS},public` });
  d = await clients.direct({ options: `-c search_path=${FS},public` });
});

beforeEach(async () => {
  // Through the proxy, so no entry survives from an earlier test.
  await c.query(`UPDATE ${U} SET k = 1`);
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directQuery(`DROP SCHEMA IF EXISTS ${FS} CASCADE; DROP TABLE IF EXISTS ${T}, ${U}, ${RT} CASCADE`);
  await endDirect();
});

/** Cache `sql`, write ${U} through the proxy, and compare with the database. */
async function staleAfterWriteToU(sql: string): Promise<void> {
  const before = await cached(proxy, c, sql);
  expect(before).toEqual(await rows(d, sql));
  await c.query(`UPDATE ${U} SET k = k + 100`);
  await expectSameAsDatabase(c, d, sql, `fresh after UPDATE ${U} through the proxy`);
}

describe('functions and operators that read another table', () => {
  it('an unqualified builtin name (abs) that resolves to a user function reading another table is never served stale', () =>
    staleAfterWriteToU(`SELECT id, abs(v::text) AS a FROM ${T} ORDER BY id`));

  it('a user-defined operator whose function reads another table is never served stale', () =>
    staleAfterWriteToU(`SELECT id, v OPERATOR(${FS}.#@@#) 0 AS w FROM ${T} ORDER BY id`));

  it('a user-defined aggregate (pg_proc says immutable) whose transition function reads another table is never served stale', () =>
    staleAfterWriteToU(`SELECT ${FS}.sum_u(v) AS s FROM ${T}`));

  it('a volatile function whose quoted name contains a dot is not judged by another function named like its tail', () =>
    staleAfterWriteToU(`SELECT id, ${FS}."x.wrdot"() AS w FROM ${T} ORDER BY id`));
});

describe('a table row type used as a type', () => {
  it('jsonb_populate_record(NULL::t, …) shows a column added to t through the proxy', async () => {
    const sql = `SELECT r.* FROM ${U}, jsonb_populate_record(NULL::${RT}, '{"id": 1, "v": 2}') r`;
    expect(await cached(proxy, c, sql)).toEqual(await rows(d, sql));
    await c.query(`ALTER TABLE ${RT} ADD COLUMN extra int DEFAULT 7`);
    await expectSameAsDatabase(c, d, sql, `the row type of ${RT} changed through the proxy`);
  });
});

describe('date/time input that reads the clock without a clock-word literal', () => {
  // The database evaluates 'now' on every call; three calls a few ms apart
  // must give three different timestamps, through the proxy too.
  it.each([
    ['a concatenation', `SELECT ('no' || 'w')::timestamptz AS x, count(*) FROM ${T}`, undefined],
    ['reverse()', `SELECT reverse('won')::timestamptz AS x, count(*) FROM ${T}`, undefined],
    ['a bound parameter now padded past 64 bytes', `SELECT $1::timestamptz AS x, count(*) FROM ${T} WHERE id > $2`, [`now${' '.repeat(70)}`, 0]],
  ])('%s cast to timestamptz is never answered from cache', async (_label, sql, values) => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i += 1) {
      seen.add(String((await rows(c, sql, values)).rows.map((r) => (r as { x: string }).x)));
      await sleep(3);
    }
    expect(seen.size, `four calls of ${sql}, four different times (the database reads the clock each time)`).toBe(4);
  });
});
