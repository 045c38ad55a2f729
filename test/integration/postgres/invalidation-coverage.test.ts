// Wrong-row probes that the proxy passes today, kept because nothing else
// covers them end to end against the real server: a second database with the
// same table name, two-level FK SET NULL, TRUNCATE … CASCADE, rules, writes
// through views, quoted mixed-case names, CTE names shadowing tables, the
// same name in two schemas, renames that swap names, DROP and re-create as a
// view, ALTER TABLE … INHERIT, literal bytes the key must keep (backslashes
// with standard_conforming_strings off, whitespace and comment-like text
// inside literals), and client_encoding.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { psql } from '../../helpers/psql.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { Clients, cached, expectSameAsDatabase, rows } from '../../helpers/stale-checks.js';

const DB2 = 'sqlcached_review2';
const SAME = uniqueName('wrc_same'); // in both databases
const A = uniqueName('wrc_a'); // A <- B (ON DELETE SET NULL) <- C (ON UPDATE SET NULL)
const B = uniqueName('wrc_b');
const C = uniqueName('wrc_c');
const TP = uniqueName('wrc_tp'); // TRUNCATE … CASCADE
const TC = uniqueName('wrc_tc');
const RU = uniqueName('wrc_ru'); // a rule DO ALSO INSERT INTO RL
const RL = uniqueName('wrc_rl');
const VB = uniqueName('wrc_vb'); // base table of two views
const VA = uniqueName('wrc_va'); // auto-updatable view
const VI = uniqueName('wrc_vi'); // view with an INSTEAD OF trigger
const MIX = uniqueName('wrc_mix'); // "Mix…" and mix… both exist
const MIXQ = MIX.replace('wrc_mix', 'Wrc_Mix');
const CT = uniqueName('wrc_ct'); // a table a CTE name shadows
const APP = uniqueName('wrc_app'); // schema: APP.ST and public.ST
const ST = uniqueName('wrc_st');
const SW1 = uniqueName('wrc_sw1'); // swapped by renames
const SW2 = uniqueName('wrc_sw2');
const SWT = uniqueName('wrc_swt');
const DV = uniqueName('wrc_dv'); // dropped, re-created as a view
const IP = uniqueName('wrc_ip'); // becomes a parent through INHERIT
const IC = uniqueName('wrc_ic');
const L = uniqueName('wrc_l'); // literals

let proxy: TestProxy;
const clients = new Clients();
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  await directQuery(`DROP DATABASE IF EXISTS ${DB2}`);
  await directQuery(`CREATE DATABASE ${DB2}`);
  await directQuery(`CREATE TABLE ${SAME} (id int PRIMARY KEY, v text); INSERT INTO ${SAME} VALUES (1, 'db test')`);
  await directQuery(`CREATE TABLE ${A} (id int PRIMARY KEY); INSERT INTO ${A} VALUES (1), (2)`);
  await directQuery(`CREATE TABLE ${B} (id int PRIMARY KEY, a_id int UNIQUE REFERENCES ${A} ON DELETE SET NULL); INSERT INTO ${B} VALUES (10, 1), (20, 2)`);
  await directQuery(`CREATE TABLE ${C} (id int PRIMARY KEY, b_a int REFERENCES ${B} (a_id) ON UPDATE SET NULL); INSERT INTO ${C} VALUES (100, 1), (200, 2)`);
  await directQuery(`CREATE TABLE ${TP} (id int PRIMARY KEY); INSERT INTO ${TP} VALUES (1)`);
  await directQuery(`CREATE TABLE ${TC} (id int, p int REFERENCES ${TP}); INSERT INTO ${TC} VALUES (1, 1)`);
  await directQuery(`CREATE TABLE ${RU} (id int); CREATE TABLE ${RL} (id int)`);
  await directQuery(`CREATE RULE ${RU}_also AS ON INSERT TO ${RU} DO ALSO INSERT INTO ${RL} VALUES (NEW.id)`);
  await directQuery(`CREATE TABLE ${VB} (id int PRIMARY KEY, v int); INSERT INTO ${VB} VALUES (1, 1), (2, 2)`);
  await directQuery(`CREATE VIEW ${VA} AS SELECT id, v FROM ${VB}`);
  await directQuery(`CREATE VIEW ${VI} AS SELECT id, v FROM ${VB} WHERE v < 1000`);
  await directQuery(`CREATE FUNCTION ${VI}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE ${VB} SET v = NEW.v WHERE id = OLD.id; RETURN NEW; END $$`);
  await directQuery(`CREATE TRIGGER ${VI}_trg INSTEAD OF UPDATE ON ${VI} FOR EACH ROW EXECUTE FUNCTION ${VI}_fn()`);
  await directQuery(`CREATE TABLE "${MIXQ}" (v text); INSERT INTO "${MIXQ}" VALUES ('quoted')`);
  await directQuery(`CREATE TABLE ${MIX} (v text); INSERT INTO ${MIX} VALUES ('folded')`);
  await directQuery(`CREATE TABLE ${CT} (id int); INSERT INTO ${CT} VALUES (1), (2), (3)`);
  await directQuery(`CREATE SCHEMA ${APP}; CREATE TABLE ${APP}.${ST} (v text); INSERT INTO ${APP}.${ST} VALUES ('app')`);
  await directQuery(`CREATE TABLE public.${ST} (v text); INSERT INTO public.${ST} VALUES ('public')`);
  await directQuery(`CREATE TABLE ${SW1} (v text); INSERT INTO ${SW1} VALUES ('one'); CREATE TABLE ${SW2} (v text); INSERT INTO ${SW2} VALUES ('two')`);
  await directQuery(`CREATE TABLE ${DV} (v text); INSERT INTO ${DV} VALUES ('table')`);
  await directQuery(`CREATE TABLE ${IP} (id int); INSERT INTO ${IP} VALUES (1); CREATE TABLE ${IC} (id int); INSERT INTO ${IC} VALUES (2), (3)`);
  await directQuery(`CREATE TABLE ${L} (id int, v text); INSERT INTO ${L} VALUES (1, 'é')`);
  proxy = await startProxy();
  c = await clients.open(proxy.url());
  d = await clients.direct();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directQuery(`DROP DATABASE IF EXISTS ${DB2} WITH (FORCE)`).catch(() => {});
  await directQuery(
    `DROP TABLE IF EXISTS ${SAME}, ${C}, ${B}, ${A}, ${TC}, ${TP}, ${RU}, ${RL}, "${MIXQ}", ${MIX}, ${CT}, public.${ST}, ${SW1}, ${SW2}, ${SWT}, ${IC}, ${IP}, ${L} CASCADE`,
  );
  await directQuery(`DROP VIEW IF EXISTS ${DV}; DROP TABLE IF EXISTS ${DV}; DROP TABLE IF EXISTS ${VB} CASCADE; DROP FUNCTION IF EXISTS ${VI}_fn(); DROP SCHEMA IF EXISTS ${APP} CASCADE`);
  await endDirect();
});

/** Cache every read, run `write` through the proxy, then each read equals the database and changed. */
async function invalidates(reads: string[], write: string, via: pg.Client = c, truth: pg.Client = d): Promise<void> {
  const before = [];
  for (const sql of reads) before.push(await cached(proxy, via, sql));
  await via.query(write);
  for (const [i, sql] of reads.entries()) {
    await expectSameAsDatabase(via, truth, sql, `fresh after: ${write}`);
    expect(await rows(via, sql), `the write changed ${sql}`).not.toEqual(before[i]);
  }
}

describe('databases never share entries', () => {
  it(`the same table name in database test and ${DB2}: each reads its own rows, writes stay in their database`, async () => {
    const d2 = await clients.direct({}, DB2);
    await d2.query(`CREATE TABLE ${SAME} (id int PRIMARY KEY, v text); INSERT INTO ${SAME} VALUES (1, 'db two')`);
    const two = await clients.open(proxy.url(DB2));
    const sql = `SELECT v FROM ${SAME} WHERE id = 1`;
    expect((await cached(proxy, c, sql)).rows).toEqual([{ v: 'db test' }]);
    expect((await cached(proxy, two, sql)).rows).toEqual([{ v: 'db two' }]);
    await two.query(`UPDATE ${SAME} SET v = 'db two, updated'`);
    expect((await rows(two, sql)).rows).toEqual([{ v: 'db two, updated' }]);
    expect((await rows(c, sql)).rows).toEqual([{ v: 'db test' }]);
    await c.query(`UPDATE ${SAME} SET v = 'db test, updated'`);
    expect((await rows(c, sql)).rows).toEqual([{ v: 'db test, updated' }]);
    expect((await rows(two, sql)).rows).toEqual([{ v: 'db two, updated' }]);
  });
});

describe('writes reach what they change', () => {
  it('FK ON DELETE SET NULL then ON UPDATE SET NULL, two levels deep', () =>
    invalidates([`SELECT id, a_id FROM ${B} ORDER BY id`, `SELECT id, b_a FROM ${C} ORDER BY id`], `DELETE FROM ${A} WHERE id = 1`));

  it('TRUNCATE … CASCADE empties the referencing table too', () => invalidates([`SELECT count(*)::int AS n FROM ${TC}`], `TRUNCATE ${TP} CASCADE`));

  it('a rule DO ALSO INSERT: the rule\'s target table is fresh after the INSERT', () =>
    invalidates([`SELECT count(*)::int AS n FROM ${RL}`], `INSERT INTO ${RU} VALUES (7)`));

  it('UPDATE through an auto-updatable view: reads of the base table are fresh', () =>
    invalidates([`SELECT id, v FROM ${VB} ORDER BY id`], `UPDATE ${VA} SET v = v + 10 WHERE id = 1`));

  it('UPDATE through a view with an INSTEAD OF trigger: reads of the base table are fresh', () =>
    invalidates([`SELECT id, v FROM ${VB} ORDER BY id`], `UPDATE ${VI} SET v = v + 100 WHERE id = 2`));

  it('quoted mixed-case and folded names are two tables: a write to one invalidates it, the other stays right', async () => {
    const q = `SELECT v FROM "${MIXQ}"`;
    const f = `SELECT v FROM ${MIX}`;
    expect((await cached(proxy, c, q)).rows).toEqual([{ v: 'quoted' }]);
    expect((await cached(proxy, c, f)).rows).toEqual([{ v: 'folded' }]);
    await invalidates([q], `UPDATE "${MIXQ}" SET v = 'quoted 2'`);
    await expectSameAsDatabase(c, d, f, 'the folded table is untouched');
    await invalidates([f], `UPDATE ${MIX.toUpperCase()} SET v = 'folded 2'`);
  });

  it('a CTE named like a table does not hide a read of the table in an earlier CTE', () =>
    invalidates(
      [`WITH x AS (SELECT count(*)::int AS n FROM ${CT}), ${CT} AS (SELECT 0 AS n) SELECT x.n, ${CT}.n AS shadow FROM x, ${CT}`],
      `INSERT INTO ${CT} VALUES (4)`,
    ));

  it('app.t written by one session, t read under search_path app by another: fresh', async () => {
    const reader = await clients.open(proxy.url(), { options: `-c search_path=${APP}` });
    const readerDirect = await clients.direct({ options: `-c search_path=${APP}` });
    const sql = `SELECT v FROM ${ST}`;
    expect((await cached(proxy, reader, sql)).rows).toEqual([{ v: 'app' }]);
    await c.query(`UPDATE ${APP}.${ST} SET v = 'app 2'`);
    await expectSameAsDatabase(reader, readerDirect, sql, `${APP}.${ST} written through another session`);
  });

  it('two tables swap names through three renames: each name shows its new table', async () => {
    const r1 = `SELECT v FROM ${SW1}`;
    const r2 = `SELECT v FROM ${SW2}`;
    await cached(proxy, c, r1);
    await cached(proxy, c, r2);
    await c.query(`ALTER TABLE ${SW1} RENAME TO ${SWT}`);
    await c.query(`ALTER TABLE ${SW2} RENAME TO ${SW1}`);
    await c.query(`ALTER TABLE ${SWT} RENAME TO ${SW2}`);
    expect((await rows(c, r1)).rows).toEqual([{ v: 'two' }]);
    expect((await rows(c, r2)).rows).toEqual([{ v: 'one' }]);
  });

  it('DROP TABLE then CREATE VIEW with the same name and other columns: the view\'s rows at once', async () => {
    const sql = `SELECT * FROM ${DV}`;
    expect((await cached(proxy, c, sql)).rows).toEqual([{ v: 'table' }]);
    await c.query(`DROP TABLE ${DV}`);
    await c.query(`CREATE VIEW ${DV} AS SELECT 'view'::text AS w, 2 AS n`);
    await expectSameAsDatabase(c, d, sql, 'the name is a view now');
  });

  it('ALTER TABLE c INHERIT p: a cached read of p shows c\'s rows at once', () =>
    invalidates([`SELECT count(*)::int AS n FROM ${IP}`], `ALTER TABLE ${IC} INHERIT ${IP}`));
});

describe('the key keeps every byte that changes the answer', () => {
  it.each([
    ['whitespace inside a literal', `SELECT v || 'a  b' AS w FROM ${L}`, `SELECT v || 'a b' AS w FROM ${L}`],
    ['comment-like text inside a literal', `SELECT v || 'a /* x */ b' AS w FROM ${L}`, `SELECT v || 'a  b' AS w FROM ${L}`],
    ['-- inside a literal, then a newline', `SELECT v || 'a -- x\n  y' AS w FROM ${L}`, `SELECT v || 'a -- x\n y' AS w FROM ${L}`],
    ['whitespace inside a dollar-quoted literal', `SELECT v || $q$a  /* x */ b$q$ AS w FROM ${L}`, `SELECT v || $q$a /* x */ b$q$ AS w FROM ${L}`],
    ['NULL and \'NULL\'', `SELECT v || NULL AS w FROM ${L}`, `SELECT v || 'NULL' AS w FROM ${L}`],
  ])('%s: two texts, two answers', async (_label, one, two) => {
    const first = await cached(proxy, c, one);
    expect(first).toEqual(await rows(d, one));
    await expectSameAsDatabase(c, d, two, 'the second text');
  });

  it('standard_conforming_strings = off: backslash-quote and the spaces after it stay inside the literal', async () => {
    const p = await clients.open(proxy.url(), { options: '-c standard_conforming_strings=off -c escape_string_warning=off' });
    const pd = await clients.direct({ options: '-c standard_conforming_strings=off -c escape_string_warning=off' });
    const one = `SELECT v || '\\'  x' AS w FROM ${L}`;
    const two = `SELECT v || '\\' x' AS w FROM ${L}`;
    expect(await cached(proxy, p, one)).toEqual(await rows(pd, one));
    await expectSameAsDatabase(p, pd, two, 'one space less inside the literal');
  });

  it('client_encoding LATIN1: the same bytes mean another literal, never the UTF8 session\'s answer', async () => {
    const sql = `SELECT count(*)::int AS n FROM ${L} WHERE v = 'é'`;
    expect((await cached(proxy, c, sql)).rows).toEqual([{ n: '1' }]);
    const viaProxy = await psql(proxy.port, [sql], { env: { PGCLIENTENCODING: 'LATIN1' } });
    const viaDb = await psql(Number(process.env['SQLCACHED_TEST_PG_PORT'] ?? 5432), [sql], { env: { PGCLIENTENCODING: 'LATIN1' } });
    expect(viaDb.stdout.trim(), 'the database reads the UTF-8 bytes as two LATIN1 characters').toBe('0');
    expect(viaProxy.stdout.trim()).toBe(viaDb.stdout.trim());
  });
});
