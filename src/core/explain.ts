// explain(): what the proxy would do with one statement, without running it
// (the `sqlcached explain` command and GET /explain give the same answer).
// The classifier and the real decide() answer; only the live catalog and the
// session are stood in for, and the answer lists what they may still change.

import type { Config } from '../config/schema.js';
import { CatalogMemo, type RelationInfo } from './catalog.js';
import type { DependencyGraph } from './dependency-graph.js';
import { decide } from './decide.js';
import type { StatementClassifier } from './query-cache.js';
import { Rules } from './rules.js';
import type { BypassReason, Classification, Decision, Dialect, SessionEffect, SessionView, StatementKind, TableRef } from './types.js';

export interface ExplainInput {
  classifier: StatementClassifier;
  config: Config;
  sql: string;
  /** Default: defaultDialect(config). */
  dialect?: Dialect;
  /** A live database's dependency graph (GET /explain?database=…), and what to call it. */
  graph?: { graph: DependencyGraph | undefined; database: string };
}

/** JSON-ready; the field names are a public contract (GET /explain, `explain --json`). */
export interface Explanation {
  dialect: Dialect;
  sql: string;
  /** The shape: what /stats and `fingerprint:` rules group by. */
  fingerprint: string;
  kind: StatementKind;
  reads: string[];
  writes: string[];
  writes_unknown: boolean;
  statement_count: number;
  cacheable: boolean;
  reason: BypassReason | null;
  detail: string | null;
  /** `rules[i]`, `hint`, or null (cache.default_ttl, or not cached by a rule). */
  rule: string | null;
  /** 0 = until invalidated; null when not cached. */
  ttl_ms: number | null;
  ttl: string | null;
  /** Tables a successful run bumps, or a sentence when it bumps more than tables;
   * with a dependency graph, the write's whole closure. */
  invalidates: string[] | string;
  /** When cached: every table whose versions the result carries (the tables
   * under a view, a parent's children, what a function reads); else null. */
  read_tables: string[] | null;
  /** Which dependency graph answered: a live database's, or none. */
  dependency_graph: string;
  session_effects: string[];
  /** What only the live catalog and session decide: may turn a yes into a no. */
  runtime_checks: string[];
}

const WHOLE_DATABASE = 'the whole database';
const EVERY_DATABASE = 'every database the listener has seen';
const SCOPE = 'explain';

/** postgres, unless every listener of the config speaks mysql. */
export function defaultDialect(config: Config): Dialect {
  const ls = config.listeners;
  return ls.length > 0 && ls.every((l) => l.protocol === 'mysql') ? 'mysql' : 'postgres';
}

export function explainStatement(input: ExplainInput): Explanation {
  const { config, sql } = input;
  const dialect = input.dialect ?? defaultDialect(config);
  const a = input.classifier.analyse(dialect, sql);
  const c = a.classification;
  const session = plainSession(dialect);
  const catalog = plainCatalog(dialect, c.relations);
  const live = input.graph?.graph;
  if (live !== undefined) catalog.learnGraph(session.upstream, session.database, live);
  const d = decide(a, session, {
    rules: new Rules(config.rules, config.cache.defaultTtlMs),
    catalog,
    inTransactions: config.cache.inTransactions,
    extraEdges: new Map(config.dependencies.edges.map((e) => [e.writes, e.invalidates])),
  });
  const cached = d.action === 'cache';
  const reason = cached ? null : d.reason;
  const ttlMs = cached ? d.ttlMs : null;
  // Volatile literals and an empty read list are refused by decide() before
  // the session and the catalog are consulted: only past them do those matter.
  // A rule or hint that says no is final whatever they find, and so is a
  // MySQL stored function (never looked up).
  const final = reason === 'rule' || reason === 'hint' || (dialect === 'mysql' && c.functions.length > 0);
  const reachesRuntime =
    !final && c.cacheable && c.kind === 'read' && c.writes.length === 0 && !c.writesUnknown && !a.shaped.volatileLiteral && c.reads.length > 0;
  return {
    dialect,
    sql,
    fingerprint: a.shaped.shape,
    kind: c.kind,
    reads: [...c.reads],
    writes: cached ? [] : [...d.writes],
    writes_unknown: !cached && d.writesUnknown,
    statement_count: c.statementCount,
    cacheable: cached,
    reason,
    detail: cached ? null : (d.detail ?? null),
    rule: cached ? d.rule : reason === 'rule' ? (d.detail ?? null) : reason === 'hint' ? 'hint' : null,
    ttl_ms: ttlMs,
    ttl: ttlMs === null ? null : formatTtl(ttlMs),
    invalidates: invalidates(dialect, c, d),
    read_tables: cached ? [...d.reads] : null,
    dependency_graph:
      input.graph === undefined
        ? 'none: every relation is taken for a plain table (GET /explain?database=… uses the live graph of that database)'
        : live === undefined
          ? `none loaded yet for database ${input.graph.database} (it loads with the first statement through the proxy)`
          : `database ${input.graph.database}, read ${Math.round((Date.now() - live.loadedAt) / 1000)} s ago`,
    session_effects: c.sessionEffects.filter((e) => e.type !== 'none').map(describeEffect),
    runtime_checks: runtimeChecks(dialect, config, c, d, reachesRuntime),
  };
}

/** A fresh session: no transaction, no taint. The database only names the
 * key's scope, which no field of the answer shows. */
function plainSession(dialect: Dialect): SessionView {
  return {
    dialect,
    upstream: SCOPE,
    database: '(session database)',
    user: '(session user)',
    contextKey: '',
    catalogScope: SCOPE,
    taint: null,
    inTransaction: false,
  };
}

/**
 * Every named relation a plain table without cascades or triggers; no
 * function learned, so user functions stay of unknown volatility. Named as
 * the classifier names writes (MySQL `db.table`, PostgreSQL without schema),
 * or decide() would take a written table for one the catalog does not cover.
 */
function plainCatalog(dialect: Dialect, relations: readonly TableRef[]): CatalogMemo {
  const catalog = new CatalogMemo({ ttlMs: 60_000 });
  catalog.learnRelations(
    SCOPE,
    relations.map((ref): [TableRef, RelationInfo] => [
      ref,
      {
        name: dialect === 'mysql' && ref.schema !== null ? `${ref.schema}.${ref.name}` : ref.name,
        cacheable: true,
        alsoInvalidates: [],
        invalidatesAll: false,
      },
    ]),
  );
  return catalog;
}

/** The policy of QueryCache.afterWrite (PostgreSQL) and WriteSet.bump (MySQL). */
function invalidates(dialect: Dialect, c: Classification, d: Decision): string[] | string {
  if (d.action === 'cache') return [];
  const ddl = c.kind === 'ddl';
  if (dialect === 'mysql') {
    if (d.writesUnknown || (ddl && d.writes.length === 0)) return EVERY_DATABASE;
    if (ddl) return WHOLE_DATABASE;
  } else if (d.writesUnknown || ddl) {
    return WHOLE_DATABASE;
  }
  return [...d.writes];
}

function runtimeChecks(dialect: Dialect, config: Config, c: Classification, d: Decision, reachesRuntime: boolean): string[] {
  const out: string[] = [];
  const my = dialect === 'mysql';
  const list = (xs: readonly string[]) => [...new Set(xs)].join(', ');
  if (reachesRuntime) {
    out.push(
      config.cache.inTransactions
        ? 'transaction: inside an explicit transaction hits are served but results are not stored'
        : 'transaction: inside an explicit transaction it is not cached (in-transaction; cache.in_transactions is false)',
    );
    out.push(
      my
        ? 'session: the settings that shape results (time_zone, sql_mode, character_set_results…) are read and keyed; after a SET the key cannot hold or a temporary table the session bypasses (session-state, temp-table)'
        : 'session: the settings that shape results (TimeZone, DateStyle, search_path…) are read and keyed; after SET ROLE, a SET the key cannot hold or a temporary table the session bypasses (session-state, temp-table)',
    );
    const names = list(c.relations.map((r) => (r.schema === null ? r.name : `${r.schema}.${r.name}`)));
    out.push(
      my
        ? `relation kind: ${names}: each must be a base table; a view, system view, temporary table or a MERGE, FEDERATED, CONNECT, SPIDER or SEQUENCE table bypasses (relation-kind, system-catalog, temp-table)`
        : `relation kind: ${names}: a plain table or materialized view is cached; a view, partitioned or inherited table is cached with the tables under it when the database's dependency graph is loaded (a view whose own query cannot be cached, or over a foreign table, bypasses); a foreign table, sequence, temporary table or one with row-level security bypasses (relation-kind, temp-table)`,
    );
    if (my && c.relations.some((r) => r.schema === null)) {
      out.push("database: unqualified tables resolve in the session's current database, where a rule naming db.table matches them too; with none selected it is not cached (unknown-relation)");
    }
    if (!my && (c.builtins.length > 0 || c.operators.length > 0)) {
      const named = list([...c.builtins.map((f) => `${f}()`), ...c.operators.map((o) => `operator ${o}`)]);
      out.push(`shadowing: ${named}: a user operator, or a user function of the same name that is not IMMUTABLE, bypasses (user-function)`);
    }
    if (d.action === 'cache') {
      out.push('result: stored only when complete, without error and within cache.max_entry_size (error-result, too-large)');
    }
  }
  if (c.functions.length > 0) {
    out.push(
      my
        ? `function volatility: ${list(c.functions)}: stored functions are never looked up on MySQL, so a statement calling one is always bypassed and may write anything (unknown-function)`
        : `function volatility: ${list(c.functions)}: looked up in pg_proc; IMMUTABLE is cached, STABLE is cached when its SQL or PL/pgSQL body can be analysed (the tables it reads are versioned with the result) and bypasses otherwise (user-function), VOLATILE bypasses and invalidates the whole database. Shown here as not yet known`,
    );
  }
  // DDL and unknown writes invalidate the whole database anyway.
  if (d.action === 'bypass' && d.writes.length > 0 && !d.writesUnknown && c.kind !== 'ddl') {
    out.push(
      my
        ? `cascades and triggers: a write to ${list(d.writes)} also invalidates the tables its foreign keys cascade to (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT); user triggers or a view make it invalidate ${WHOLE_DATABASE}`
        : `dependencies: a write to ${list(d.writes)} also invalidates, from the database's dependency graph, views over it, its parents and the children it writes through, the tables its foreign keys cascade to (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT) and those its triggers write (PL/pgSQL bodies analysed); a trigger that cannot be analysed, a rule or a default calling a user function make it invalidate ${WHOLE_DATABASE}`,
    );
  }
  return out;
}

function describeEffect(e: Exclude<SessionEffect, { type: 'none' }>): string {
  switch (e.type) {
    case 'set':
      return `${e.name} = ${e.value === null ? 'DEFAULT' : `'${e.value}'`}${e.local ? ' until the transaction ends' : ''}: part of the cache key from then on`;
    case 'reset-all':
      return 'settings back to their startup values; a session-state bypass ends';
    case 'deallocate':
      return e.name === null ? 'every prepared statement is deallocated' : `prepared statement ${e.name} is deallocated`;
    case 'prepare':
      return `prepared statement ${e.name} is created`;
    case 'use':
      return `unqualified tables resolve in database ${e.database} from then on`;
    case 'discard-temp':
      return "the session's temporary tables are dropped; a temp-table bypass ends";
    case 'taint':
      return `the session bypasses the cache from then on (${e.reason}: ${e.detail})`;
  }
}

const UNITS: ReadonlyArray<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];

/** 3600000 → "1h", 5400000 → "1h30m", 0 → "until invalidated". */
export function formatTtl(ms: number): string {
  if (ms === 0) return 'until invalidated';
  let rest = Math.round(ms);
  let out = '';
  for (const [unit, size] of UNITS) {
    if (rest < size) continue;
    out += `${Math.floor(rest / size)}${unit}`;
    rest %= size;
  }
  return out === '' ? `${ms}ms` : out;
}
