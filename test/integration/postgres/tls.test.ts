// A listener with tls.cert/tls.key terminates TLS: SSLRequest is answered
// 'S', the client's session runs encrypted to the proxy, and caching works
// the same inside it. The certificate is made here with openssl (a Debian
// package on every machine), valid for a day.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { psql } from '../../helpers/psql.js';

const T = uniqueName('tls_t');
let dir: string;
let proxy: TestProxy;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlcached-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
    stdio: 'ignore',
  });
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 'one')`);
  proxy = await startProxy({ tls: { cert, key } });
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS termination', () => {
  it('pg with ssl gets an encrypted session, and reads through it are cached', async () => {
    const c = await connectClient(proxy.url(), { ssl: { rejectUnauthorized: false } });
    try {
      // pg keeps the socket it talks over: a TLSSocket once SSLRequest got 'S'.
      const stream = (c as unknown as { connection: { stream: unknown } }).connection.stream;
      expect(stream).toBeInstanceOf(tls.TLSSocket);
      expect((stream as tls.TLSSocket).encrypted).toBe(true);
      const read = () => c.query(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v);
      expect(await warm(proxy, read)).toBe('one');
      await directQuery(`UPDATE ${T} SET v = 'behind' WHERE id = 1`);
      expect(await read(), 'answered from cache inside TLS').toBe('one');
      await c.query(`UPDATE ${T} SET v = 'through' WHERE id = 1`);
      expect(await read()).toBe('through');
    } finally {
      await c.end();
    }
  });

  it('psql with sslmode=require connects and says the connection is SSL', async () => {
    const r = await psql(proxy.port, ['\\conninfo', `SELECT v FROM ${T} WHERE id = 1`], { conninfo: 'sslmode=require' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/SSL connection/);
  });

  it('a client that does not ask for TLS still connects in clear', async () => {
    const c = await connectClient(proxy.url(), { ssl: false });
    try {
      expect((await c.query('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    } finally {
      await c.end();
    }
  });
});
