// psql through the proxy, the way people poke at a database: \d (catalog
// queries, never cached), a plain SELECT run twice (a hit), \copy both ways.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directQuery, dropTables, endDirect, PG_PORT, uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { psql, psqlOk } from '../../helpers/psql.js';

const T = uniqueName('psql_t');
let proxy: TestProxy;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL DEFAULT 'x')`);
  await directQuery(`COMMENT ON TABLE ${T} IS 'psql test table'`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'row ' || g FROM generate_series(1, 5) g`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('psql through the proxy', () => {
  it('\\d, \\dt+ and \\d+ print what they print against the database', async () => {
    for (const command of [`\\d ${T}`, `\\dt+ ${T}`, `\\d+ ${T}`, `\\di ${T}*`]) {
      const viaProxy = await psql(proxy.port, [command]);
      const viaDb = await psql(PG_PORT, [command]);
      expect(viaProxy.code, command).toBe(0);
      expect(viaProxy.stdout, command).toBe(viaDb.stdout);
      expect(viaProxy.stdout.length, command).toBeGreaterThan(0);
    }
  });

  it('\\d is never answered from cache: a column added behind the proxy\'s back shows at once', async () => {
    const before = await psqlOk(proxy.port, [`\\d ${T}`]);
    expect(await psqlOk(proxy.port, [`\\d ${T}`])).toBe(before);
    await directQuery(`ALTER TABLE ${T} ADD COLUMN added_behind int`);
    const after = await psqlOk(proxy.port, [`\\d ${T}`]);
    expect(after).toContain('added_behind');
    expect(after).toBe(await psqlOk(PG_PORT, [`\\d ${T}`]));
  });

  it('a plain SELECT run twice is a hit the second time (a write behind the proxy\'s back stays unseen)', async () => {
    const sql = `SELECT id, v FROM ${T} WHERE id <= 2 ORDER BY id`;
    const first = await warm(proxy, () => psqlOk(proxy.port, [sql]));
    expect(first).toBe('1|row 1\n2|row 2');
    await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 1`);
    const second = await hitsDuring(proxy, () => psqlOk(proxy.port, [sql]));
    expect(second.value).toBe(first);
    expect(second.hits).toBe(1);
    await proxy.invalidate({ table: T });
    expect(await psqlOk(proxy.port, [sql])).toBe('1|behind\n2|row 2');
  });

  it('\\copy … to stdout prints what the database prints, and is never cached', async () => {
    const command = `\\copy ${T} (id, v) to stdout`;
    const first = await psqlOk(proxy.port, [command]);
    expect(first).toBe(await psqlOk(PG_PORT, [command]));
    await directQuery(`UPDATE ${T} SET v = 'behind again' WHERE id = 2`);
    expect(await psqlOk(proxy.port, [command])).toContain('2\tbehind again');
  });

  it('\\copy … from stdin loads every line and invalidates cached reads of the table', async () => {
    const count = `SELECT count(*) FROM ${T}`;
    const n0 = Number(await warm(proxy, () => psqlOk(proxy.port, [count])));
    const lines = Array.from({ length: 1000 }, (_, i) => `${100 + i}\tcopied ${i}\n`).join('');
    expect(await psqlOk(proxy.port, [`\\copy ${T} (id, v) from stdin`], { input: `${lines}\\.\n` })).toBe('COPY 1000');
    expect(Number(await psqlOk(proxy.port, [count]))).toBe(n0 + 1000);
    expect((await directQuery(`SELECT count(*)::int AS n FROM ${T} WHERE v LIKE 'copied %'`)).rows[0].n).toBe(1000);
  });

  it('a psql script of several commands in one session: SET, SELECT, \\gset, errors with ON_ERROR_STOP off', async () => {
    const script = [
      `SET TimeZone = 'UTC';`,
      `SELECT v AS first_v FROM ${T} WHERE id = 3 \\gset`,
      `\\echo :first_v`,
      `SELECT * FROM ${T}_does_not_exist;`,
      `SELECT count(*) FROM ${T} WHERE id = 3;`,
    ].join('\n');
    const run = async (port: number) => {
      const out = await psql(port, [], { script });
      return { code: out.code, stdout: out.stdout, stderr: out.stderr.replace(/psql:<stdin>:\d+: /g, '') };
    };
    const viaProxy = await run(proxy.port);
    expect(viaProxy).toEqual(await run(PG_PORT));
    expect(viaProxy.stdout).toContain('row 3');
    expect(viaProxy.stderr).toContain('does not exist');
  });
});
