// "No leaks": a cached result reaches only a session that would have got
// the same bytes from the database (volatile functions, roles and GRANTs,
// row-level security, search_path, output settings, temp tables), and
// writes reach the views, cascades, triggers and partitions they change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, directUrl, dropTables, endDirect, rawTypes, uniqueName } from '../../helpers/db.js';
import { expectWriteInvalidates, rejection, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';

const I = uniqueName('iso_i');
const SEQ = uniqueName('iso_seq');
const G = uniqueName('iso_grants');
const R = uniqueName('iso_rls');
const RA = uniqueName('iso_ra');
const RB = uniqueName('iso_rb');
const S1 = uniqueName('iso_s1');
const S2 = uniqueName('iso_s2');
const SAME = uniqueName('iso_same'); // one table name in both schemas
const TT = uniqueName('iso_tt');
const BASE = uniqueName('iso_base');
const VIEW = uniqueName('iso_view');
const P = uniqueName('iso_parent');
const CH = uniqueName('iso_child');
const AU = uniqueName('iso_audit');
const PM = uniqueName('iso_pm');
let proxy: TestProxy;
const clients: pg.Client[] = [];

async function open(url: string, extra: Omit<pg.ClientConfig, 'connectionString'> = {}): Promise<pg.Client> {
  const c = await connectClient(url, extra);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  await directQuery(`CREATE SEQUENCE ${SEQ}`);
  await directQuery(`CREATE TABLE ${I} (id int PRIMARY KEY, ts timestamptz, d date, iv interval, by bytea, f float8)`);
  await directQuery(`INSERT INTO ${I} VALUES (1, '2024-03-10 12:34:56.789+00', '2024-03-10', '1 day 02:03:04', '\\x00ff41', 1 / 3.0)`);
  await directQuery(`CREATE ROLE ${RA} LOGIN; CREATE ROLE ${RB} LOGIN`);
  await directQuery(`CREATE TABLE ${G} (id int PRIMARY KEY, secret text); INSERT INTO ${G} VALUES (1, 'top'), (2, 'secret')`);
  await directQuery(`GRANT SELECT (id, secret) ON ${G} TO ${RA}; GRANT SELECT (id) ON ${G} TO ${RB}`);
  await directQuery(`CREATE TABLE ${R} (id int PRIMARY KEY, owner name NOT NULL, v text)`);
  await directQuery(`INSERT INTO ${R} VALUES (1, '${RA}', 'a-1'), (2, '${RA}', 'a-2'), (3, '${RB}', 'b-3')`);
  await directQuery(`ALTER TABLE ${R} ENABLE ROW LEVEL SECURITY; CREATE POLICY own ON ${R} USING (owner = current_user)`);
  await directQuery(`GRANT SELECT ON ${R} TO ${RA}, ${RB}`);
  for (const s of [S1, S2]) {
    await directQuery(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.${SAME} (id int PRIMARY KEY, v text); INSERT INTO ${s}.${SAME} VALUES (1, '${s}')`);
  }
  await directQuery(`CREATE TABLE ${TT} (id int PRIMARY KEY, v text); INSERT INTO ${TT} VALUES (1, 'real')`);
  await directQuery(`CREATE TABLE ${BASE} (id int PRIMARY KEY, v int); INSERT INTO ${BASE} SELECT g, g FROM generate_series(1, 5) g`);
  await directQuery(`CREATE VIEW ${VIEW} AS SELECT id, v FROM ${BASE} WHERE v > 1`);
  await directQuery(`CREATE TABLE ${AU} (n serial, what text)`);
  await directQuery(`CREATE FUNCTION ${AU}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${AU} (what) VALUES (TG_OP); RETURN NULL; END $$`);
  await directQuery(`CREATE TRIGGER ${AU}_trg AFTER INSERT OR UPDATE ON ${BASE} FOR EACH ROW EXECUTE FUNCTION ${AU}_fn()`);
  await directQuery(`CREATE TABLE ${P} (id int PRIMARY KEY); INSERT INTO ${P} SELECT generate_series(1, 3)`);
  await directQuery(`CREATE TABLE ${CH} (id int PRIMARY KEY, pid int REFERENCES ${P} ON DELETE CASCADE ON UPDATE CASCADE)`);
  await directQuery(`INSERT INTO ${CH} VALUES (1, 1), (2, 1), (3, 2), (4, 3)`);
  await directQuery(`CREATE TABLE ${PM} (id int, v int) PARTITION BY RANGE (id)`);
  await directQuery(`CREATE TABLE ${PM}_1 PARTITION OF ${PM} FOR VALUES FROM (1) TO (100); CREATE TABLE ${PM}_2 PARTITION OF ${PM} FOR VALUES FROM (100) TO (200)`);
  await directQuery(`INSERT INTO ${PM} SELECT g, g FROM generate_series(1, 199) g`);
  proxy = await startProxy();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await proxy?.stop();
  await dropTables(I, G, R, TT, BASE, AU, CH, P, PM);
  await directQuery(`DROP FUNCTION IF EXISTS ${AU}_fn(); DROP SEQUENCE IF EXISTS ${SEQ}; DROP SCHEMA IF EXISTS ${S1}, ${S2} CASCADE`);
  for (const role of [RA, RB]) await directQuery(`DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
  await endDirect();
});

describe('volatile and session-specific functions', () => {
  it.each([
    'now()',
    'random()',
    'clock_timestamp()',
    'statement_timestamp()',
    `nextval('${SEQ}')`,
    'gen_random_uuid()',
    `'now'::timestamptz`,
    'txid_current()',
  ])('%s is never served twice', async (expr) => {
    const c = await open(proxy.url());
    const seen = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      const simple = await c.query({ text: `SELECT ${expr} AS x, count(*) FROM ${I}`, types: rawTypes });
      const extended = await c.query({ text: `SELECT ${expr} AS x, count(*) FROM ${I} WHERE id > $1`, values: [0], types: rawTypes });
      seen.add(String(simple.rows[0].x)).add(String(extended.rows[0].x));
    }
    expect(seen.size, `six calls, six values of ${expr}`).toBe(6);
  });

  it.each(['now', 'today', 'tomorrow 13:00'])("a bound parameter '%s' cast to a time is never answered from cache", async (value) => {
    const c = await open(proxy.url());
    const text = `SELECT $1::timestamptz AS x, count(*) AS n FROM ${I} WHERE id > $2`;
    const seen = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      const r = await c.query({ text, values: [value, 0], types: rawTypes });
      seen.add(String(r.rows[0].x));
    }
    const shape = (await proxy.stats()).queries.find((q) => q.fingerprint === text);
    expect(shape?.calls, 'the proxy saw the statement').toBeGreaterThan(0);
    expect(shape?.hits ?? 0, 'never a hit').toBe(0);
    if (value === 'now') expect(seen.size, 'three calls, three times').toBe(3);
  });

  it.each([
    ['pg_backend_pid()', {}, {}],
    [`current_setting('application_name')`, { application_name: 'iso-one' }, { application_name: 'iso-two' }],
  ])('%s: two connections each get their own value', async (expr, extraA, extraB) => {
    const sql = `SELECT ${expr} AS x, count(*) FROM ${I}`;
    const a = await open(proxy.url(), extraA);
    const b = await open(proxy.url(), extraB);
    const own = async (c: pg.Client) => (await c.query(sql)).rows[0].x as unknown;
    const fromA = await own(a);
    expect(await own(a)).toEqual(fromA);
    expect(await own(b)).not.toEqual(fromA);
  });
});

describe('roles', () => {
  const sql = `SELECT id, secret FROM ${G} ORDER BY id`;

  it('a role denied a column gets 42501, even right after a role allowed it filled the cache', async () => {
    const a = await open(proxy.url('test', RA));
    const b = await open(proxy.url('test', RB));
    expect((await a.query(sql)).rows).toEqual([{ id: 1, secret: 'top' }, { id: 2, secret: 'secret' }]);
    expect((await warm(proxy, () => a.query(sql))).rows, 'the allowed role is served from cache').toHaveLength(2);
    const denied = await rejection(b.query(sql));
    expect(denied.code).toBe('42501');
    expect((await b.query(`SELECT id FROM ${G} ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('the denial is not cached for the allowed role either', async () => {
    const b = await open(proxy.url('test', RB));
    const q = `SELECT secret FROM ${G} WHERE id = 2`;
    expect((await rejection(b.query(q))).code).toBe('42501');
    const a = await open(proxy.url('test', RA));
    expect((await a.query(q)).rows).toEqual([{ secret: 'secret' }]);
    expect((await warm(proxy, () => a.query(q))).rows, 'the allowed role caches its own answer').toEqual([{ secret: 'secret' }]);
    expect((await rejection(b.query(q))).code, 'which is never served to the denied role').toBe('42501');
  });

  it('row-level security: the same query shows each role its own rows, and is never cached', async () => {
    // Policies may read other tables and settings the key does not hold.
    const q = `SELECT id, v FROM ${R} ORDER BY id`;
    const a = await open(proxy.url('test', RA));
    const b = await open(proxy.url('test', RB));
    for (let i = 0; i < 3; i += 1) {
      expect((await a.query(q)).rows).toEqual([{ id: 1, v: 'a-1' }, { id: 2, v: 'a-2' }]);
      expect((await b.query(q)).rows).toEqual([{ id: 3, v: 'b-3' }]);
    }
    const shape = (await proxy.stats()).queries.find((x) => x.fingerprint === q);
    expect(shape?.hits ?? 0).toBe(0);
    expect(shape?.bypass_reason).toBe('relation-kind');
  });

  it('SET ROLE in a session: the cached result of the login role is not served to the new role', async () => {
    const c = await open(proxy.url());
    expect((await warm(proxy, () => c.query(sql))).rows).toHaveLength(2);
    await c.query(`SET ROLE ${RB}`);
    expect((await rejection(c.query(sql))).code).toBe('42501');
    await c.query('RESET ROLE');
    expect((await c.query(sql)).rows).toHaveLength(2);
  });
});

describe('search_path', () => {
  const sql = `SELECT v FROM ${SAME} WHERE id = 1`;
  const v = async (c: pg.Client) => (await c.query<{ v: string }>(sql)).rows[0]?.v;

  it('set at startup (options=-c search_path=…), in the config and in the URL: schemas never mix', async () => {
    const one = await open(proxy.url(), { options: `-c search_path=${S1}` });
    const two = await open(`${proxy.url()}?options=${encodeURIComponent(`-c search_path=${S2}`)}`);
    expect(await warm(proxy, () => v(one))).toBe(S1);
    expect(await v(two)).toBe(S2);
    expect(await v(one)).toBe(S1);
  });

  it('changed with SET search_path and set_config(): each read follows the current path', async () => {
    const c = await open(proxy.url());
    await c.query(`SET search_path TO ${S1}`);
    expect(await warm(proxy, () => v(c))).toBe(S1);
    await c.query(`SET search_path TO ${S2}, public`);
    expect(await v(c)).toBe(S2);
    await c.query(`SET search_path TO ${S1}`);
    expect(await v(c)).toBe(S1);
    await c.query(`SELECT set_config('search_path', '${S2}', false)`);
    expect(await v(c)).toBe(S2);
    await c.query('RESET search_path');
    expect((await rejection(c.query(sql))).code, 'no such table in the default path').toBe('42P01');
  });
});

describe('settings that shape output', () => {
  it.each([
    ['TimeZone', `'UTC'`, `'Asia/Tokyo'`, 'ts'],
    ['DateStyle', `'ISO, MDY'`, `'German'`, 'd'],
    ['IntervalStyle', `'postgres'`, `'iso_8601'`, 'iv'],
    ['bytea_output', `'hex'`, `'escape'`, 'by'],
    ['extra_float_digits', '1', '0', 'f'],
  ])('SET %s changes the text the cache returns', async (name, first, second, column) => {
    const sql = `SELECT ${column} FROM ${I} WHERE id = 1`;
    const c = await open(proxy.url());
    const d = await open(directUrl());
    const text = async (x: pg.Client) => String((await x.query({ text: sql, types: rawTypes })).rows[0][column]);
    const expected = async (value: string) => {
      await d.query(`SET ${name} = ${value}`);
      return text(d);
    };
    await c.query(`SET ${name} = ${first}`);
    const a = await warm(proxy, () => text(c)); // cached under the first value
    expect(a).toBe(await expected(first));
    await c.query(`SET ${name} = ${second}`);
    const b = await text(c);
    expect(b).toBe(await expected(second));
    expect(b).not.toBe(a);
    await c.query(`SET ${name} = ${first}`);
    expect(await text(c)).toBe(a);
  });

  it('TimeZone set at startup, and SET LOCAL inside a transaction', async () => {
    const sql = `SELECT ts FROM ${I} WHERE id = 1`;
    const text = async (x: pg.Client) => String((await x.query({ text: sql, types: rawTypes })).rows[0].ts);
    const utc = await open(proxy.url(), { options: '-c TimeZone=UTC' });
    const tokyo = await open(proxy.url(), { options: '-c TimeZone=Asia/Tokyo' });
    expect(await warm(proxy, () => text(utc))).toBe('2024-03-10 12:34:56.789+00');
    expect(await text(tokyo)).toBe('2024-03-10 21:34:56.789+09');
    await utc.query('BEGIN');
    await utc.query(`SET LOCAL TimeZone = 'America/New_York'`);
    expect(await text(utc)).toBe('2024-03-10 08:34:56.789-04');
    await utc.query('COMMIT');
    expect(await text(utc)).toBe('2024-03-10 12:34:56.789+00');
  });
});

describe('temporary tables', () => {
  const sql = `SELECT v FROM ${TT} WHERE id = 1`;
  const v = async (c: pg.Client) => (await c.query<{ v: string }>(sql)).rows[0]?.v;

  it('a temp table shadowing a real table: its session sees the temp rows, others the real ones', async () => {
    const other = await open(proxy.url());
    expect(await warm(proxy, () => v(other))).toBe('real');
    const shadow = await open(proxy.url());
    await shadow.query(`CREATE TEMP TABLE ${TT} (id int, v text); INSERT INTO ${TT} VALUES (1, 'temp')`);
    expect(await v(shadow)).toBe('temp');
    expect(await v(other)).toBe('real');

    await proxy.invalidate({ all: true });
    const shadow2 = await open(proxy.url());
    await shadow2.query(`CREATE TEMP TABLE ${TT} (id int, v text)`);
    await shadow2.query(`INSERT INTO ${TT} VALUES (1, 'temp-2')`);
    expect(await v(shadow2), 'the temp session reads first').toBe('temp-2');
    expect(await v(other), 'and its rows are never served to another session').toBe('real');
  });
});

describe('dependencies: views, cascades, triggers, partitions', () => {
  let c: pg.Client;
  beforeAll(async () => {
    c = await open(proxy.url());
  });

  // Views and partitions may be left uncached ('relation-kind'), as long as the proxy says so.
  const kinds = ['relation-kind'];

  it('a view is fresh after a write to its base table', () =>
    expectWriteInvalidates(proxy, c, [`SELECT * FROM ${VIEW} ORDER BY id`], () => c.query(`UPDATE ${BASE} SET v = v + 10 WHERE id = 1`), kinds));

  it('an ON DELETE CASCADE child is fresh after a delete from the parent', () =>
    expectWriteInvalidates(proxy, c, [`SELECT id, pid FROM ${CH} ORDER BY id`], () => c.query(`DELETE FROM ${P} WHERE id = 1`)));

  it('an ON UPDATE CASCADE child is fresh after the parent key changes', () =>
    expectWriteInvalidates(proxy, c, [`SELECT id, pid FROM ${CH} ORDER BY id`], () => c.query(`UPDATE ${P} SET id = 20 WHERE id = 2`)));

  it('a table written by a trigger is fresh after the write that fired it', () =>
    expectWriteInvalidates(proxy, c, [`SELECT count(*)::int AS n FROM ${AU}`], () => c.query(`INSERT INTO ${BASE} VALUES (100, 100)`)));

  it('a write through the partitioned parent makes a read of the partition fresh', () =>
    expectWriteInvalidates(proxy, c, [`SELECT sum(v)::int AS s FROM ${PM}_1`], () => c.query(`UPDATE ${PM} SET v = v + 1 WHERE id = 5`), kinds));

  it('a write to a partition by name makes a read of the parent fresh', () =>
    expectWriteInvalidates(proxy, c, [`SELECT sum(v)::int AS s FROM ${PM}`], () => c.query(`UPDATE ${PM}_2 SET v = v + 1 WHERE id = 150`), kinds));

  it('an INSERT through the parent makes both the parent and the partition fresh', () =>
    expectWriteInvalidates(proxy, c, [`SELECT count(*)::int AS n FROM ${PM}`, `SELECT count(*)::int AS n FROM ${PM}_2`], () =>
      c.query(`INSERT INTO ${PM} VALUES (199, 1)`), kinds));
});
