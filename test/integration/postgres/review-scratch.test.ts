import { afterAll, beforeAll, it } from 'vitest';
import { directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { B, CS, DP, DS, E, H, P, Q, S, Wire, differential, names } from '../../helpers/review-wire.js';

const T = uniqueName('rv_scr');
let proxy: TestProxy;
beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g FROM generate_series(1, 10) g`);
  proxy = await startProxy();
  const w = await Wire.open(proxy.port);
  for (let i = 0; i < 3; i++) await w.query(`SELECT v FROM ${T} WHERE id = 10`);
  for (let i = 0; i < 3; i++) await w.send([P(`SELECT v FROM ${T} WHERE id = 1`), B(), E(), S()]);
  w.close();
  console.log(JSON.stringify(await proxy.stats().then(s=>({h:s.hits,m:s.misses,b:s.bypass_reasons}))));
});
afterAll(async () => { await proxy.stop(); await dropTables(T); await endDirect(); });

const show = (label: string, r: unknown) => console.log(label, JSON.stringify(r));

it('describe S after hit', async () => {
  const r = await differential(proxy.port, [
    { send: [P(`SELECT v FROM ${T} WHERE id = 1`, 's1'), B('s1'), E(), S()] },
    { send: [DS('s1'), S()] },
    { send: [Q('EXECUTE s1')] },
    { send: [Q('DEALLOCATE s1')] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r.proxy); show('db   ', r.db);
});

it('query between parse and sync', async () => {
  const r = await differential(proxy.port, [
    { send: [P(`SELECT v FROM ${T} WHERE id = 2`, 'q1'), Q(`SELECT v FROM ${T} WHERE id = 3`), S()], readies: 2 },
    { send: [Q(`SELECT v FROM ${T} WHERE id = 3`)] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r.proxy); show('db   ', r.db);
  const r2 = await differential(proxy.port, [
    { send: [Q(`SELECT v FROM ${T} WHERE id = 3`)] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r2.proxy); show('db   ', r2.db);
});

it('query between parse and sync, hit', async () => {
  const r = await differential(proxy.port, [
    { send: [P(`SELECT v FROM ${T} WHERE id = 2`, 'q1'), Q(`SELECT v FROM ${T} WHERE id = 10`)], readies: 1, timeoutMs: 2000 },
    { send: [S()] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r.proxy); show('db   ', r.db);
});

it('row limit then full execute in one batch', async () => {
  const sql = `SELECT id FROM ${T} ORDER BY id`;
  const r = await differential(proxy.port, [
    { send: [P(sql), B(), E('', 3), E('', 0), S()] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', names(r.proxy[0]!)); show('db   ', names(r.db[0]!));
  const r2 = await differential(proxy.port, [
    { send: [P(sql), B(), E(), S()] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r2.proxy[0]!.length); show('db   ', r2.db[0]!.length);
});

it('42P05 re-parse', async () => {
  const r = await differential(proxy.port, [
    { send: [P(`SELECT v FROM ${T} WHERE id = 4`, 'dup'), B('dup'), E(), S()] },
    { send: [P(`SELECT v FROM ${T} WHERE id = 5`, 'dup'), S()] },
    { send: [B('dup'), E(), S()] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r.proxy); show('db   ', r.db);
  const r2 = await differential(proxy.port, [
    { send: [P(`SELECT v FROM ${T} WHERE id = 5`, ''), B(''), E(), S()] },
  ], [`SELECT v FROM ${T} WHERE id = 10`]);
  show('proxy', r2.proxy); show('db   ', r2.db);
});
