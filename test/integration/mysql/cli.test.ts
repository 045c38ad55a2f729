// The real `mariadb` command-line client (libmariadb) through the MySQL
// listener: what users type into. Output equal to MariaDB's, repeated
// SELECTs from separate processes answered from cache, LOAD DATA LOCAL
// INFILE (--local-infile=1), and MariaDB's own error lines.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { directSql, dropMyTables, endMyDirect, mysqlCli, mysqlCliOk, MY_PORT } from '../../helpers/mysql.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_cli');
const MISSING = uniqueName('my_cli_missing');
let proxy: TestProxy;
let dir: string;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40), d DECIMAL(8,2), at DATETIME)`);
  await directSql(`INSERT INTO ${T} SELECT seq, CONCAT('v', seq), seq / 4, '2024-01-01' + INTERVAL seq HOUR FROM seq_1_to_10`);
  dir = mkdtempSync(join(tmpdir(), 'sqlcached-cli-'));
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
  rmSync(dir, { recursive: true, force: true });
});

describe('mariadb CLI', () => {
  it('table output (-t) equals MariaDB\'s, character for character', async () => {
    const sql = `SELECT * FROM ${T} WHERE id <= 4 ORDER BY id; SELECT COUNT(*) AS n, SUM(d) AS s FROM ${T};`;
    expect(await mysqlCliOk(proxy.port, ['-t'], sql)).toBe(await mysqlCliOk(MY_PORT, ['-t'], sql));
  });

  it('server version and the session the CLI sees equal MariaDB\'s', async () => {
    const sql = 'SELECT VERSION(), @@version_comment, CURRENT_USER(), DATABASE(), @@character_set_client, @@autocommit;';
    expect(await mysqlCliOk(proxy.port, ['-N'], sql)).toBe(await mysqlCliOk(MY_PORT, ['-N'], sql));
  });

  it('a repeated SELECT from separate processes is a hit; a write through the CLI makes it fresh', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 5;`;
    expect(await warm(proxy, () => mysqlCliOk(proxy.port, ['-N'], sql))).toBe('v5');
    await directSql(`UPDATE ${T} SET v = 'behind' WHERE id = 5`);
    const r = await hitsDuring(proxy, () => mysqlCliOk(proxy.port, ['-N'], sql));
    expect(r.value).toBe('v5');
    expect(r.hits).toBe(1);
    await mysqlCliOk(proxy.port, [], `UPDATE ${T} SET v = 'through' WHERE id = 5;`);
    expect(await mysqlCliOk(proxy.port, ['-N'], sql)).toBe('through');
  });

  it('LOAD DATA LOCAL INFILE (--local-infile=1) loads the file and makes the next read fresh', async () => {
    const sql = `SELECT COUNT(*) FROM ${T};`;
    expect(await warm(proxy, () => mysqlCliOk(proxy.port, ['-N'], sql))).toBe('10');
    const file = join(dir, 'rows.tsv');
    writeFileSync(file, '101\tloaded-1\t1.50\t2024-05-05 05:05:05\n102\tloaded-2\t2.50\t2024-05-05 06:06:06\n');
    const out = await mysqlCliOk(proxy.port, ['--local-infile=1', '-vv'], `LOAD DATA LOCAL INFILE '${file}' INTO TABLE ${T};`);
    expect(out).toContain('Records: 2  Deleted: 0  Skipped: 0  Warnings: 0');
    expect(await mysqlCliOk(proxy.port, ['-N'], sql)).toBe('12');
    expect(await mysqlCliOk(proxy.port, ['-N'], `SELECT v FROM ${T} WHERE id = 102;`)).toBe('loaded-2');
  });

  it('LOAD DATA LOCAL INFILE of a missing file: the same error as against MariaDB, and nothing changes', async () => {
    const sql = `LOAD DATA LOCAL INFILE '${join(dir, 'nope.tsv')}' INTO TABLE ${T};`;
    const viaProxy = await mysqlCli(proxy.port, ['--local-infile=1'], sql);
    expect(viaProxy.code).not.toBe(0);
    expect(viaProxy.stderr).toBe((await mysqlCli(MY_PORT, ['--local-infile=1'], sql)).stderr);
    expect(await mysqlCliOk(proxy.port, ['-N'], `SELECT v FROM ${T} WHERE id = 6;`), 'the proxy serves afterwards').toBe('v6');
  });

  it.each([
    ['syntax error', 'SELEC 1;'],
    ['unknown table', `SELECT * FROM ${MISSING};`],
    ['duplicate key', `INSERT INTO ${T} (id, v) VALUES (1, 'dup');`],
  ])('%s: the same ERROR line as from MariaDB', async (_name, sql) => {
    const viaProxy = await mysqlCli(proxy.port, [], sql);
    expect(viaProxy.code).toBe(1);
    expect(viaProxy.stderr).toMatch(/^ERROR \d+ \([0-9A-Z]{5}\) at line 1: /m);
    expect(viaProxy.stderr).toBe((await mysqlCli(MY_PORT, [], sql)).stderr);
  });

  it('a script that goes on after errors (--force): the same output as MariaDB', async () => {
    const script = `SELECT v FROM ${T} WHERE id = 7;\nSELEC 1;\nSELECT v FROM ${T} WHERE id = 8;\nSHOW WARNINGS;\n`;
    const viaProxy = await mysqlCli(proxy.port, ['--force', '-N'], script);
    const direct = await mysqlCli(MY_PORT, ['--force', '-N'], script);
    expect({ out: viaProxy.stdout, err: viaProxy.stderr, code: viaProxy.code }).toEqual({ out: direct.stdout, err: direct.stderr, code: direct.code });
  });
});
