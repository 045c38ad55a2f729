// A mysql listener with tls.cert/tls.key offers CLIENT_SSL and terminates
// TLS: the client's SSLRequest upgrades its socket, the handshake response
// then arrives encrypted one sequence id later than the server expects (the
// proxy renumbers the authentication packets), and the upstream link stays
// plain. Without a certificate CLIENT_SSL is not offered. The certificate is
// made here with openssl, valid for a day.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { cachedRows, rowsOf } from '../../helpers/mysql-checks.js';
import { PW_USER, TEST_PASSWORD, connectMysql, directSql, dropMyTables, endMyDirect, mysqlCli } from '../../helpers/mysql.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('mytls');
let dir: string;
let proxy: TestProxy;
let plain: TestProxy;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlcached-mytls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
    stdio: 'ignore',
  });
  await directSql(`CREATE TABLE ${T} (id int PRIMARY KEY, v varchar(20))`);
  await directSql(`INSERT INTO ${T} VALUES (1, 'one')`);
  proxy = await startMysqlProxy({ tls: { cert, key } });
  plain = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await plain?.stop();
  await dropMyTables(T);
  await endMyDirect();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS on the mysql listener', () => {
  it('mysql2 with ssl logs in with a password over TLS, and reads are cached and invalidated inside it', async () => {
    const c = await connectMysql(proxy.port, { user: PW_USER, password: TEST_PASSWORD, ssl: { rejectUnauthorized: false } });
    try {
      const [status] = (await c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")) as unknown as [{ Value: string }[]];
      // The upstream link is plain: the server sees no cipher, the client's socket is TLS.
      expect(status[0]?.Value).toBe('');
      // mysql2's promise wrapper keeps the callback connection, which keeps its socket.
      const stream = (c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream;
      expect(stream.encrypted).toBe(true);
      expect(await cachedRows(proxy, c, `SELECT v FROM ${T} WHERE id = 1`)).toEqual([{ v: 'one' }]);
      await c.query(`UPDATE ${T} SET v = 'two' WHERE id = 1`);
      expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`)).toEqual([{ v: 'two' }]);
    } finally {
      await c.end();
    }
  });

  it('the mariadb CLI with --ssl connects (its session reports a cipher) and a wrong password is refused by the server', async () => {
    const ok = await mysqlCli(proxy.port, ['--ssl', '--skip-ssl-verify-server-cert', '-N', '-e', `SELECT v FROM ${T} WHERE id = 1; \\s`], '', {
      user: PW_USER,
      password: TEST_PASSWORD,
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/SSL:\s+Cipher in use is /);
    const bad = await mysqlCli(proxy.port, ['--ssl', '--skip-ssl-verify-server-cert', '-e', 'SELECT 1'], '', { user: PW_USER, password: 'wrong' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERROR 1045 \(28000\)/);
  });

  it('without a certificate CLIENT_SSL is not offered: --ssl-mode equivalent REQUIRED fails in the client, plain works', async () => {
    const required = await mysqlCli(plain.port, ['--ssl', '--ssl-verify-server-cert', '-e', 'SELECT 1'], '');
    expect(required.code).not.toBe(0);
    expect(required.stderr).toMatch(/SSL/i);
    const c = await connectMysql(plain.port);
    try {
      expect(await rowsOf(c, 'SELECT 1 AS x')).toEqual([{ x: 1 }]);
    } finally {
      await c.end();
    }
  });
});
