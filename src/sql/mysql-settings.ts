// How MySQL/MariaDB SET and USE change the session state the cache key
// holds. SETs are read off the tokens, not the parser (which rejects SET
// NAMES, SET TRANSACTION…): a setting that shapes results and that the key
// holds becomes a `set` effect (the session then reads every keyed setting
// back from the server); one that cannot change a result is `none`; any
// other taints the session.
// https://mariadb.com/kb/en/set/ · https://dev.mysql.com/doc/refman/8.0/en/set-variable.html

import type { SessionEffect } from '../core/types.js';
import { NO_EFFECT } from './mysql-facts.js';
import { unknownCalls } from './mysql-token-scan.js';
import {
  IDENT, NUMBER, STRING, SYSTEM_VAR, USER_VAR, WORD, type Token, isPunct, nameOf, splitTopLevel, unquoteIdent, wordAt,
} from './mysql-tokens.js';

/**
 * Session variables that shape results and that the session reads back from
 * the server after any SET of them, for the cache key. MariaDB before 11.1
 * names transaction_isolation `tx_isolation` (MySQL 8 only the former);
 * old_mode is MariaDB's (it changes how some values print).
 */
export const MYSQL_KEYED_SETTINGS: readonly string[] = [
  'sql_mode', 'time_zone', 'character_set_client', 'character_set_connection', 'character_set_results',
  'collation_connection', 'sql_auto_is_null', 'transaction_isolation', 'div_precision_increment',
  'group_concat_max_len', 'max_sort_length', 'sql_select_limit', 'lc_time_names', 'default_week_format',
  'sql_big_selects', 'max_join_size', 'sql_quote_show_create', 'old_mode',
  // MariaDB: FOR SYSTEM_TIME default, REGEXP flags, recursive CTE depth.
  'system_versioning_asof', 'default_regex_flags', 'max_recursive_iterations',
];

/**
 * Settings whose change cannot change a cached result's bytes: timeouts (an
 * error, never cached), what writes are allowed, logging and replication,
 * and buffer sizes and optimizer knobs (plans and speed only).
 */
export const MYSQL_HARMLESS_SETTINGS: readonly string[] = [
  'autocommit', 'wait_timeout', 'interactive_timeout', 'net_read_timeout', 'net_write_timeout', 'net_retry_count',
  'net_buffer_length', 'max_execution_time', 'max_statement_time', 'lock_wait_timeout', 'innodb_lock_wait_timeout',
  'profiling', 'profiling_history_size', 'sql_notes', 'sql_warnings', 'sql_log_bin', 'sql_log_off',
  'foreign_key_checks', 'unique_checks', 'sql_safe_updates', 'transaction_read_only', 'lc_messages',
  'default_storage_engine', 'default_tmp_storage_engine', 'storage_engine', 'query_cache_type', 'big_tables',
  'sql_buffer_result', 'long_query_time', 'slow_query_log', 'sort_buffer_size', 'join_buffer_size',
  'read_buffer_size', 'read_rnd_buffer_size', 'tmp_table_size', 'max_heap_table_size', 'join_cache_level',
  'bulk_insert_buffer_size', 'eq_range_index_dive_limit', 'max_seeks_for_key', 'range_alloc_block_size',
  'query_alloc_block_size', 'query_prealloc_size', 'transaction_alloc_block_size', 'transaction_prealloc_size',
];

/** Old names the server still accepts → the names above. */
const ALIASES: Readonly<Record<string, string>> = {
  tx_isolation: 'transaction_isolation',
  tx_read_only: 'transaction_read_only',
};

const KEYED = new Set(MYSQL_KEYED_SETTINGS);
const HARMLESS = new Set(MYSQL_HARMLESS_SETTINGS);
const SCOPES = new Set(['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY']);
/** Scopes that change the setting for other sessions (or the next restart). */
const SHARED_SCOPES = new Set(['GLOBAL', 'PERSIST', 'PERSIST_ONLY']);

export interface SetOutcome {
  effect: SessionEffect;
  /** A value calls a function that is not a known builtin. */
  writesUnknown: boolean;
}

function isHarmless(name: string): boolean {
  return HARMLESS.has(name) || name.startsWith('optimizer_');
}

function taint(detail: string): SessionEffect {
  return { type: 'taint', reason: 'session-state', detail };
}

/** USE db → the database as written, unquoted (null when malformed). */
export function useEffect(tokens: readonly Token[]): SessionEffect | null {
  const name = nameOf(tokens[1]);
  return name === null || tokens.length !== 2 ? null : { type: 'use', database: name };
}

/** A SET statement (tokens[0] is SET), except SET STATEMENT … FOR. */
export function setOutcome(tokens: readonly Token[], escapes: boolean): SetOutcome {
  const first = wordAt(tokens, 1);
  if (first === 'ROLE') return { effect: taint('SET ROLE'), writesUnknown: false };
  // Changes an account's privileges at its next login: any cached result may be one it can no longer read.
  if (first === 'DEFAULT' && wordAt(tokens, 2) === 'ROLE') return { effect: NO_EFFECT, writesUnknown: true };
  if (first === 'PASSWORD' || (first === 'RESOURCE' && wordAt(tokens, 2) === 'GROUP')) return { effect: NO_EFFECT, writesUnknown: false };
  const scoped = SCOPES.has(first);
  if (wordAt(tokens, scoped ? 2 : 1) === 'TRANSACTION') {
    return { effect: transaction(tokens.slice(scoped ? 3 : 2), scoped ? first : null), writesUnknown: false };
  }
  let set: SessionEffect | null = null;
  for (const item of splitTopLevel(tokens.slice(1))) {
    const calls = unknownCalls(item);
    if (calls.length > 0) return { effect: taint(`SET calls ${calls[0]}()`), writesUnknown: true };
    const effect = assignment(item, escapes);
    if (effect.type === 'taint') return { effect, writesUnknown: false };
    if (effect.type === 'set') set ??= effect;
  }
  return { effect: set ?? NO_EFFECT, writesUnknown: false };
}

/** One `[scope] target = value` of a SET list. */
function assignment(item: readonly Token[], escapes: boolean): SessionEffect {
  let j = 0;
  let scope = 'SESSION';
  if (SCOPES.has(wordAt(item, 0)) && item.length > 1 && !isAssign(item[1])) {
    scope = wordAt(item, 0);
    j = 1;
  }
  const target = item[j];
  if (target === undefined) return taint('SET (not understood)');
  // User variables: queries reading them are never cached.
  if (target.type === USER_VAR) return NO_EFFECT;
  const w = wordAt(item, j);
  if (w === 'NAMES') return { type: 'set', name: 'names', value: literal(item.slice(j + 1, j + 2), escapes), local: false };
  if (w === 'CHARSET' || (w === 'CHARACTER' && wordAt(item, j + 1) === 'SET')) {
    const at = w === 'CHARSET' ? j + 1 : j + 2;
    return { type: 'set', name: 'charset', value: literal(item.slice(at, at + 1), escapes), local: false };
  }
  let parts: string[];
  if (target.type === SYSTEM_VAR) {
    // @@name, @@session.name, @@global.name
    parts = target.text.slice(2).split('.').map((p) => (p.startsWith('`') ? unquoteIdent(p) : p));
    if (parts.length > 1 && SCOPES.has((parts[0] ?? '').toUpperCase())) scope = (parts.shift() ?? '').toUpperCase();
    j++;
  } else {
    parts = [];
    while (nameOf(item[j]) !== null) {
      parts.push(nameOf(item[j]) ?? '');
      j++;
      if (!isPunct(item[j], '.')) break;
      j++;
    }
  }
  if (parts.length === 0 || !isAssign(item[j])) return taint('SET (not understood)');
  const raw = parts.join('.').toLowerCase();
  const name = ALIASES[raw] ?? raw;
  if (SHARED_SCOPES.has(scope)) return taint(`SET ${scope} ${raw}`);
  if (KEYED.has(name)) return { type: 'set', name, value: literal(item.slice(j + 1), escapes), local: false };
  return isHarmless(name) ? NO_EFFECT : taint(`SET ${raw}`);
}

function isAssign(t: Token | undefined): boolean {
  return isPunct(t, '=') || isPunct(t, ':=');
}

/** The value as a string when it is one plain literal, else null. */
function literal(value: readonly Token[], escapes: boolean): string | null {
  const [a, b] = value;
  if (a === undefined) return null;
  if (value.length === 2 && isPunct(a, '-') && b?.type === NUMBER) return `-${b.text}`;
  if (value.length !== 1) return null;
  switch (a.type) {
    case STRING:
      return stringValue(a.text, escapes);
    case NUMBER:
    case IDENT:
      return a.value;
    case WORD:
      return a.value === 'DEFAULT' ? null : a.text;
    default:
      return null;
  }
}

const LEVELS: Readonly<Record<string, string>> = {
  'READ UNCOMMITTED': 'READ-UNCOMMITTED',
  'READ COMMITTED': 'READ-COMMITTED',
  'REPEATABLE READ': 'REPEATABLE-READ',
  SERIALIZABLE: 'SERIALIZABLE',
};

/** SET [scope] TRANSACTION characteristic, …: access mode changes only
 * what may be written; the isolation level what a read may see. */
function transaction(rest: readonly Token[], scope: string | null): SessionEffect {
  let level: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    if (wordAt(rest, i) !== 'ISOLATION' || wordAt(rest, i + 1) !== 'LEVEL') continue;
    const one = wordAt(rest, i + 2);
    level = LEVELS[one] ?? LEVELS[`${one} ${wordAt(rest, i + 3)}`] ?? '';
  }
  if (scope !== null && SHARED_SCOPES.has(scope)) return taint(`SET ${scope} TRANSACTION`);
  if (level === null) return NO_EFFECT;
  // Without a scope it applies to the next transaction only: an autocommit
  // READ UNCOMMITTED read could see uncommitted rows and get cached.
  if (scope === null) return taint('SET TRANSACTION ISOLATION LEVEL');
  return { type: 'set', name: 'transaction_isolation', value: level === '' ? null : level, local: false };
}

/** The value of a STRING token as the server reads it. */
function stringValue(text: string, backslashEscapes: boolean): string {
  let s = text;
  if ((s.charCodeAt(0) | 0x20) === 110 /* N'…' */) s = s.slice(1);
  const quote = s[0] ?? "'";
  const body = s.length >= 2 && s.endsWith(quote) ? s.slice(1, -1) : s.slice(1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === quote && body[i + 1] === quote) {
      out += quote;
      i++;
    } else if (backslashEscapes && ch === '\\' && i + 1 < body.length) {
      out += unescapeChar(body[++i]!);
    } else {
      out += ch;
    }
  }
  return out;
}

/** MySQL's backslash escapes; an unknown `\x` is x. (`\%` and `\_` keep the
 * backslash, for LIKE patterns.) */
function unescapeChar(ch: string): string {
  switch (ch) {
    case '0':
      return '\u0000';
    case 'b':
      return '\b';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'Z':
      return '\u001a';
    case '%':
    case '_':
      return `\\${ch}`;
    default:
      return ch;
  }
}
