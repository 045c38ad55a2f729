// Adversarial review: session state that shapes results (promise 3, no
// leaks) and what a client observes about its own session (promise 1,
// transparent), where the state changes without a SET the proxy can read: a
// stored function called from a SELECT, SET GLOBAL then a new connection,
// the proxy's own look-ups on the client's connection, answers from cache
// that the server never ran (FOUND_ROWS, SHOW WARNINGS); plus what held up
// (SET STATEMENT, prepared SET, COM_RESET_CONNECTION, COM_CHANGE_USER).
//
// Each test asserts MariaDB's own answer, read directly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { directSql, endMyDirect, MY_PORT, myRejection, PW_USER, RO_USER, TEST_PASSWORD, type MyOptions } from '../../helpers/mysql.js';
import { cachedRows, MyClients, rowsOf, sleep, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
const drops: string[] = [];
const name = (p: string): string => uniqueName(p);
const RAW: MyOptions = { dateStrings: true };

let T: string; // id, v, ts TIMESTAMP, d DATE

beforeAll(async () => {
  T = name('rs_base');
  drops.push(`DROP TABLE IF EXISTS ${T}`);
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40), ts TIMESTAMP NULL, d DATE)`);
  await directSql(`INSERT INTO ${T} VALUES (1, 'real', '2024-01-01 12:00:00', '2024-03-04'), (2, 'real-2', '2024-06-30 23:30:00', '2024-12-30'), (3, 'c', NULL, NULL)`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const d of drops.reverse()) await directSql(d).catch(() => {});
  await endMyDirect();
});

describe('session state changed by a stored function called from a SELECT', () => {
  it('a function that SETs time_zone: the caller\'s later TIMESTAMP reads follow the new zone', async () => {
    const fn = name('rs_settz');
    drops.push(`DROP FUNCTION IF EXISTS ${fn}`);
    await directSql(`CREATE FUNCTION ${fn}() RETURNS INT NOT DETERMINISTIC BEGIN SET time_zone = '+05:00'; RETURN 1; END`);
    const read = `SELECT id, ts FROM ${T} WHERE id = 1`;
    const other = await clients.open(proxy.port, RAW);
    const caller = await clients.open(proxy.port, RAW);
    const before = await cachedRows(proxy, other, read);
    expect(await rowsOf(caller, read)).toEqual(before);
    await caller.query(`SELECT ${fn}() AS r`);
    const direct = await clients.open(MY_PORT, RAW);
    await direct.query(`SELECT ${fn}() AS r`);
    const want = await rowsOf(direct, read);
    expect(want, 'the zone changes the answer').not.toEqual(before);
    expect(await rowsOf(caller, 'SELECT @@time_zone AS tz')).toEqual([{ tz: '+05:00' }]);
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(caller, read), `the caller after the function set time_zone (${i})`).toEqual(want);
    expect(await rowsOf(other, read), 'a session still in the default zone is not served the caller\'s answer').toEqual(before);
  });

  it('a function that creates a TEMPORARY table shadowing a real one: no session is served the other\'s rows', async () => {
    const fn = name('rs_mktmp');
    drops.push(`DROP FUNCTION IF EXISTS ${fn}`);
    await directSql(
      `CREATE FUNCTION ${fn}() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA BEGIN ` +
        `CREATE TEMPORARY TABLE IF NOT EXISTS ${T} (id INT PRIMARY KEY, v VARCHAR(40), ts TIMESTAMP NULL, d DATE); ` +
        `INSERT INTO ${T} (id, v) VALUES (1, 'TEMPORARY') ON DUPLICATE KEY UPDATE v = 'TEMPORARY'; RETURN 1; END`,
    );
    const read = `SELECT id, v FROM ${T} WHERE id = 1`;
    const other = await clients.open(proxy.port);
    const owner = await clients.open(proxy.port);
    expect(await cachedRows(proxy, other, read)).toEqual([{ id: 1, v: 'real' }]);
    expect(await rowsOf(owner, read)).toEqual([{ id: 1, v: 'real' }]);
    await owner.query(`SELECT ${fn}() AS r`);
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(owner, read), `the owner reads its temporary table (${i})`).toEqual([{ id: 1, v: 'TEMPORARY' }]);
    await proxy.invalidate({ all: true });
    for (let i = 0; i < 3; i += 1) await rowsOf(owner, read);
    expect(await rowsOf(other, read), 'another session reads the real table').toEqual([{ id: 1, v: 'real' }]);
    const late = await clients.open(proxy.port);
    expect(await rowsOf(late, read), 'a new session reads the real table').toEqual([{ id: 1, v: 'real' }]);
  });

  it('INSERT … VALUES (f()) where f SETs lc_time_names: later MONTHNAME reads follow it', async () => {
    const fn = name('rs_setlc');
    const log = name('rs_lclog');
    drops.push(`DROP FUNCTION IF EXISTS ${fn}`, `DROP TABLE IF EXISTS ${log}`);
    await directSql(`CREATE TABLE ${log} (n INT)`);
    await directSql(`CREATE FUNCTION ${fn}() RETURNS INT NOT DETERMINISTIC BEGIN SET lc_time_names = 'de_DE'; RETURN 1; END`);
    const read = `SELECT id, MONTHNAME(d) AS m FROM ${T} WHERE id = 1`;
    const other = await clients.open(proxy.port);
    const caller = await clients.open(proxy.port);
    expect(await cachedRows(proxy, other, read)).toEqual([{ id: 1, m: 'March' }]);
    await rowsOf(caller, read);
    await caller.query(`INSERT INTO ${log} VALUES (${fn}())`);
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(caller, read), `after the function set lc_time_names = de_DE (${i})`).toEqual([{ id: 1, m: 'März' }]);
    expect(await rowsOf(other, read), 'an English session is not served the German answer').toEqual([{ id: 1, m: 'March' }]);
  });
});

describe('SET GLOBAL, then a new connection', () => {
  it('system_versioning_asof (a variable the key does not hold): a new session reads the past, not the cache', async () => {
    const vt = name('rs_vers');
    drops.push(`DROP TABLE IF EXISTS ${vt}`);
    await directSql(`CREATE TABLE ${vt} (id INT PRIMARY KEY, v VARCHAR(20)) WITH SYSTEM VERSIONING; INSERT INTO ${vt} VALUES (1, 'old')`);
    await sleep(1100);
    const t = (await directSql<{ t: string }[]>("SELECT DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f') AS t"))[0]!.t;
    await sleep(1100);
    const w = await clients.open(proxy.port);
    await w.query(`UPDATE ${vt} SET v = 'new' WHERE id = 1`);
    const read = `SELECT v FROM ${vt} WHERE id = 1`;
    expect(await cachedRows(proxy, w, read)).toEqual([{ v: 'new' }]);
    try {
      await directSql(`SET GLOBAL system_versioning_asof = '${t}'`);
      const fresh = await clients.open(proxy.port);
      const direct = await clients.open(MY_PORT);
      expect(await rowsOf(direct, read), 'MariaDB reads as of the global setting').toEqual([{ v: 'old' }]);
      expect(await rowsOf(fresh, read), 'a new proxy session').toEqual([{ v: 'old' }]);
    } finally {
      await directSql('SET GLOBAL system_versioning_asof = DEFAULT');
    }
  });

  it('SET GLOBAL time_zone (a keyed variable): a new session gets its own answer', async () => {
    const read = `SELECT id, ts FROM ${T} WHERE id = 2`;
    const old = await clients.open(proxy.port, RAW);
    const before = await cachedRows(proxy, old, read);
    try {
      await directSql("SET GLOBAL time_zone = '+09:00'");
      const fresh = await clients.open(proxy.port, RAW);
      const direct = await clients.open(MY_PORT, RAW);
      const want = await rowsOf(direct, read);
      expect(want).not.toEqual(before);
      expect(await rowsOf(fresh, read)).toEqual(want);
    } finally {
      await directSql('SET GLOBAL time_zone = DEFAULT');
    }
    expect(await rowsOf(old, read), 'the old session keeps its zone').toEqual(before);
  });
});

describe('what the server never saw: answers from cache and the proxy\'s own look-ups', () => {
  it('ROW_COUNT() inside the next statement is the previous statement\'s count, even when the proxy must look a table up first', async () => {
    const t = name('rs_rc_t');
    const log = name('rs_rc_log');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP TABLE IF EXISTS ${log}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, n INT); INSERT INTO ${t} VALUES (1, 0), (2, 0), (3, 0); CREATE TABLE ${log} (rc INT)`);
    const c = await clients.open(proxy.port);
    await c.query(`UPDATE ${t} SET n = n + 1`);
    await c.query(`INSERT INTO ${log} VALUES (ROW_COUNT())`);
    expect(await truth(`SELECT rc FROM ${log}`), 'ROW_COUNT() of the UPDATE (3 rows), as MariaDB computes it').toEqual([{ rc: 3 }]);
  });

  it('FOUND_ROWS() after a SELECT answered from cache is that SELECT\'s row count', async () => {
    const c = await clients.open(proxy.port);
    const read = `SELECT id FROM ${T} ORDER BY id LIMIT 2`;
    await cachedRows(proxy, c, read);
    await rowsOf(c, `SELECT id FROM ${T} WHERE id > 0 ORDER BY id`); // 3 rows, run by the server
    expect(await rowsOf(c, read)).toEqual([{ id: 1 }, { id: 2 }]); // a hit
    const direct = await clients.open(MY_PORT);
    await rowsOf(direct, `SELECT id FROM ${T} WHERE id > 0 ORDER BY id`);
    await rowsOf(direct, read);
    const want = await rowsOf(direct, 'SELECT FOUND_ROWS() AS n');
    expect(want).toEqual([{ n: 2 }]);
    expect(await rowsOf(c, 'SELECT FOUND_ROWS() AS n')).toEqual(want);
  });

  it('SHOW WARNINGS after a SELECT answered from cache is empty, as after the same SELECT in MariaDB', async () => {
    const t = name('rs_warn');
    drops.push(`DROP TABLE IF EXISTS ${t}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY); INSERT INTO ${t} VALUES (1)`);
    const c = await clients.open(proxy.port);
    const read = `SELECT id FROM ${T} ORDER BY id`;
    await cachedRows(proxy, c, read);
    await c.query(`INSERT IGNORE INTO ${t} VALUES (1)`); // a duplicate: warning 1062
    await rowsOf(c, read); // a hit
    const direct = await clients.open(MY_PORT);
    await direct.query(`INSERT IGNORE INTO ${t} VALUES (1)`);
    await rowsOf(direct, read);
    const [want] = await direct.query('SHOW WARNINGS');
    const [got] = await c.query('SHOW WARNINGS');
    expect(got).toEqual(want);
  });
});

describe('what held up (defended here)', () => {
  it('SET STATEMENT time_zone = … FOR SELECT: never cached, never served the default answer', async () => {
    const c = await clients.open(proxy.port, RAW);
    const read = `SELECT id, ts FROM ${T} WHERE id = 1`;
    const base = await cachedRows(proxy, c, read);
    const direct = await clients.open(MY_PORT, RAW);
    const q = `SET STATEMENT time_zone = '+03:00' FOR ${read}`;
    const want = await rowsOf(direct, q);
    expect(want).not.toEqual(base);
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(c, q)).toEqual(want);
    expect(await rowsOf(c, read)).toEqual(base);
  });

  it('SET time_zone through a prepared statement (COM_STMT_EXECUTE with a parameter) changes the key', async () => {
    const c = await clients.open(proxy.port, RAW);
    const read = `SELECT id, ts FROM ${T} WHERE id = 2`;
    const base = await cachedRows(proxy, c, read);
    await c.execute('SET time_zone = ?', ['+07:00']);
    const direct = await clients.open(MY_PORT, RAW);
    await direct.query("SET time_zone = '+07:00'");
    const want = await rowsOf(direct, read);
    expect(want).not.toEqual(base);
    expect(await rowsOf(c, read)).toEqual(want);
  });

  it('session variables changed in a multi-statement that fails afterwards are read again', async () => {
    const c = await clients.open(proxy.port, { ...RAW, multipleStatements: true });
    const read = `SELECT id, ts FROM ${T} WHERE id = 1`;
    const base = await cachedRows(proxy, c, read);
    await myRejection(c.query(`SET time_zone = '-04:00'; SELECT * FROM ${name('rs_no_such')}`));
    const direct = await clients.open(MY_PORT, RAW);
    await direct.query("SET time_zone = '-04:00'");
    const want = await rowsOf(direct, read);
    expect(want).not.toEqual(base);
    expect(await rowsOf(c, read)).toEqual(want);
  });

  it('COM_RESET_CONNECTION (mysql2 reset()): settings back to the defaults, the temporary table gone', async () => {
    const c = await clients.open(proxy.port, RAW);
    const read = `SELECT id, v, ts FROM ${T} WHERE id = 1`;
    const base = await cachedRows(proxy, c, read);
    await c.query("SET time_zone = '+02:00'");
    await c.query(`CREATE TEMPORARY TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40), ts TIMESTAMP NULL)`);
    await c.query(`INSERT INTO ${T} VALUES (1, 'tmp', NULL)`);
    expect(await rowsOf(c, read)).toEqual([{ id: 1, v: 'tmp', ts: null }]);
    await c.reset();
    expect(await rowsOf(c, read), 'after reset: the real table, default zone').toEqual(base);
    expect(await warm(proxy, () => rowsOf(c, read)), 'and cacheable again').toEqual(base);
  });

  it('COM_CHANGE_USER to a user with fewer grants after root cached rows: ERR 1142, as from MariaDB', async () => {
    const t = name('rs_cu');
    drops.push(`DROP TABLE IF EXISTS sqlcached_db1.${t}`);
    await directSql(`CREATE TABLE sqlcached_db1.${t} (id INT PRIMARY KEY); INSERT INTO sqlcached_db1.${t} VALUES (1)`);
    const c = await clients.open(proxy.port);
    const read = `SELECT id FROM sqlcached_db1.${t}`;
    await cachedRows(proxy, c, read);
    await c.changeUser({ user: RO_USER, password: TEST_PASSWORD, database: 'test' });
    const err = await myRejection(c.query(read));
    expect(err.errno).toBe(1142);
    await c.changeUser({ user: PW_USER, password: TEST_PASSWORD, database: 'sqlcached_db1' });
    expect(await rowsOf(c, `SELECT id FROM ${t}`)).toEqual([{ id: 1 }]);
  });

  it('column-level grant: a user allowed one column never gets another user\'s SELECT * answer', async () => {
    const t = name('rs_colg');
    drops.push(`DROP TABLE IF EXISTS ${t}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, secret VARCHAR(20)); INSERT INTO ${t} VALUES (1, 's3cret')`);
    const user = name('rs_colu');
    drops.push(`DROP USER IF EXISTS '${user}'@'%'`);
    await directSql(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT (id) ON test.${t} TO '${user}'@'%'`);
    const root = await clients.open(proxy.port);
    await cachedRows(proxy, root, `SELECT * FROM ${t}`);
    const limited = await clients.open(proxy.port, { user, password: 'pw' });
    const directLimited = await clients.open(MY_PORT, { user, password: 'pw' });
    const want = await myRejection(directLimited.query(`SELECT * FROM ${t}`));
    const err = await myRejection(limited.query(`SELECT * FROM ${t}`));
    expect([err.errno, err.sqlMessage]).toEqual([want.errno, want.sqlMessage]);
    expect(await rowsOf(limited, `SELECT id FROM ${t}`)).toEqual([{ id: 1 }]);
  });

  it('NO_BACKSLASH_ESCAPES: the same bytes are another literal, and a write\'s table is still found', async () => {
    const t = name('rs_nbe');
    drops.push(`DROP TABLE IF EXISTS ${t}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${t} VALUES (1, 'a\\\\'), (2, 'b')`);
    const plain = await clients.open(proxy.port);
    const nbe = await clients.open(proxy.port);
    await nbe.query("SET sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    const read = `SELECT id FROM ${t} WHERE v = 'a\\\\'`;
    const directNbe = await clients.open(MY_PORT);
    await directNbe.query("SET sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    expect(await cachedRows(proxy, plain, read)).toEqual(await truth(read));
    expect(await rowsOf(nbe, read)).toEqual(await rowsOf(directNbe, read));
    const r2 = `SELECT id, v FROM ${t} WHERE id = 2`;
    await cachedRows(proxy, plain, r2);
    // Under NO_BACKSLASH_ESCAPES `'\'` is one backslash: the statement goes on to write the table.
    await nbe.query(`UPDATE ${t} SET v = '\\' WHERE id = 2`);
    expect(await rowsOf(plain, r2)).toEqual(await truth(r2));
  });
});
