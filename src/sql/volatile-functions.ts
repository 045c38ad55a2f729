// Which PostgreSQL functions leave a statement cacheable. Data: the builtin
// volatility sets generated from pg_proc (pg-builtin-functions.ts). Policy:
// here. A cached result must equal what the database would answer now for
// the same key (user, database, search_path, the settings the key holds),
// so a function is safe only if its result depends on nothing else.

import { IMMUTABLE_BUILTINS, STABLE_BUILTINS, VOLATILE_BUILTINS } from './pg-builtin-functions.js';

export type FunctionVerdict =
  | { kind: 'safe' }
  /** Never cacheable: `detail` is `name()` for the bypass reason. */
  | { kind: 'volatile'; detail: string }
  /** Not a builtin we know: the caller looks its volatility up in pg_proc. */
  | { kind: 'lookup'; name: string };

const SAFE: FunctionVerdict = { kind: 'safe' };

/**
 * STABLE builtins that are NOT safe, by exact name. Every other STABLE
 * builtin depends only on its arguments plus settings the key holds
 * (TimeZone, DateStyle, lc_*, search_path, default_text_search_config…).
 */
const DENIED_STABLE = new Set([
  // The clock: per statement or per transaction.
  'now', 'statement_timestamp', 'transaction_timestamp', 'age',
  // Session and server state the key does not hold.
  'current_setting', 'current_query', 'version', 'row_security_active',
  // Counters that move without any write we see.
  'mxid_age',
  // The catalog: privileges, names, comments, enum labels, validators.
  'format_type', 'obj_description', 'col_description', 'shobj_description', 'oidvectortypes',
  'aclexplode', 'aclitemin', 'aclitemout', 'enum_first', 'enum_last', 'enum_range',
  'fmgr_c_validator', 'fmgr_internal_validator', 'fmgr_sql_validator',
  // ts_debug is an SQL function that queries pg_ts_* catalogs.
  'ts_debug',
]);

/** STABLE builtins that are NOT safe, by name pattern (with the reason). */
function deniedStableByPattern(name: string): boolean {
  return (
    // Session, backend and server introspection; statistics; the catalog.
    name.startsWith('pg_') ||
    // has_table_privilege…: ACLs in the catalog.
    (name.startsWith('has_') && name.endsWith('_privilege')) ||
    // to_regclass…, regclass(), reg*in/out: name ↔ OID look-ups in the catalog.
    name.startsWith('to_reg') ||
    name.startsWith('reg') ||
    name.endsWith('_is_visible') ||
    // Transaction ids and snapshots.
    name.startsWith('txid_') ||
    // The client's and server's network addresses.
    name.startsWith('inet_client_') ||
    name.startsWith('inet_server_') ||
    // Planner selectivity estimators and typanalyze: read pg_statistic.
    name.endsWith('sel') ||
    name.endsWith('_typanalyze') ||
    // *_to_xml: read whole tables/schemas/queries named by a string, which the
    // statement's table list (the invalidation key) does not show.
    name.startsWith('table_to_xml') ||
    name.startsWith('schema_to_xml') ||
    name.startsWith('database_to_xml') ||
    name.startsWith('query_to_xml') ||
    name.startsWith('cursor_to_xml')
  );
}

/** IMMUTABLE pg_* functions that really are pure (sizes, LSN arithmetic,
 * snapshot value accessors). Other pg_* are denied whatever pg_proc says:
 * some are labelled immutable but read the catalog (pg_partition_root) or
 * the server (pg_walfile_name reads the timeline). */
function isPureImmutablePg(name: string): boolean {
  return (
    name.startsWith('pg_size_') ||
    name.startsWith('pg_lsn') ||
    name === 'pg_wal_lsn_diff' ||
    name === 'pg_encoding_max_length' ||
    name.startsWith('pg_snapshot_') ||
    name === 'pg_visible_in_snapshot'
  );
}

/** Policy for a builtin name (as in pg_catalog.pg_proc). */
function judgeBuiltin(name: string): FunctionVerdict | undefined {
  if (IMMUTABLE_BUILTINS.has(name)) {
    if (name.startsWith('pg_') && !isPureImmutablePg(name)) return volatile(name);
    return SAFE;
  }
  if (STABLE_BUILTINS.has(name)) {
    return DENIED_STABLE.has(name) || deniedStableByPattern(name) ? volatile(name) : SAFE;
  }
  if (VOLATILE_BUILTINS.has(name)) return volatile(name);
  return undefined;
}

function volatile(name: string): FunctionVerdict {
  return { kind: 'volatile', detail: `${name}()` };
}

/**
 * `parts` is the FuncCall's name as the parser gives it (unquoted parts
 * already folded to lower case; quoted parts keep their case, as pg_proc
 * does). An unqualified name resolves to pg_catalog first unless the
 * session's search_path lists pg_catalog after another schema; see the
 * classifier's notes on that limit.
 */
export function judgeFunction(parts: readonly string[]): FunctionVerdict {
  const name = parts[parts.length - 1] ?? '';
  if (parts.length === 1) return judgeBuiltin(name) ?? { kind: 'lookup', name };
  if (parts.length === 2 && parts[0] === 'pg_catalog') {
    return judgeBuiltin(name) ?? { kind: 'lookup', name: `pg_catalog.${name}` };
  }
  return { kind: 'lookup', name: parts.slice(-2).join('.') };
}

/** set_config() changes a setting for the rest of the session (or transaction). */
export function isSetConfig(parts: readonly string[]): boolean {
  const name = parts[parts.length - 1];
  return name === 'set_config' && (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog'));
}
