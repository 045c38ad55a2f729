// How SET / RESET / DISCARD / DEALLOCATE change the session context the
// cache key holds. A setting that shapes results and that the key holds
// becomes a `set` effect; one that cannot change a result is `none`; any
// other (custom settings, roles) taints the session: the key cannot hold it.

import type { SessionEffect } from '../core/types.js';
import { asArray, isObj, str, type Obj } from './postgres-walk.js';

/** Settings that shape results and that the cache key holds. */
const KEYED_SETTINGS = new Set([
  'timezone', 'datestyle', 'intervalstyle', 'client_encoding', 'bytea_output', 'extra_float_digits',
  'search_path', 'standard_conforming_strings', 'lc_monetary', 'lc_numeric', 'lc_time',
  'default_text_search_config', 'xmloption', 'xmlbinary', 'row_security', 'transform_null_equals',
  'array_nulls', 'quote_all_identifiers', 'client_min_messages',
]);

/** Settings that change plans, timing or logging, never a result's bytes. */
const HARMLESS_SETTINGS = new Set([
  'application_name', 'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
  'idle_session_timeout', 'work_mem', 'maintenance_work_mem', 'temp_buffers', 'synchronous_commit',
  'random_page_cost', 'seq_page_cost', 'effective_cache_size', 'plan_cache_mode',
  'default_statistics_target', 'from_collapse_limit', 'join_collapse_limit',
  'default_transaction_isolation', 'default_transaction_read_only', 'default_transaction_deferrable',
  'effective_io_concurrency', 'hash_mem_multiplier', 'constraint_exclusion', 'cursor_tuple_fraction',
]);

const HARMLESS_PREFIXES = ['enable_', 'jit', 'cpu_', 'parallel_', 'max_parallel_', 'geqo', 'log_', 'trace_'];

/** Settings whose list elements the server quotes as identifiers (GUC_LIST_QUOTE). */
const IDENTIFIER_LISTS = new Set(['search_path']);

const NONE: SessionEffect = { type: 'none' };

function isHarmless(name: string): boolean {
  return HARMLESS_SETTINGS.has(name) || HARMLESS_PREFIXES.some((p) => name.startsWith(p));
}

/** The effect of one VariableSetStmt. */
export function variableSetEffect(stmt: Obj): SessionEffect {
  const kind = str(stmt['kind']);
  if (kind === 'VAR_RESET_ALL') return { type: 'reset-all' };
  // SET TRANSACTION …, SET SESSION CHARACTERISTICS …: isolation and access
  // mode, no result bytes. SET x FROM CURRENT keeps the current value.
  if (kind === 'VAR_SET_MULTI' || kind === 'VAR_SET_CURRENT') return NONE;
  // GUC names are case-insensitive: SET "TimeZone" is SET timezone.
  const name = (str(stmt['name']) ?? '').toLowerCase();
  const local = stmt['is_local'] === true;
  if (KEYED_SETTINGS.has(name)) {
    if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') return { type: 'set', name, value: null, local };
    const value = renderValue(name, asArray(stmt['args']));
    if (value !== undefined) return { type: 'set', name, value, local };
    // SET TIME ZONE INTERVAL '…' HOUR TO MINUTE and other non-simple forms.
    return { type: 'taint', reason: 'session-state', detail: `SET ${name} (value not understood)` };
  }
  if (isHarmless(name)) return NONE;
  return { type: 'taint', reason: 'session-state', detail: `SET ${name}` };
}

/**
 * The value text as the server shows it, for constants: lists joined with
 * ', ', identifier lists (search_path) quoted like quote_ident. Undefined
 * for anything else (a cast, an expression).
 */
function renderValue(name: string, args: unknown[]): string | undefined {
  const parts: string[] = [];
  for (const arg of args) {
    const c = isObj(arg) && isObj(arg['A_Const']) ? arg['A_Const'] : undefined;
    if (c === undefined) return undefined;
    const text = constText(c);
    if (text === undefined) return undefined;
    parts.push(IDENTIFIER_LISTS.has(name) && isObj(c['sval']) ? quoteIdent(text) : text);
  }
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** A_Const → its text. Zero values come without a field (`ival: {}` is 0). */
function constText(c: Obj): string | undefined {
  if (isObj(c['sval'])) return str(c['sval']['sval']) ?? '';
  if (isObj(c['ival'])) {
    const v = c['ival']['ival'];
    return typeof v === 'number' ? String(v) : '0';
  }
  if (isObj(c['fval'])) return str(c['fval']['fval']);
  if (isObj(c['boolval'])) return c['boolval']['boolval'] === true ? 'on' : 'off';
  return undefined;
}

/** PostgreSQL's quote_identifier, without the keyword check (a keyword
 * quoted or not names the same schema, so the key stays exact). */
function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`;
}

/** DISCARD ALL is RESET ALL plus DEALLOCATE ALL plus DISCARD TEMP (and more
 * the key does not see): three effects for one statement, in that order.
 * DISCARD TEMP drops the temporary tables only. RESET ALL drops none. */
export function discardEffects(stmt: Obj): SessionEffect[] {
  const target = stmt['target'];
  if (target === 'DISCARD_ALL') {
    return [{ type: 'reset-all' }, { type: 'deallocate', name: null }, { type: 'discard-temp' }];
  }
  if (target === 'DISCARD_TEMP') return [{ type: 'discard-temp' }];
  return [NONE];
}

export function deallocateEffect(stmt: Obj): SessionEffect {
  if (stmt['isall'] === true) return { type: 'deallocate', name: null };
  return { type: 'deallocate', name: str(stmt['name']) ?? null };
}
