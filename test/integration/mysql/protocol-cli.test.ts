// The `mariadb` command-line client in batch mode through the proxy, output
// compared with the same command against MariaDB: several statements in
// -e, \G, `source` of a file, --execute="use x; select …", -vvv, and the
// warnings display (--show-warnings, SHOW WARNINGS after SELECT 1/0, also
// after a cached read).

import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, dropMyTables, endMyDirect, MY_DB2, mysqlCli, type CliResult } from '../../helpers/mysql.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const MY_PORT = 3306;
const T = uniqueName('my_cli');
const FILE = join(tmpdir(), `${uniqueName('sqlcached_src')}.sql`);
let proxy: TestProxy;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${T} VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  await directSql(`CREATE TABLE ${MY_DB2}.${T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${MY_DB2}.${T} VALUES (1, 'db2-one')`);
  writeFileSync(FILE, `SELECT v FROM ${T} WHERE id = 1;\nSELECT v FROM ${T} WHERE id = 1;\nSELECT id, v FROM ${T} ORDER BY id\\G\nSELEC broken;\nSELECT 'after error';\n`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T, `${MY_DB2}.${T}`);
  rmSync(FILE, { force: true });
  await endMyDirect();
});

/** Timings differ from run to run: "(0.001 sec)" → "(N sec)". */
const normal = (r: CliResult): CliResult => ({
  code: r.code,
  stdout: r.stdout.replace(/\(\d+\.\d+ sec\)/g, '(N sec)'),
  stderr: r.stderr.replace(/\(\d+\.\d+ sec\)/g, '(N sec)'),
});

async function sameAsMariaDb(args: string[], stdin = '', db?: string | null): Promise<CliResult> {
  const opts = db === undefined ? {} : { db };
  const direct = normal(await mysqlCli(MY_PORT, args, stdin, opts));
  const via = normal(await mysqlCli(proxy.port, args, stdin, opts));
  expect(via).toEqual(direct);
  return via;
}

describe('the mariadb CLI in batch mode', () => {
  it('-e with several statements, twice (the second time from the cache)', async () => {
    const args = ['-e', `SELECT v FROM ${T} WHERE id = 2; SELECT id, v FROM ${T} ORDER BY id; SELECT 1 AS a, 'x' AS b`];
    await sameAsMariaDb(args);
    await sameAsMariaDb(args);
  });

  it('\\G vertical output, twice', async () => {
    const args = ['-e', `SELECT id, v FROM ${T} ORDER BY id\\G`];
    await sameAsMariaDb(args);
    await sameAsMariaDb(args);
  });

  it('--batch -vvv (echo, row counts, timings) twice', async () => {
    const args = ['--batch', '-vvv', '-e', `SELECT v FROM ${T} WHERE id = 3; UPDATE ${T} SET v = 'three' WHERE id = 3; SELECT v FROM ${T} WHERE id = 3`];
    await sameAsMariaDb(args);
    await sameAsMariaDb(args);
  });

  it('source of a file (errors stop it, as in MariaDB), on stdin and with --force', async () => {
    await sameAsMariaDb([], `source ${FILE}\n`);
    await sameAsMariaDb(['--force'], `source ${FILE}\nSELECT 'end';\n`);
  });

  it('--execute="use x; select …" reads the other database, also when the same text is cached for `test`', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 1`;
    await sameAsMariaDb(['-e', sql]);
    await sameAsMariaDb(['-e', sql]);
    const r = await sameAsMariaDb([`--execute=use ${MY_DB2}; ${sql}; use test; ${sql}`]);
    expect(r.stdout).toContain('db2-one');
  });

  it('--show-warnings -vvv: SELECT 1/0 twice and SHOW WARNINGS, as MariaDB shows them', async () => {
    await sameAsMariaDb(['--show-warnings', '-vvv', '-e', 'SELECT 1/0; SELECT 1/0; SHOW WARNINGS']);
  });

  it('SHOW WARNINGS after a cached read that follows a warning: as MariaDB shows it', async () => {
    const read = `SELECT v FROM ${T} WHERE id = 2`;
    await mysqlCli(proxy.port, ['-e', `${read}; ${read}`], '');
    await sameAsMariaDb(['-vvv', '-e', `SELECT 1/0; ${read}; SHOW WARNINGS`]);
  });
});
