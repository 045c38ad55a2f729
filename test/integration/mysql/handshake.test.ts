// Handshake, authentication and the session commands through the MySQL
// listener: mysql_native_password with good and bad passwords, the
// auth-switch request (ed25519 with the mariadb CLI, COM_CHANGE_USER with
// mysql2), connecting with and without a database, COM_CHANGE_USER,
// COM_RESET_CONNECTION, COM_QUIT, and the connection id a client sees.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import {
  connectMysql,
  directSql,
  dropMyTables,
  ED_USER,
  ed25519UserExists,
  endMyDirect,
  myErrorShape,
  myRejection,
  mysqlCli,
  mysqlCliOk,
  MY_DB1,
  MY_PORT,
  processExists,
  PW_USER,
  RO_USER,
  TEST_PASSWORD,
} from '../../helpers/mysql.js';
import { ed25519AuthPlugins } from '../../helpers/ed25519.js';
import { MyClients, rowsOf, sleep } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_hs');
let proxy: TestProxy;
const clients = new MyClients();
const hasEd25519 = await ed25519UserExists().catch(() => false);

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${T} VALUES (1, 'one'), (2, 'two')`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

/** The id MariaDB gives the proxy's upstream connection for `c`. */
async function upstreamId(c: Awaited<ReturnType<typeof connectMysql>>): Promise<number> {
  return Number((await rowsOf(c, 'SELECT CONNECTION_ID() AS id'))[0]!['id']);
}

/** Who and where the session is, as the server says. */
async function whoami(c: Awaited<ReturnType<typeof connectMysql>>): Promise<Record<string, unknown>> {
  return (await rowsOf(c, 'SELECT CURRENT_USER() AS u, USER() AS login, DATABASE() AS db'))[0]!;
}

describe('mysql_native_password', () => {
  it('root without a password, with a database: the session is what MariaDB gives directly', async () => {
    const viaProxy = await clients.open(proxy.port);
    const direct = await clients.open(MY_PORT);
    expect(await whoami(viaProxy)).toEqual(await whoami(direct));
    expect((await whoami(viaProxy))['db']).toBe('test');
  });

  it('without a database: DATABASE() is NULL and an unqualified name gets ERR 1046, as from MariaDB', async () => {
    const viaProxy = await clients.open(proxy.port, { database: undefined });
    expect((await whoami(viaProxy))['db']).toBeNull();
    const sql = `SELECT v FROM ${T} WHERE id = 1`;
    const err = await myRejection(viaProxy.query(sql));
    expect(err.errno).toBe(1046);
    const direct = await clients.open(MY_PORT, { database: undefined });
    expect(myErrorShape(err)).toEqual(myErrorShape(await myRejection(direct.query(sql))));
    expect(await rowsOf(viaProxy, `SELECT v FROM test.${T} WHERE id = 1`), 'qualified names work').toEqual([{ v: 'one' }]);
  });

  it('a user with a password logs in; the right password is relayed, not stored in the proxy', async () => {
    const c = await clients.open(proxy.port, { user: PW_USER, password: TEST_PASSWORD, database: MY_DB1 });
    const who = await whoami(c);
    expect(who['u']).toMatch(new RegExp(`^${PW_USER}@`));
    expect(who['db']).toBe(MY_DB1);
    expect(who).toEqual(await whoami(await clients.open(MY_PORT, { user: PW_USER, password: TEST_PASSWORD, database: MY_DB1 })));
  });

  it('a wrong password gets MariaDB\'s own ERR 1045 (28000), and so does the next attempt', async () => {
    const opts = { user: PW_USER, password: 'wrong' };
    const want = myErrorShape(await myRejection(connectMysql(MY_PORT, opts)));
    expect(want.errno).toBe(1045);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(myErrorShape(await myRejection(connectMysql(proxy.port, opts))), `attempt ${attempt + 1}`).toEqual(want);
    }
    const c = await clients.open(proxy.port, { user: PW_USER, password: TEST_PASSWORD });
    expect((await whoami(c))['u'], 'the right password still works').toMatch(new RegExp(`^${PW_USER}@`));
  });

  it('an unknown user, an unknown database and a database the user may not use: MariaDB\'s errors (1045, 1049, 1044)', async () => {
    for (const opts of [
      { user: 'sqlcached_nobody', password: 'x' },
      { database: 'sqlcached_no_such_db' },
      { user: RO_USER, password: TEST_PASSWORD, database: MY_DB1 },
    ]) {
      const want = myErrorShape(await myRejection(connectMysql(MY_PORT, opts)));
      expect(myErrorShape(await myRejection(connectMysql(proxy.port, opts))), JSON.stringify(opts)).toEqual(want);
    }
  });

  it('the mariadb CLI logs in with a password, and is refused with a wrong one with MariaDB\'s message', async () => {
    const sql = 'SELECT CURRENT_USER(), DATABASE()';
    const ok = await mysqlCliOk(proxy.port, ['-N'], sql, { user: PW_USER, password: TEST_PASSWORD, db: MY_DB1 });
    expect(ok).toBe(await mysqlCliOk(MY_PORT, ['-N'], sql, { user: PW_USER, password: TEST_PASSWORD, db: MY_DB1 }));
    const bad = await mysqlCli(proxy.port, ['-N'], sql, { user: PW_USER, password: 'wrong' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('ERROR 1045 (28000)');
    expect(bad.stderr).toBe((await mysqlCli(MY_PORT, ['-N'], sql, { user: PW_USER, password: 'wrong' })).stderr);
  });
});

describe.skipIf(!hasEd25519)('ed25519: the server asks for another plugin (auth switch)', () => {
  it('the mariadb CLI logs in as the ed25519 user through the proxy', async () => {
    const sql = 'SELECT CURRENT_USER(), DATABASE(), 1 + 1';
    const viaProxy = await mysqlCliOk(proxy.port, ['-N'], sql, { user: ED_USER, password: TEST_PASSWORD });
    expect(viaProxy).toMatch(new RegExp(`^${ED_USER}@\\S+\\ttest\\t2$`));
    expect(viaProxy).toBe(await mysqlCliOk(MY_PORT, ['-N'], sql, { user: ED_USER, password: TEST_PASSWORD }));
  });

  it('mysql2 (with a client_ed25519 plugin from the test helpers) logs in through the auth switch', async () => {
    const opts = { user: ED_USER, password: TEST_PASSWORD, authPlugins: ed25519AuthPlugins(TEST_PASSWORD) };
    const c = await clients.open(proxy.port, opts);
    expect(await whoami(c)).toEqual(await whoami(await clients.open(MY_PORT, opts)));
    expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`)).toEqual([{ v: 'one' }]);
    const bad = { user: ED_USER, password: 'wrong', authPlugins: ed25519AuthPlugins('wrong') };
    const want = myErrorShape(await myRejection(connectMysql(MY_PORT, bad)));
    expect(myErrorShape(await myRejection(connectMysql(proxy.port, bad)))).toEqual(want);
  });

  it('COM_CHANGE_USER to the ed25519 user (auth switch inside a session)', async () => {
    const c = await clients.open(proxy.port, { authPlugins: ed25519AuthPlugins(TEST_PASSWORD) });
    await c.changeUser({ user: ED_USER, password: TEST_PASSWORD, database: 'test' });
    expect((await whoami(c))['u']).toMatch(new RegExp(`^${ED_USER}@`));
    expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 2`)).toEqual([{ v: 'two' }]);
  });

  it('a wrong ed25519 password gets MariaDB\'s ERR 1045', async () => {
    const r = await mysqlCli(proxy.port, ['-N'], 'SELECT 1', { user: ED_USER, password: 'wrong' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERROR 1045 (28000)');
    expect(r.stderr).toBe((await mysqlCli(MY_PORT, ['-N'], 'SELECT 1', { user: ED_USER, password: 'wrong' })).stderr);
  });
});

describe('session commands', () => {
  // Clients cancel with `KILL QUERY <id from the greeting>` on a second
  // connection (the mariadb CLI on Ctrl-C, mysql2 users by hand): the id the
  // greeting announces must be the one MariaDB knows the session by.
  it('the connection id in the greeting is the upstream connection\'s: KILL QUERY from another connection interrupts it', async () => {
    const c = await clients.open(proxy.port);
    expect(c.threadId, 'mysql2 threadId (from the greeting) = CONNECTION_ID()').toBe(await upstreamId(c));
    const started = Date.now();
    const sleeping = myRejection(rowsOf(c, 'SELECT SLEEP(5) AS s'));
    await sleep(300);
    await directSql(`KILL QUERY ${c.threadId}`);
    expect(myErrorShape(await sleeping), 'ER_QUERY_INTERRUPTED').toMatchObject({ errno: 1317, sqlState: '70100' });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`), 'the connection is usable afterwards').toEqual([{ v: 'one' }]);
  });

  it('COM_CHANGE_USER (changeUser, answered with an auth switch) to another user and database', async () => {
    const c = await clients.open(proxy.port);
    await c.changeUser({ user: PW_USER, password: TEST_PASSWORD, database: MY_DB1 });
    const who = await whoami(c);
    expect(who['u']).toMatch(new RegExp(`^${PW_USER}@`));
    expect(who['db']).toBe(MY_DB1);
    await c.changeUser({ user: PW_USER, password: TEST_PASSWORD, database: 'test' });
    expect(await rowsOf(c, `SELECT v FROM ${T} WHERE id = 2`)).toEqual([{ v: 'two' }]);
  });

  it('COM_CHANGE_USER with a wrong password: the same error as from MariaDB', async () => {
    const run = async (port: number): Promise<unknown> => {
      const c = await connectMysql(port, { user: PW_USER, password: TEST_PASSWORD });
      try {
        return myErrorShape(await myRejection(c.changeUser({ user: PW_USER, password: 'wrong' })));
      } finally {
        c.destroy();
      }
    };
    const viaProxy = await run(proxy.port);
    expect(viaProxy).toMatchObject({ errno: 1045 });
    expect(viaProxy).toEqual(await run(MY_PORT));
  });

  it('COM_RESET_CONNECTION (reset) clears user variables, session settings and temporary tables, as in MariaDB', async () => {
    const run = async (port: number): Promise<unknown[]> => {
      const c = await connectMysql(port);
      try {
        await c.query(`SET @x = 5, time_zone = '+05:00'`);
        await c.query(`CREATE TEMPORARY TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20))`); // shadows the real one
        await c.query(`INSERT INTO ${T} VALUES (1, 'temporary')`);
        const shadowed = await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`);
        await c.reset();
        return [shadowed, await rowsOf(c, 'SELECT @x AS x, @@time_zone AS tz'), await rowsOf(c, `SELECT v FROM ${T} WHERE id = 1`)];
      } finally {
        await c.end();
      }
    };
    const viaProxy = await run(proxy.port);
    expect(viaProxy).toEqual([[{ v: 'temporary' }], [{ x: null, tz: 'SYSTEM' }], [{ v: 'one' }]]);
    expect(viaProxy).toEqual(await run(MY_PORT));
  });

  it('a read cached before COM_RESET_CONNECTION is still served correctly after it', async () => {
    const c = await clients.open(proxy.port);
    const sql = `SELECT v FROM ${T} WHERE id = 2`;
    await warm(proxy, () => rowsOf(c, sql));
    await c.reset();
    expect(await rowsOf(c, sql)).toEqual([{ v: 'two' }]);
    await c.query(`UPDATE ${T} SET v = 'deux' WHERE id = 2`);
    expect(await rowsOf(c, sql)).toEqual([{ v: 'deux' }]);
  });

  it('COM_QUIT (end) closes the upstream connection', async () => {
    const c = await connectMysql(proxy.port);
    const id = await upstreamId(c);
    expect(await processExists(id)).toBe(true);
    await c.end();
    expect(await waitFor(async () => !(await processExists(id)), 5_000), `MariaDB connection ${id} is gone`).toBe(true);
  });

  it('a client that vanishes (socket destroyed) leaves no upstream connection', async () => {
    const c = await connectMysql(proxy.port);
    const id = await upstreamId(c);
    c.destroy();
    expect(await waitFor(async () => !(await processExists(id)), 5_000), `MariaDB connection ${id} is gone`).toBe(true);
  });

  it('a client that vanishes during a long query leaves no upstream connection once the query ends', async () => {
    const c = await connectMysql(proxy.port);
    const id = await upstreamId(c);
    void c.query('SELECT SLEEP(1)').catch(() => {});
    await sleep(100);
    c.destroy();
    expect(await waitFor(async () => !(await processExists(id)), 6_000), `MariaDB connection ${id} is gone`).toBe(true);
  });
});
