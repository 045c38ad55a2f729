// Session state that shapes results (DESIGN promise 3: no leaks): after SET
// NAMES, time_zone, sql_mode, lc_time_names, div_precision_increment,
// default_week_format, sql_select_limit, group_concat_max_len, or a
// temporary table that shadows a real one, a session gets exactly the bytes
// MariaDB sends for its own settings — never another session's cached answer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TypeCast } from 'mysql2';
import { uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { answerShape, connectMysql, directSql, dropMyTables, endMyDirect, MY_PORT, type MyConnection, type MyOptions } from '../../helpers/mysql.js';
import { MyClients, rowsOf } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_ctx');
let proxy: TestProxy;
const clients = new MyClients();

/** Every string-ish column as the raw bytes the server sent (mysql2 would otherwise decode by the column charset). */
const rawBytes: TypeCast = (field, next) => (['VAR_STRING', 'STRING', 'BLOB'].includes(field.type) ? field.buffer() : next());
/** mysql2 connects with utf8mb4_unicode_ci (224): SET NAMES back to exactly that. */
const UTF8_AGAIN = 'SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci';
const RAW: MyOptions = { typeCast: rawBytes, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true };

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40), ts TIMESTAMP NULL, day DATE, n INT) CHARACTER SET utf8mb4`);
  await directSql(
    `INSERT INTO ${T} VALUES (1, 'café ✓', '2024-01-01 12:00:00', '2024-03-04', 1), (2, 'plain', '2024-06-30 23:30:00', '2024-12-30', 2), (3, 'x', NULL, '2025-01-01', 3)`,
  );
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

/**
 * Read through the proxy until it is a counted hit and return that answer.
 * A proxy that declines to store the answer at all (a result with warnings
 * is not stored: SHOW WARNINGS must stay right) is correct too; the
 * comparisons with MariaDB then still decide.
 */
async function cachedOrNot<T>(read: () => Promise<T>, what: string): Promise<T> {
  try {
    return await warm(proxy, read);
  } catch (err) {
    if (!/never answered from cache/.test(String(err))) throw err;
    console.info(`[session-context] not stored by the proxy: ${what}`);
    return read();
  }
}

/**
 * `query` is cached by a session with default settings; then a second proxy
 * session runs `set` and must get what a direct session with `set` gets
 * (bytes and column metadata), and after `reset` what the default gets again.
 * The first session must still get its own answer throughout.
 */
async function expectSettingRespected(set: string, reset: string, query: string): Promise<void> {
  const base = await clients.open(proxy.port, RAW);
  const alt = await clients.open(proxy.port, RAW);
  const directBase = await clients.open(MY_PORT, RAW);
  const directAlt = await clients.open(MY_PORT, RAW);
  await directAlt.query(set);

  const want = answerShape(await directBase.query(query));
  const wantAlt = answerShape(await directAlt.query(query));
  expect(wantAlt, `the setting changes the answer (else this test proves nothing): ${set}`).not.toEqual(want);

  expect(answerShape(await cachedOrNot(() => base.query(query), query)), 'the default session, from cache').toEqual(want);
  await alt.query(set);
  expect(answerShape(await alt.query(query)), `after ${set}`).toEqual(wantAlt);
  expect(answerShape(await alt.query(query)), `after ${set}, again`).toEqual(wantAlt);
  expect(answerShape(await base.query(query)), 'the default session is not served the other setting\'s answer').toEqual(want);
  await alt.query(reset);
  expect(answerShape(await alt.query(query)), `after ${reset}`).toEqual(want);

  // And the other way round: the setting's answer cached first, then a default session.
  const fresh = await clients.open(proxy.port, RAW);
  await proxy.invalidate({ all: true });
  await alt.query(set);
  expect(answerShape(await cachedOrNot(() => alt.query(query), `${set}; ${query}`)), `${set}, from cache`).toEqual(wantAlt);
  expect(answerShape(await fresh.query(query)), 'a default session after the setting\'s answer was cached').toEqual(want);
}

describe('settings that shape results', () => {
  it('SET NAMES latin1: strings are converted (✓ becomes ?) and the column charset is latin1', async () => {
    await expectSettingRespected('SET NAMES latin1', UTF8_AGAIN, `SELECT id, v FROM ${T} ORDER BY id`);
  });

  it('SET character_set_results = latin1 alone', async () => {
    await expectSettingRespected('SET character_set_results = latin1', UTF8_AGAIN, `SELECT v FROM ${T} WHERE id = 1`);
  });

  it('SET time_zone = \'+05:00\': a TIMESTAMP column reads five hours later', async () => {
    await expectSettingRespected(`SET time_zone = '+05:00'`, 'SET time_zone = DEFAULT', `SELECT id, ts FROM ${T} ORDER BY id`);
  });

  it('SET @@session.time_zone (the other spelling)', async () => {
    await expectSettingRespected(`SET @@session.time_zone = '-03:30'`, `SET @@session.time_zone = 'SYSTEM'`, `SELECT ts FROM ${T} WHERE id = 2`);
  });

  it('SET sql_mode = PIPES_AS_CONCAT: || concatenates instead of OR', async () => {
    await expectSettingRespected(`SET sql_mode = 'PIPES_AS_CONCAT'`, 'SET sql_mode = DEFAULT', `SELECT v || 'x' AS c FROM ${T} WHERE id = 2`);
  });

  it('SET sql_mode = ANSI_QUOTES: "v" is a column, not a string', async () => {
    await expectSettingRespected(`SET SESSION sql_mode = 'ANSI_QUOTES'`, 'SET SESSION sql_mode = DEFAULT', `SELECT "v" AS q FROM ${T} WHERE id = 2`);
  });

  it('SET sql_mode = NO_BACKSLASH_ESCAPES: the same literal means other bytes', async () => {
    await expectSettingRespected(`SET sql_mode = 'NO_BACKSLASH_ESCAPES'`, 'SET sql_mode = DEFAULT', `SELECT v, 'a\\tb' AS lit FROM ${T} WHERE id = 2`);
  });

  it('SET lc_time_names = \'de_DE\': month and day names', async () => {
    await expectSettingRespected(`SET lc_time_names = 'de_DE'`, `SET lc_time_names = 'en_US'`, `SELECT DATE_FORMAT(day, '%W %M') AS w FROM ${T} WHERE id = 1`);
  });

  it('SET div_precision_increment = 8', async () => {
    await expectSettingRespected('SET div_precision_increment = 8', 'SET div_precision_increment = DEFAULT', `SELECT n / 3 AS q FROM ${T} ORDER BY id`);
  });

  it('SET default_week_format = 1', async () => {
    await expectSettingRespected('SET default_week_format = 1', 'SET default_week_format = DEFAULT', `SELECT WEEK(day) AS w FROM ${T} ORDER BY id`);
  });

  it('SET sql_select_limit = 1: fewer rows', async () => {
    await expectSettingRespected('SET sql_select_limit = 1', 'SET sql_select_limit = DEFAULT', `SELECT id FROM ${T} ORDER BY id`);
  });

  it('SET group_concat_max_len = 4: a truncated GROUP_CONCAT', async () => {
    await expectSettingRespected('SET group_concat_max_len = 4', 'SET group_concat_max_len = DEFAULT', `SELECT GROUP_CONCAT(v ORDER BY id) AS g FROM ${T}`);
  });

  it('a session that chose latin1 in the handshake (mysql2 `charset`) is not served a utf8mb4 session\'s answer', async () => {
    const query = `SELECT v FROM ${T} WHERE id = 1`;
    const utf = await clients.open(proxy.port, { ...RAW, charset: 'UTF8MB4_GENERAL_CI' });
    const latin = await clients.open(proxy.port, { ...RAW, charset: 'LATIN1_SWEDISH_CI' });
    const directLatin = await connectMysql(MY_PORT, { ...RAW, charset: 'LATIN1_SWEDISH_CI' });
    try {
      await warm(proxy, () => utf.query(query));
      expect(answerShape(await latin.query(query))).toEqual(answerShape(await directLatin.query(query)));
    } finally {
      await directLatin.end();
    }
  });
});

describe('temporary tables', () => {
  it('a TEMPORARY table shadowing a real one: its session reads the temporary rows, others the real ones', async () => {
    const sql = `SELECT id, v FROM ${T} WHERE id = 1`;
    const owner = await clients.open(proxy.port);
    const other = await clients.open(proxy.port);
    expect(await warm(proxy, () => rowsOf(other, sql))).toEqual([{ id: 1, v: 'café ✓' }]);
    await owner.query(`CREATE TEMPORARY TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40))`);
    await owner.query(`INSERT INTO ${T} VALUES (1, 'temporary')`);
    expect(await rowsOf(owner, sql), 'the owner reads its temporary table').toEqual([{ id: 1, v: 'temporary' }]);
    expect(await rowsOf(owner, sql), 'again').toEqual([{ id: 1, v: 'temporary' }]);
    expect(await rowsOf(other, sql), 'another session reads the real table').toEqual([{ id: 1, v: 'café ✓' }]);
    await owner.query(`UPDATE ${T} SET v = 'temporary-2' WHERE id = 1`);
    expect(await rowsOf(owner, sql)).toEqual([{ id: 1, v: 'temporary-2' }]);
    expect(await rowsOf(other, sql), 'a write to the temporary table is not the real table').toEqual([{ id: 1, v: 'café ✓' }]);
    await owner.query(`DROP TEMPORARY TABLE ${T}`);
    expect(await rowsOf(owner, sql), 'after DROP TEMPORARY TABLE: the real one').toEqual([{ id: 1, v: 'café ✓' }]);
  });

  it('a temporary table\'s rows are never served to a new session that has none', async () => {
    const sql = `SELECT id, v FROM ${T} WHERE id = 2`;
    const owner = await clients.open(proxy.port);
    await owner.query(`CREATE TEMPORARY TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40))`);
    await owner.query(`INSERT INTO ${T} VALUES (2, 'temporary')`);
    for (let k = 0; k < 3; k += 1) expect(await rowsOf(owner, sql)).toEqual([{ id: 2, v: 'temporary' }]);
    const late = await clients.open(proxy.port);
    expect(await rowsOf(late, sql)).toEqual([{ id: 2, v: 'plain' }]);
  });
});

describe('user variables', () => {
  it('a SELECT using @var answers for the current value every time', async () => {
    const c: MyConnection = await clients.open(proxy.port);
    for (const id of [1, 2, 1, 3, 3]) {
      await c.query(`SET @want = ${id}`);
      expect(await rowsOf(c, `SELECT id FROM ${T} WHERE id = @want`), `@want = ${id}`).toEqual([{ id }]);
    }
  });
});
