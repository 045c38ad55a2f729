// SET and USE: what the MySQL session does to its cache key. A keyed setting
// missed is a leak (a result shaped by one time_zone served under another);
// a harmless one tainting is a lost hit ratio.

import { describe, expect, it } from 'vitest';
import type { SessionEffect } from '../../../src/core/types.js';
import { MYSQL_HARMLESS_SETTINGS, MYSQL_KEYED_SETTINGS } from '../../../src/sql/mysql-settings.js';
import { type Row, table } from './mysql-rows.js';

const set = (name: string, value: string | null): SessionEffect => ({ type: 'set', name, value, local: false });
const taint = (detail: string): SessionEffect => ({ type: 'taint', reason: 'session-state', detail });
const NONE: SessionEffect = { type: 'none' };
const row = (sql: string, effect: SessionEffect, extra: Partial<Row> = {}): Row => ({ sql, kind: 'session-set', effects: [effect], ...extra });

table('a SET of a keyed setting becomes a set effect (the session reads every keyed setting back)', [
  row("SET time_zone = '+00:00'", set('time_zone', '+00:00')),
  row("SET @@time_zone = '+00:00'", set('time_zone', '+00:00')),
  row("SET @@session.time_zone = 'UTC'", set('time_zone', 'UTC')),
  row("SET SESSION sql_mode = 'ANSI'", set('sql_mode', 'ANSI')),
  row("SET LOCAL sql_mode = 'ANSI'", set('sql_mode', 'ANSI')),
  row("SET @@local.lc_time_names = 'de_DE'", set('lc_time_names', 'de_DE')),
  row('SET sql_mode = TRADITIONAL', set('sql_mode', 'TRADITIONAL')),
  row("SET sql_mode = 'a\\'b'", set('sql_mode', "a'b")),
  row("SET sql_mode = 'a\\'", set('sql_mode', 'a\\'), { noEscapes: true }),
  row('SET div_precision_increment = 8', set('div_precision_increment', '8')),
  row('SET SESSION group_concat_max_len = -1', set('group_concat_max_len', '-1')),
  row('SET sql_select_limit = DEFAULT', set('sql_select_limit', null)),
  row('SET `time_zone` = SYSTEM', set('time_zone', 'SYSTEM')),
  row("SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')", set('sql_mode', null)),
  row("SET tx_isolation = 'READ-COMMITTED'", set('transaction_isolation', 'READ-COMMITTED')),
  row('SET NAMES utf8mb4', set('names', 'utf8mb4')),
  row("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'", set('names', 'utf8mb4')),
  row('SET NAMES DEFAULT', set('names', null)),
  row('SET CHARACTER SET utf8', set('charset', 'utf8')),
  row('SET CHARSET latin1', set('charset', 'latin1')),
  row('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', set('transaction_isolation', 'READ-COMMITTED')),
  row('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', set('transaction_isolation', 'REPEATABLE-READ')),
  row('SET LOCAL TRANSACTION ISOLATION LEVEL SERIALIZABLE', set('transaction_isolation', 'SERIALIZABLE')),
  // Several assignments: the first keyed one (the session re-reads them all).
  row("SET time_zone = '+00:00', wait_timeout = 10, sql_mode = 'ANSI'", set('time_zone', '+00:00')),
  row("SET NAMES utf8mb4, time_zone = '+00:00'", set('names', 'utf8mb4')),
  // What Rails' mysql2 adapter sends on connect.
  row(
    "SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
    set('sql_mode', null),
  ),
]);

table('a SET that cannot change a result changes nothing', [
  row('SET autocommit = 0', NONE),
  row('SET @@autocommit = 1', NONE),
  row('SET wait_timeout = 28800, net_read_timeout = 30', NONE),
  row('SET max_statement_time = 1', NONE),
  row('SET SESSION max_execution_time = 1000', NONE),
  row('SET foreign_key_checks = 0, unique_checks = 0', NONE),
  row("SET optimizer_switch = 'index_merge=off'", NONE),
  row('SET @u = 1', NONE),
  row('SET @a := 1, @b = (SELECT count(*) FROM t)', NONE),
  row("SET PASSWORD = 'secret'", NONE),
  row("SET PASSWORD FOR 'u'@'h' = PASSWORD('x')", NONE),
  row('SET TRANSACTION READ ONLY', NONE),
  row('SET SESSION TRANSACTION READ WRITE', NONE),
]);

table('a SET the key cannot hold taints the session', [
  row('SET a = 1', taint('SET a')),
  row('SET a = 1, @@session.b = 2, SESSION c = 3, LOCAL d = 4', taint('SET a')),
  row('SET wait_timeout = 10, session_track_schema = 1', taint('SET session_track_schema')),
  row("SET time_zone = 'UTC', max_error_count = 5", taint('SET max_error_count')),
  row('SET GLOBAL max_connections = 1', taint('SET GLOBAL max_connections')),
  row("SET @@global.time_zone = '+00:00'", taint('SET GLOBAL time_zone')),
  row('SET PERSIST sql_mode = DEFAULT', taint('SET PERSIST sql_mode')),
  row('SET ROLE r', taint('SET ROLE')),
  row('SET ROLE NONE', taint('SET ROLE')),
  // Without SESSION it applies to the next transaction only: an autocommit
  // READ UNCOMMITTED read could see, and cache, uncommitted rows.
  row('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED', taint('SET TRANSACTION ISOLATION LEVEL')),
  row('SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE', taint('SET GLOBAL TRANSACTION')),
  row('SET x', taint('SET (not understood)')),
  // A stored function may write, and SET what the key holds.
  row('SET @x = audit(1)', taint('SET calls audit()'), { writesUnknown: true }),
  row('SET time_zone = db.tz()', taint('SET calls db.tz()'), { writesUnknown: true }),
  // Changes the account's roles at its next login: cached results it may no longer read.
  row('SET DEFAULT ROLE r FOR u', NONE, { writesUnknown: true }),
]);

table('SET STATEMENT … FOR runs its statement under settings the key does not hold', [
  { sql: 'SET STATEMENT max_statement_time = 1 FOR SELECT * FROM t', kind: 'read', reads: ['t'], reason: 'session-state', detail: 'SET STATEMENT' },
  { sql: "SET STATEMENT sql_mode = '', time_zone = 'UTC' FOR SELECT NOW() FROM t", kind: 'read', reads: ['t'], reason: 'session-state' },
  { sql: 'SET STATEMENT foreign_key_checks = 0 FOR DELETE FROM t', kind: 'write', writes: ['t'], reason: 'session-state' },
  {
    sql: 'SET STATEMENT max_statement_time = 1 FOR CREATE TEMPORARY TABLE x (a int)',
    kind: 'ddl',
    writes: ['x'],
    reason: 'session-state',
    effects: [{ type: 'taint', reason: 'temp-table', detail: 'temporary table x' }],
  },
  { sql: 'SET STATEMENT x = f(1) FOR SELECT * FROM t', kind: 'read', reads: ['t'], reason: 'session-state', writesUnknown: true },
]);

table('USE db sets the database, named as written (unquoted, case kept)', [
  row('USE db', { type: 'use', database: 'db' }),
  row('USE `My Db`', { type: 'use', database: 'My Db' }),
  row('USE App_DB', { type: 'use', database: 'App_DB' }),
  row('USE', NONE, { reason: 'parse-error' }),
]);

describe('setting lists', () => {
  it('the keyed list holds the settings that shape results, and none is also harmless', () => {
    for (const name of ['sql_mode', 'time_zone', 'character_set_client', 'character_set_connection', 'character_set_results',
      'collation_connection', 'sql_auto_is_null', 'transaction_isolation', 'div_precision_increment', 'group_concat_max_len',
      'max_sort_length', 'sql_select_limit', 'lc_time_names', 'default_week_format', 'sql_big_selects', 'max_join_size',
      'sql_quote_show_create']) {
      expect(MYSQL_KEYED_SETTINGS).toContain(name);
    }
    for (const name of MYSQL_KEYED_SETTINGS) expect(MYSQL_HARMLESS_SETTINGS).not.toContain(name);
    expect(MYSQL_HARMLESS_SETTINGS).toContain('autocommit');
  });
});
