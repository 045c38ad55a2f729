// Users with different GRANTs (DESIGN promise 3: a cached result is served
// only to a session that would have got the same bytes): sqlcached_ro may
// only SELECT on test.*, so a table in sqlcached_db1 is denied to it with
// ERR 1142 even after root has cached that very query through the proxy —
// whether it logs in as itself, arrives by COM_CHANGE_USER, or loses a role.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import {
  directSql,
  endMyDirect,
  myErrorShape,
  myRejection,
  mysqlCli,
  MY_DB1,
  MY_PORT,
  PW_USER,
  RO_USER,
  TEST_PASSWORD,
} from '../../helpers/mysql.js';
import { cachedRows, MyClients, rowsOf } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const G = `${MY_DB1}.${uniqueName('my_secret')}`; // root and sqlcached_pw may read it, sqlcached_ro may not
const OPEN = uniqueName('my_open'); // in test: everyone may read it
const ROLE = uniqueName('my_role');
const HOSTS = ['%', 'localhost', '127.0.0.1'];
let proxy: TestProxy;
const clients = new MyClients();
const secret = `SELECT id, secret FROM ${G} ORDER BY id`;
const ro = { user: RO_USER, password: TEST_PASSWORD };

beforeAll(async () => {
  await directSql(`CREATE TABLE ${G} (id INT PRIMARY KEY, secret VARCHAR(40)); INSERT INTO ${G} VALUES (1, 'top secret'), (2, 'also secret')`);
  await directSql(`CREATE TABLE ${OPEN} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${OPEN} VALUES (1, 'public')`);
  await directSql(`CREATE ROLE ${ROLE}; GRANT SELECT ON ${G} TO ${ROLE}`);
  for (const h of HOSTS) await directSql(`GRANT ${ROLE} TO '${RO_USER}'@'${h}'`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directSql(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
  await directSql(`DROP TABLE IF EXISTS ${G}, ${OPEN}`);
  await endMyDirect();
});

describe('no rows across users with different GRANTs', () => {
  it('root caches a read of a table sqlcached_ro may not read; sqlcached_ro gets ERR 1142, as from MariaDB', async () => {
    const root = await clients.open(proxy.port);
    const rows = await cachedRows(proxy, root, secret);
    expect(rows).toHaveLength(2);
    const want = myErrorShape(await myRejection((await clients.open(MY_PORT, ro)).query(secret)));
    expect(want).toMatchObject({ errno: 1142, sqlState: '42000' });
    const low = await clients.open(proxy.port, ro);
    for (let k = 0; k < 3; k += 1) expect(myErrorShape(await myRejection(low.query(secret))), `attempt ${k + 1}`).toEqual(want);
    expect(await rowsOf(low, `SELECT v FROM ${OPEN} WHERE id = 1`), 'and what it may read, it reads').toEqual([{ v: 'public' }]);
  });

  it('the same through prepared statements: ERR 1142 at prepare, as from MariaDB', async () => {
    const root = await clients.open(proxy.port);
    await warm(proxy, () => root.execute(`SELECT secret FROM ${G} WHERE id = ?`, [1]));
    const want = myErrorShape(await myRejection((await clients.open(MY_PORT, ro)).execute(`SELECT secret FROM ${G} WHERE id = ?`, [1])));
    const low = await clients.open(proxy.port, ro);
    expect(myErrorShape(await myRejection(low.execute(`SELECT secret FROM ${G} WHERE id = ?`, [1])))).toEqual(want);
  });

  it('sqlcached_ro arriving by COM_CHANGE_USER on a connection that cached the rows as root gets ERR 1142', async () => {
    const c = await clients.open(proxy.port, { user: PW_USER, password: TEST_PASSWORD });
    expect(await cachedRows(proxy, c, secret)).toHaveLength(2);
    await c.changeUser({ ...ro, database: 'test' });
    expect(myErrorShape(await myRejection(c.query(secret)))).toMatchObject({ errno: 1142 });
  });

  it('the mariadb CLI as sqlcached_ro: the same ERROR 1142 text as from MariaDB', async () => {
    const root = await clients.open(proxy.port);
    await cachedRows(proxy, root, secret);
    const viaProxy = await mysqlCli(proxy.port, [], `${secret};`, ro);
    expect(viaProxy.code).not.toBe(0);
    expect(viaProxy.stderr).toContain('ERROR 1142 (42000)');
    expect(viaProxy.stderr).toBe((await mysqlCli(MY_PORT, [], `${secret};`, ro)).stderr);
  });

  it('a role: SET ROLE lets sqlcached_ro read, SET ROLE NONE takes it away again — even with the rows cached', async () => {
    const root = await clients.open(proxy.port);
    expect(await cachedRows(proxy, root, secret), 'cached by root').toHaveLength(2);
    const low = await clients.open(proxy.port, ro);
    expect(myErrorShape(await myRejection(low.query(secret)))).toMatchObject({ errno: 1142 });
    await low.query(`SET ROLE ${ROLE}`);
    for (let k = 0; k < 3; k += 1) expect(await rowsOf(low, secret), 'with the role').toEqual(await rowsOf(root, secret));
    await low.query('SET ROLE NONE');
    expect(myErrorShape(await myRejection(low.query(secret))), 'without the role again').toMatchObject({ errno: 1142 });
    const other = await clients.open(proxy.port, ro);
    expect(myErrorShape(await myRejection(other.query(secret))), 'a new session without the role').toMatchObject({ errno: 1142 });
  });

  it('a user allowed to read gets the rows, and fresh ones after root writes', async () => {
    const root = await clients.open(proxy.port);
    const pw = await clients.open(proxy.port, { user: PW_USER, password: TEST_PASSWORD });
    expect(await cachedRows(proxy, pw, secret)).toHaveLength(2);
    await root.query(`UPDATE ${G} SET secret = 'rotated' WHERE id = 1`);
    expect(await rowsOf(pw, secret)).toEqual([
      { id: 1, secret: 'rotated' },
      { id: 2, secret: 'also secret' },
    ]);
  });

  it('CURRENT_USER() and USER() answer for the session\'s own user, never another\'s', async () => {
    const root = await clients.open(proxy.port);
    const low = await clients.open(proxy.port, ro);
    const sql = `SELECT CURRENT_USER() AS u, v FROM ${OPEN} WHERE id = 1`;
    for (let k = 0; k < 3; k += 1) {
      expect(String((await rowsOf(root, sql))[0]!['u'])).toMatch(/^root@/);
      expect(String((await rowsOf(low, sql))[0]!['u'])).toMatch(new RegExp(`^${RO_USER}@`));
    }
  });
});
