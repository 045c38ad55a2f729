// Wrong rows through session state the key does not follow: settings changed
// by a function or by UPDATE pg_settings, a temp table still there after
// RESET ALL, and catalog facts shared between users whose "$user" schema
// resolves a name differently.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { Clients, cached, expectSameAsDatabase, rows } from '../../helpers/stale-checks.js';

const S1 = uniqueName('wrs_s1');
const S2 = uniqueName('wrs_s2');
const SAME = uniqueName('wrs_same'); // one name, a table in S1 and in S2
const FN = uniqueName('wrs_fn'); // schema for the functions
const TT = uniqueName('wrs_tt'); // a real table a temp table shadows
const G = uniqueName('wrs_g'); // a table a low role may not read
const LOW = uniqueName('wrs_low'); // that low role
const HI = uniqueName('wrs_hi'); // a login role (not a superuser) that may read G and become LOW
const RA = uniqueName('wrs_ra'); // a login role with its own "$user" schema
const UT = uniqueName('wrs_ut'); // public table; a view of the same name in schema RA
const UB = uniqueName('wrs_ub'); // the view's base table, in schema RA
const XT = uniqueName('wrs_xt'); // any other table RA may read

let proxy: TestProxy;
const clients = new Clients();

beforeAll(async () => {
  for (const s of [S1, S2]) {
    await directQuery(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.${SAME} (id int PRIMARY KEY, v text); INSERT INTO ${s}.${SAME} VALUES (1, '${s}')`);
  }
  await directQuery(`CREATE SCHEMA ${FN}`);
  await directQuery(`CREATE FUNCTION ${FN}.go_s2() RETURNS text VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('search_path', '${S2}', false); RETURN 'ok'; END $$`);
  await directQuery(`CREATE ROLE ${LOW}`);
  await directQuery(`GRANT USAGE ON SCHEMA ${FN} TO ${LOW}`);
  await directQuery(`CREATE FUNCTION ${FN}.become_low() RETURNS text VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('role', '${LOW}', false); RETURN current_user; END $$`);
  await directQuery(`CREATE TABLE ${G} (id int PRIMARY KEY, secret text); INSERT INTO ${G} VALUES (1, 'top secret')`);
  await directQuery(`CREATE ROLE ${HI} LOGIN; GRANT ${LOW} TO ${HI}; GRANT SELECT ON ${G} TO ${HI}; GRANT USAGE ON SCHEMA ${FN} TO ${HI}`);
  await directQuery(`CREATE TABLE ${TT} (id int PRIMARY KEY, v text); INSERT INTO ${TT} VALUES (1, 'real')`);
  // "$user" resolution: RA sees ${RA}.${UT} (a view), postgres sees public.${UT}.
  await directQuery(`CREATE ROLE ${RA} LOGIN`);
  await directQuery(`CREATE SCHEMA ${RA} AUTHORIZATION ${RA}`);
  await directQuery(`CREATE TABLE ${UT} (id int PRIMARY KEY, v int); INSERT INTO ${UT} VALUES (1, 1)`);
  await directQuery(`CREATE TABLE ${XT} (id int); INSERT INTO ${XT} VALUES (1); GRANT SELECT ON ${XT} TO ${RA}`);
  await directQuery(`CREATE TABLE ${RA}.${UB} (id int PRIMARY KEY, v int); INSERT INTO ${RA}.${UB} VALUES (1, 500), (2, 600)`);
  await directQuery(`CREATE VIEW ${RA}.${UT} AS SELECT id, v FROM ${RA}.${UB}`);
  await directQuery(`ALTER TABLE ${RA}.${UB} OWNER TO ${RA}; ALTER VIEW ${RA}.${UT} OWNER TO ${RA}`);
  proxy = await startProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directQuery(`DROP SCHEMA IF EXISTS ${S1}, ${S2}, ${FN}, ${RA} CASCADE; DROP TABLE IF EXISTS ${G}, ${TT}, ${UT}, ${XT} CASCADE`);
  for (const role of [HI, LOW, RA]) await directQuery(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).catch(() => {});
  await endDirect();
});

describe('settings changed where the proxy does not look', () => {
  const sql = `SELECT v FROM ${SAME} WHERE id = 1`;
  beforeEach(async () => {
    await proxy.invalidate({ all: true }); // each test starts from an empty cache
  });

  it('search_path changed by set_config() inside a volatile function: no session gets rows of the wrong schema', async () => {
    const a = await clients.open(proxy.url(), { options: `-c search_path=${S1}` });
    const b = await clients.open(proxy.url(), { options: `-c search_path=${S1}` });
    expect((await cached(proxy, b, sql)).rows).toEqual([{ v: S1 }]);
    await a.query(`SELECT ${FN}.go_s2()`); // a's search_path is now S2
    expect((await rows(a, `SELECT current_setting('search_path') AS p`)).rows).toEqual([{ p: S2 }]);
    expect((await rows(a, sql)).rows, 'a reads S2 now, like the database').toEqual([{ v: S2 }]);
    expect((await rows(a, sql)).rows, 'a again').toEqual([{ v: S2 }]);
    expect((await rows(b, sql)).rows, 'b, still on S1, must never get S2 rows').toEqual([{ v: S1 }]);
  });

  it('search_path changed by UPDATE pg_settings (documented equivalent of SET): no session gets rows of the wrong schema', async () => {
    const a = await clients.open(proxy.url(), { options: `-c search_path=${S1}` });
    const b = await clients.open(proxy.url(), { options: `-c search_path=${S1}` });
    expect((await cached(proxy, a, sql)).rows).toEqual([{ v: S1 }]);
    await a.query(`UPDATE pg_settings SET setting = '${S2}' WHERE name = 'search_path'`);
    expect((await rows(a, sql)).rows, 'a reads S2 now, like the database').toEqual([{ v: S2 }]);
    expect((await rows(a, sql)).rows, 'a again').toEqual([{ v: S2 }]);
    expect((await rows(b, sql)).rows, 'b, still on S1, must never get S2 rows').toEqual([{ v: S1 }]);
  });

  it('role changed by set_config() inside a volatile function (neither role a superuser): the low role never gets a privileged cached row', async () => {
    const q = `SELECT secret FROM ${G} WHERE id = 1`;
    const a = await clients.open(proxy.url('test', HI));
    const b = await clients.open(proxy.url('test', HI));
    expect((await rows(a, `SELECT ${FN}.become_low() AS r`)).rows).toEqual([{ r: LOW }]);
    expect((await cached(proxy, b, q)).rows, `${HI} caches the secret`).toEqual([{ secret: 'top secret' }]);
    const outcome = await a.query(q).then(
      (r) => `rows ${JSON.stringify(r.rows)}`,
      (err: { code?: string }) => `error ${err.code}`,
    );
    expect(outcome, `a is now ${LOW}: the database says permission denied`).toBe('error 42501');
  });
});

describe('temporary tables after RESET ALL (what a pooler sends between clients)', () => {
  const sql = `SELECT v FROM ${TT} WHERE id = 1`;

  /** A session with a temp table ${TT}, then RESET ALL (the temp table stays),
   * then any read so its settings are known again. Then any DDL (here a
   * COMMENT) makes the proxy forget its catalog facts, and `other` teaches it
   * that ${TT} is a plain table under the shared search_path. */
  async function shadowAfterResetAll(value: string): Promise<{ shadow: pg.Client; other: pg.Client }> {
    const shadow = await clients.open(proxy.url());
    const other = await clients.open(proxy.url());
    await shadow.query(`CREATE TEMP TABLE ${TT} (id int, v text)`);
    await shadow.query(`INSERT INTO ${TT} VALUES (1, '${value}')`);
    await shadow.query('RESET ALL');
    await rows(shadow, `SELECT id FROM ${XT}`);
    await other.query(`COMMENT ON TABLE ${XT} IS 'wrongrows'`);
    expect((await cached(proxy, other, sql)).rows).toEqual([{ v: 'real' }]);
    return { shadow, other };
  }

  it('a session whose temp table shadows a real table is never served the real table\'s cached rows', async () => {
    const { shadow } = await shadowAfterResetAll('temp');
    expect((await rows(shadow, sql)).rows, 'the database answers from the temp table').toEqual([{ v: 'temp' }]);
  });

  it('the rows of a temp table are never served to another session', async () => {
    const { shadow, other } = await shadowAfterResetAll('temp-2');
    await proxy.invalidate({ all: true });
    for (let i = 0; i < 3; i += 1) expect((await rows(shadow, sql)).rows).toEqual([{ v: 'temp-2' }]);
    expect((await rows(other, sql)).rows, 'another session reads the real table').toEqual([{ v: 'real' }]);
  });
});

describe('catalog facts and "$user" in search_path', () => {
  it(`a name that is a plain table for one user and a view (in "$user") for another: the view is never served stale`, async () => {
    const sql = `SELECT id, v FROM ${UT} ORDER BY id`;
    const pgc = await clients.open(proxy.url());
    const ra = await clients.open(proxy.url('test', RA));
    const raDirect = await clients.direct({}, 'test', RA);
    // RA's settings are looked up first (any cacheable read), then postgres
    // teaches the proxy that ${UT} is a plain table under '"$user", public'.
    await rows(ra, `SELECT id FROM ${XT}`);
    await rows(ra, `SELECT id FROM ${XT}`);
    await cached(proxy, pgc, sql);
    expect((await rows(ra, sql)).rows).toEqual([{ id: '1', v: '500' }, { id: '2', v: '600' }]);
    await rows(ra, sql);
    await ra.query(`UPDATE ${UB} SET v = v + 1`); // RA's base table, through the proxy
    await expectSameAsDatabase(ra, raDirect, sql, `RA's view ${RA}.${UT} after a write to its base table`);
  });
});
