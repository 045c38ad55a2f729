// Stale rows after writes and DDL acknowledged THROUGH the proxy whose
// effects reach relations the write does not name: regclass
// values, physical row addresses, column defaults, event triggers,
// row-level-security policies; and transaction edges (COMMIT AND CHAIN,
// REPEATABLE READ with cache.in_transactions).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { Clients, cached, expectSameAsDatabase, rows } from '../../helpers/stale-checks.js';

const REG = uniqueName('wrw_reg'); // a regclass column
const A1 = uniqueName('wrw_a1'); // the table it names, renamed later
const A1X = uniqueName('wrw_a1x');
const VF = uniqueName('wrw_vf'); // VACUUM FULL
const LOG = uniqueName('wrw_log'); // written by a column default
const DW = uniqueName('wrw_dw');
const LOGFN = uniqueName('wrw_logfn');
const EL = uniqueName('wrw_el'); // written by an event trigger
const ETT = uniqueName('wrw_ett');
const ETFN = uniqueName('wrw_etfn');
const ET = uniqueName('wrw_et');
const RLT = uniqueName('wrw_rlt'); // RLS policy with a subquery on MEM
const MEM = uniqueName('wrw_mem');
const MEMU = uniqueName('wrw_memu');
const MT = uniqueName('wrw_mt'); // RLS policy on current_setting()
const TEN = uniqueName('wrw_ten');
const W = uniqueName('wrw_w'); // transactions

let proxy: TestProxy;
const clients = new Clients();
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${A1} (id int)`);
  await directQuery(`CREATE TABLE ${REG} (id int PRIMARY KEY, r regclass); INSERT INTO ${REG} VALUES (1, '${A1}')`);
  await directQuery(`CREATE TABLE ${VF} (id int PRIMARY KEY, pad text); INSERT INTO ${VF} SELECT g, repeat('x', 500) FROM generate_series(1, 40) g`);
  await directQuery(`DELETE FROM ${VF} WHERE id <= 20`);
  await directQuery(`CREATE TABLE ${LOG} (n int)`);
  await directQuery(`CREATE FUNCTION ${LOGFN}() RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO ${LOG} VALUES (1) RETURNING 1'`);
  await directQuery(`CREATE TABLE ${DW} (id int, x int DEFAULT ${LOGFN}())`);
  await directQuery(`CREATE TABLE ${EL} (tag text, ident text); CREATE TABLE ${ETT} (id int)`);
  await directQuery(`CREATE FUNCTION ${ETFN}() RETURNS event_trigger LANGUAGE plpgsql AS $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        IF r.object_identity LIKE '%${ETT}%' THEN INSERT INTO ${EL} VALUES (r.command_tag, r.object_identity); END IF;
      END LOOP;
    EXCEPTION WHEN others THEN NULL; -- never break another test file's COMMENT
    END $$`);
  await directQuery(`CREATE EVENT TRIGGER ${ET} ON ddl_command_end WHEN TAG IN ('COMMENT') EXECUTE FUNCTION ${ETFN}()`);
  await directQuery(`CREATE ROLE ${MEMU} LOGIN`);
  await directQuery(`CREATE TABLE ${RLT} (id int PRIMARY KEY, grp text); INSERT INTO ${RLT} VALUES (1, 'g1'), (2, 'g2')`);
  await directQuery(`CREATE TABLE ${MEM} (usr name, grp text); INSERT INTO ${MEM} VALUES ('${MEMU}', 'g1')`);
  await directQuery(`ALTER TABLE ${RLT} ENABLE ROW LEVEL SECURITY`);
  await directQuery(`CREATE POLICY member ON ${RLT} USING (grp IN (SELECT m.grp FROM ${MEM} m WHERE m.usr = current_user))`);
  await directQuery(`GRANT SELECT ON ${RLT}, ${MEM} TO ${MEMU}`);
  await directQuery(`CREATE ROLE ${TEN} LOGIN`);
  await directQuery(`CREATE TABLE ${MT} (id int PRIMARY KEY, tenant text, v text); INSERT INTO ${MT} VALUES (1, 'a', 'for a'), (2, 'b', 'for b')`);
  await directQuery(`ALTER TABLE ${MT} ENABLE ROW LEVEL SECURITY`);
  await directQuery(`CREATE POLICY tenant ON ${MT} USING (tenant = current_setting('wrw.tenant', true))`);
  await directQuery(`GRANT SELECT ON ${MT} TO ${TEN}`);
  await directQuery(`ALTER ROLE ${TEN} SET wrw.tenant = 'a'`);
  await directQuery(`CREATE TABLE ${W} (id int PRIMARY KEY, v int); INSERT INTO ${W} VALUES (1, 1), (2, 20)`);
  proxy = await startProxy();
  c = await clients.open(proxy.url());
  d = await clients.direct();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directQuery(`DROP EVENT TRIGGER IF EXISTS ${ET}`);
  await directQuery(`DROP TABLE IF EXISTS ${REG}, ${A1}, ${A1X}, ${VF}, ${DW}, ${LOG}, ${EL}, ${ETT}, ${RLT}, ${MEM}, ${MT}, ${W} CASCADE`);
  await directQuery(`DROP FUNCTION IF EXISTS ${LOGFN}(), ${ETFN}()`);
  for (const role of [MEMU, TEN]) await directQuery(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).catch(() => {});
  await endDirect();
});

describe('DDL through the proxy changes what reads of OTHER relations return', () => {
  it('ALTER TABLE … RENAME: a cached regclass column value shows the new name at once', async () => {
    const sql = `SELECT id, r FROM ${REG} ORDER BY id`;
    expect((await cached(proxy, c, sql)).rows).toEqual([{ id: '1', r: A1 }]);
    await c.query(`ALTER TABLE ${A1} RENAME TO ${A1X}`);
    await expectSameAsDatabase(c, d, sql, `${A1} was renamed to ${A1X}`);
  });

  it('VACUUM FULL moves rows: a cached read of ctid shows their new addresses at once', async () => {
    const sql = `SELECT ctid, id FROM ${VF} ORDER BY id LIMIT 3`;
    expect(await cached(proxy, c, sql)).toEqual(await rows(d, sql));
    await c.query(`VACUUM FULL ${VF}`);
    await expectSameAsDatabase(c, d, sql, `VACUUM FULL ${VF} through the proxy`);
  });

  it('an event trigger that writes a table on COMMENT: a cached read of that table is fresh after COMMENT through the proxy', async () => {
    const sql = `SELECT count(*)::int AS n FROM ${EL}`;
    expect(await cached(proxy, c, sql)).toEqual(await rows(d, sql));
    await c.query(`COMMENT ON TABLE ${ETT} IS 'fires the event trigger'`);
    await expectSameAsDatabase(c, d, sql, `the event trigger wrote ${EL}`);
  });
});

describe('writes through the proxy that change another table', () => {
  it('a column DEFAULT that calls a function writing another table: that table is fresh after the INSERT', async () => {
    const sql = `SELECT count(*)::int AS n FROM ${LOG}`;
    expect(await cached(proxy, c, sql)).toEqual(await rows(d, sql));
    await c.query(`INSERT INTO ${DW} (id) VALUES (1)`);
    await expectSameAsDatabase(c, d, sql, `the default of ${DW}.x inserted into ${LOG}`);
  });
});

describe('row-level security policies that read more than the table', () => {
  it('a policy with a subquery on a membership table: the member sees a group added through the proxy at once', async () => {
    const sql = `SELECT id, grp FROM ${RLT} ORDER BY id`;
    const m = await clients.open(proxy.url('test', MEMU));
    const md = await clients.direct({}, 'test', MEMU);
    expect((await cached(proxy, m, sql)).rows).toEqual([{ id: '1', grp: 'g1' }]);
    await c.query(`INSERT INTO ${MEM} VALUES ('${MEMU}', 'g2')`);
    await expectSameAsDatabase(m, md, sql, `${MEMU} joined g2 through the proxy`);
  });

  it('a policy on current_setting() of a role default (ALTER ROLE … SET): two sessions with different values never share rows', async () => {
    const sql = `SELECT id, v FROM ${MT} ORDER BY id`;
    const first = await clients.open(proxy.url('test', TEN)); // wrw.tenant = 'a' from the role default
    await c.query(`ALTER ROLE ${TEN} SET wrw.tenant = 'b'`); // sessions from now on get 'b'
    expect((await cached(proxy, first, sql)).rows).toEqual([{ id: '1', v: 'for a' }]);
    const second = await clients.open(proxy.url('test', TEN));
    const secondDirect = await clients.direct({}, 'test', TEN);
    expect((await rows(secondDirect, sql)).rows, 'the database shows tenant b').toEqual([{ id: '2', v: 'for b' }]);
    await expectSameAsDatabase(second, secondDirect, sql, 'a new session of the role has wrw.tenant = b');
  });

  it('a policy on current_setting(): a session that SETs the setting reads its own rows (passes: SET of a custom setting bypasses)', async () => {
    const sql = `SELECT id, v FROM ${MT} ORDER BY id`;
    const other = await clients.open(proxy.url('test', TEN), { options: '-c wrw.tenant=a' });
    expect((await cached(proxy, other, sql)).rows).toEqual([{ id: '1', v: 'for a' }]);
    const s = await clients.open(proxy.url('test', TEN), { options: '-c wrw.tenant=a' });
    await s.query(`SET wrw.tenant = 'b'`);
    expect((await rows(s, sql)).rows).toEqual([{ id: '2', v: 'for b' }]);
    await s.query(`SELECT set_config('wrw.tenant', 'a', false)`);
    expect((await rows(s, sql)).rows).toEqual([{ id: '1', v: 'for a' }]);
  });
});

describe('transaction edges', () => {
  it('COMMIT AND CHAIN: once acknowledged, the committed write is never hidden by a cached read', async () => {
    const sql = `SELECT v FROM ${W} WHERE id = 1`;
    const writer = await clients.open(proxy.url());
    const reader = await clients.open(proxy.url());
    await writer.query('BEGIN');
    await writer.query(`UPDATE ${W} SET v = v + 1 WHERE id = 1`);
    const old = await cached(proxy, reader, sql); // the committed value until the COMMIT
    expect(old).toEqual(await rows(d, sql));
    await writer.query('COMMIT AND CHAIN');
    try {
      await expectSameAsDatabase(reader, d, sql, 'after COMMIT AND CHAIN was acknowledged');
    } finally {
      await writer.query('COMMIT');
    }
  });

  it('in_transactions: true — a REPEATABLE READ transaction is never served rows newer than its snapshot', async () => {
    const p2 = await startProxy({ inTransactions: true });
    try {
      const sql = `SELECT v FROM ${W} WHERE id = 2`;
      const rr = await clients.open(p2.url());
      const other = await clients.open(p2.url());
      await rr.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      expect((await rows(rr, sql)).rows).toEqual([{ v: '20' }]); // the snapshot is taken
      await other.query(`UPDATE ${W} SET v = 21 WHERE id = 2`);
      expect((await cached(p2, other, sql)).rows).toEqual([{ v: '21' }]);
      expect((await rows(rr, sql)).rows, 'the transaction\'s snapshot still says 20').toEqual([{ v: '20' }]);
      await rr.query('COMMIT');
    } finally {
      await p2.stop();
    }
  });
});
