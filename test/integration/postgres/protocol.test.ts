// The protocol around the queries, relayed as the database does it:
// password logins (SCRAM, MD5, cleartext), SSLRequest/GSSENCRequest answered
// 'N', CancelRequest, LISTEN/NOTIFY, exact reply bytes (text and binary),
// Terminate. COPY and large results are in protocol-streams.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { serialize } from 'pg-protocol';
import { backendsNamed, connectClient, directQuery, dropTables, endDirect, PG_PORT, uniqueName, waitFor } from '../../helpers/db.js';
import { rejection, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { psql } from '../../helpers/psql.js';
import { GSSENC_REQUEST_CODE, negotiationRequest, RawClient, sendCancel, SSL_REQUEST_CODE, terminateMessage } from '../../helpers/wire.js';

const T = uniqueName('proto_t');
const CHANNEL = uniqueName('proto_chan');
const LOGINS = [
  { user: 'sqlcached_scram', password: 'scram-pw', encryption: 'scram-sha-256' },
  { user: 'sqlcached_md5', password: 'md5-pw', encryption: 'md5' },
  { user: 'sqlcached_clear', password: 'clear-pw', encryption: 'scram-sha-256' },
] as const;
let proxy: TestProxy;

beforeAll(async () => {
  const rules = await directQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE user_name && ARRAY['sqlcached_scram', 'sqlcached_md5', 'sqlcached_clear']`,
  );
  if (rules.rows[0]?.n !== 3) throw new Error('pg_hba.conf lacks the sqlcached_* lines: run `sudo bash scripts/pg-test-auth.sh` first');
  for (const { user, password, encryption } of LOGINS) {
    // One message, so SET and CREATE ROLE run on the same pooled connection.
    await directQuery(`SET password_encryption = '${encryption}'; DROP ROLE IF EXISTS ${user}; CREATE ROLE ${user} LOGIN PASSWORD '${password}'; RESET password_encryption`);
  }
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text, n int, f float8, b bool, ts timestamptz, by bytea)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 'one', 1, 1.5, true, '2024-01-02 03:04:05+00', '\\x0001ff'), (2, '', NULL, -0.0, false, NULL, '\\x')`);
  await directQuery(`GRANT SELECT ON ${T} TO ${LOGINS.map((l) => l.user).join(', ')}`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  for (const { user } of LOGINS) await directQuery(`DROP OWNED BY ${user}; DROP ROLE IF EXISTS ${user}`).catch(() => {});
  await endDirect();
});

describe('authentication is passed through', () => {
  it('the md5 role really has an md5 password (the test setup is what it claims)', async () => {
    const r = await directQuery<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'sqlcached_md5'`);
    expect(r.rows[0]?.p.startsWith('md5')).toBe(true);
  });

  it.each(LOGINS.map((l) => [l.user, l] as const))('%s logs in with its password and reads through the cache', async (_user, login) => {
    const c = await connectClient(proxy.url('test', login.user, login.password));
    try {
      expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(login.user);
      const sql = `SELECT v FROM ${T} WHERE id = 1`;
      expect((await c.query(sql)).rows[0].v).toBe('one');
      expect((await warm(proxy, () => c.query(sql))).rows[0].v).toBe('one');
    } finally {
      await c.end();
    }
  });

  it.each(LOGINS.map((l) => [l.user, l] as const))('%s with a wrong password gets 28P01 and the proxy keeps working', async (_user, login) => {
    const err = await rejection(connectClient(proxy.url('test', login.user, 'wrong')));
    expect(err.code).toBe('28P01');
    const c = await connectClient(proxy.url('test', login.user, login.password));
    await c.end();
  });

  it('psql (libpq) logs in with SCRAM through the proxy', async () => {
    const r = await psql(proxy.port, ['SELECT current_user'], { user: 'sqlcached_scram', password: 'scram-pw' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('sqlcached_scram');
  });
});

describe('SSL and GSS encryption negotiation', () => {
  it.each([
    ['SSLRequest', SSL_REQUEST_CODE],
    ['GSSENCRequest', GSSENC_REQUEST_CODE],
  ])('%s is answered with the single byte N, and the startup that follows works', async (_name, code) => {
    const raw = await RawClient.connect(proxy.port, { parse: false });
    try {
      raw.write(negotiationRequest(code));
      expect(await raw.until(() => raw.byteCount >= 1)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(raw.bytes()).toEqual(Buffer.from('N'));
      raw.startParsing(1);
      await raw.startup({ user: 'postgres', database: 'test', application_name: uniqueName('proto_ssl') });
      const reply = await raw.request(serialize.query('SELECT 1'));
      expect(reply.length).toBeGreaterThan(0);
    } finally {
      raw.destroy();
    }
  });

  it('pg with ssl: false connects, psql sslmode=prefer connects in clear, sslmode=require is refused', async () => {
    const c = await connectClient(proxy.url(), { ssl: false });
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await c.end();
    const prefer = await psql(proxy.port, ['\\conninfo'], { conninfo: 'sslmode=prefer gssencmode=prefer' });
    expect(prefer.code).toBe(0);
    expect(prefer.stdout).toContain('You are connected to database "test"');
    expect(prefer.stdout).not.toContain('SSL connection');
    const require = await psql(proxy.port, ['SELECT 1'], { conninfo: 'sslmode=require' });
    expect(require.code).not.toBe(0);
    expect(require.stderr).toMatch(/server does not support SSL/);
  });
});

describe('CancelRequest', () => {
  const sleeping = (app: string) => async () => {
    const r = await directQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`,
      [app],
    );
    return r.rows[0]?.n === 1;
  };

  it('postgres.js query.cancel() stops pg_sleep(30) with 57014 within seconds, and the connection goes on', async () => {
    const app = uniqueName('proto_cancel_js');
    const sql = postgres(proxy.url(), { max: 1, fetch_types: false, connection: { application_name: app } });
    try {
      const started = Date.now();
      const q = sql`SELECT pg_sleep(30)`;
      const outcome = q.execute().then(
        () => null,
        (err: unknown) => err as { code?: string },
      );
      expect(await waitFor(sleeping(app), 10_000), 'the sleep reached the database').toBe(true);
      q.cancel();
      const err = await outcome;
      expect(err?.code).toBe('57014');
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(await sql`SELECT 2 AS x`).toEqual([{ x: 2 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('a raw CancelRequest with the key pg received (BackendKeyData) cancels that session\'s query', async () => {
    const app = uniqueName('proto_cancel_pg');
    const c = await connectClient(proxy.url(), { application_name: app });
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const started = Date.now();
      const outcome = rejection(c.query('SELECT pg_sleep(30)'));
      expect(await waitFor(sleeping(app), 10_000)).toBe(true);
      await sendCancel(proxy.port, key.processID, key.secretKey);
      expect((await outcome).code).toBe('57014');
      expect(Date.now() - started).toBeLessThan(8_000);
      expect((await c.query('SELECT 3 AS x')).rows).toEqual([{ x: 3 }]);
    } finally {
      await c.end();
    }
  });

  it('a CancelRequest with a key nobody holds cancels nothing', async () => {
    const c = await connectClient(proxy.url());
    try {
      const running = c.query('SELECT pg_sleep(0.5) AS slept');
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sendCancel(proxy.port, 0x7ffffff0, 12345);
      expect((await running).rows).toEqual([{ slept: '' }]);
    } finally {
      await c.end();
    }
  });
});

describe('LISTEN / NOTIFY', () => {
  it('a client LISTENing through the proxy receives a NOTIFY sent directly to the database while it is idle', async () => {
    const c = await connectClient(proxy.url());
    try {
      const got: pg.Notification[] = [];
      c.on('notification', (n) => got.push(n));
      await c.query(`LISTEN ${CHANNEL}`);
      await directQuery(`NOTIFY ${CHANNEL}, 'hello from behind'`);
      expect(await waitFor(() => got.length > 0, 5_000), 'delivered without the client sending anything').toBe(true);
      expect(got.map((n) => [n.channel, n.payload])).toEqual([[CHANNEL, 'hello from behind']]);
    } finally {
      await c.end();
    }
  });

  it('notifications that arrive inside a result are delivered once, never replayed from the cache', async () => {
    const listener = await connectClient(proxy.url());
    try {
      const got: string[] = [];
      listener.on('notification', (n) => got.push(n.payload ?? ''));
      await listener.query(`LISTEN ${CHANNEL}`);
      const sent = 100;
      const sender = (async () => {
        for (let i = 0; i < sent; i += 1) await directQuery(`NOTIFY ${CHANNEL}, 'n${i}'`);
      })();
      const reads = async () => {
        for (let i = 0; i < 40; i += 1) await listener.query(`SELECT v FROM ${T} WHERE id = ${1 + (i % 2)}`);
      };
      await Promise.all([sender, reads()]);
      await reads(); // all hits now: must not carry notifications along
      expect(await waitFor(() => got.length >= sent, 5_000)).toBe(true);
      await listener.query('SELECT 1');
      expect(got).toHaveLength(sent);
      expect(new Set(got).size).toBe(sent);
    } finally {
      await listener.end();
    }
  });
});

describe('exact reply bytes (differential)', () => {
  const session = async (port: number) => {
    const raw = await RawClient.connect(port);
    await raw.startup({ user: 'postgres', database: 'test', application_name: uniqueName('proto_diff') });
    return raw;
  };
  const simple = serialize.query(`SELECT id, v, n, f, b, ts, by FROM ${T} ORDER BY id`);
  const extended = (binary: boolean) =>
    Buffer.concat([
      serialize.parse({ text: `SELECT id, v, n, f, b, ts, by FROM ${T} WHERE id >= $1 ORDER BY id`, types: [23] }),
      serialize.bind({ values: ['1'], binary }),
      serialize.describe({ type: 'P' }),
      serialize.execute(),
      serialize.sync(),
    ]);

  it.each([
    ['simple query', simple],
    ['extended query, text results', extended(false)],
    ['extended query, binary results', extended(true)],
  ])('%s: the proxy replies with the database\'s exact bytes, on a miss and on a hit', async (_label, message) => {
    const viaProxy = await session(proxy.port);
    const viaDb = await session(PG_PORT);
    try {
      await viaDb.request(serialize.query("SET TimeZone = 'UTC'"));
      await viaProxy.request(serialize.query("SET TimeZone = 'UTC'"));
      const expected = await viaDb.request(message);
      expect(await viaProxy.request(message), 'miss').toEqual(expected);
      expect(await warm(proxy, () => viaProxy.request(message)), 'hit').toEqual(expected);
    } finally {
      viaProxy.destroy();
      viaDb.destroy();
    }
  });
});

describe('Terminate', () => {
  it('closes the client socket cleanly and releases the upstream connection', async () => {
    const app = uniqueName('proto_term');
    const raw = await RawClient.connect(proxy.port);
    await raw.startup({ user: 'postgres', database: 'test', application_name: app });
    expect(await backendsNamed(app)).toBe(1);
    raw.write(terminateMessage());
    expect(await raw.waitClosed(3_000), 'the proxy closed the socket').toBe(true);
    expect(raw.errors()).toEqual([]);
    expect(await waitFor(async () => (await backendsNamed(app)) === 0, 5_000), 'no upstream connection left').toBe(true);
  });

  it('pg client.end() resolves and leaves no upstream connection', async () => {
    const app = uniqueName('proto_end');
    const c = await connectClient(proxy.url(), { application_name: app });
    await c.query('SELECT 1');
    await c.end();
    expect(await waitFor(async () => (await backendsNamed(app)) === 0, 5_000)).toBe(true);
  });
});
