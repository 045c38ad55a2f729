// The shared vocabulary of sqlcached: what a session, the classifier, the
// store and the admin views say to each other. Protocol-neutral on purpose:
// the PostgreSQL and MySQL listeners are peers over these types.

import type { ListenerStats } from './stats.js';

export type Dialect = 'postgres' | 'mysql';

/** A value that is ready now (memory store) or later (Redis). Callers check
 * `instanceof Promise` so the in-memory hit path never pays for an await. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Why a statement is not answered from (or stored in) the cache. A bounded
 * kebab-case set: safe as a Prometheus label. Free text goes in `detail`.
 */
export type BypassReason =
  | 'not-a-read' // writes, DDL, transaction control, SET, utility statements
  | 'parse-error' // the parser rejected it: passed through, never cached
  | 'multi-statement' // several statements in one message
  | 'volatile-function' // now(), random(), nextval(), set_config()…
  | 'unknown-function' // volatility not known yet (looked up in the catalog)
  | 'user-function' // a STABLE/VOLATILE user function: may read unseen tables
  | 'volatile-literal' // 'now'::timestamp and friends: the literal is evaluated per call
  | 'locking-clause' // FOR UPDATE / FOR SHARE
  | 'select-into' // SELECT … INTO creates a table
  | 'system-catalog' // pg_catalog, information_schema, mysql.*…
  | 'temp-table' // the session created a temporary table
  | 'no-table' // reads no table (SELECT 1): nothing to invalidate by, cheap anyway
  | 'session-state' // the session ran a SET the key cannot hold, SET ROLE…
  | 'in-transaction' // explicit transaction and cache.in_transactions is false
  | 'rule' // a YAML rule says cache: false
  | 'hint' // a /* sqlcached:nocache */ comment
  | 'row-limit' // Execute with a row limit (portal suspension)
  | 'pipeline' // the decision would depend on a reply not received yet
  | 'encoding' // text that is not valid UTF-8: cannot be keyed safely
  | 'too-large' // result over cache.max_entry_size
  | 'error-result' // the database answered with an error
  | 'store-error' // the store failed: fail open
  | 'unknown-relation' // a relation not yet looked up in the catalog (kind, cascades, triggers)
  | 'warnings' // MySQL: the result came with warnings a replay could not show (SHOW WARNINGS)
  | 'cross-database' // MySQL: one read over tables of several databases
  | 'relation-kind'; // a view, partitioned/inherited/foreign table, sequence, materialized view…

/** A relation as the statement names it. */
export interface TableRef {
  schema: string | null;
  name: string;
}

/** What kind of statement this is, from the parser's point of view. */
export type StatementKind =
  | 'read' // SELECT, VALUES, TABLE, SHOW-free reads
  | 'write' // INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, REFRESH MATERIALIZED VIEW…
  | 'ddl' // CREATE, ALTER, DROP, COMMENT, GRANT…
  | 'txn-control' // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION…
  | 'session-set' // SET, RESET, DISCARD, SET ROLE, USE…
  | 'other'; // EXPLAIN, SHOW, LISTEN, NOTIFY, VACUUM, COPY TO, DO, CALL…

/** How a statement changes the session state that shapes results. */
export type SessionEffect =
  | { type: 'none' }
  /** SET of a setting the key holds: the session context takes the new value. */
  | { type: 'set'; name: string; value: string | null; local: boolean }
  /** RESET ALL / DISCARD ALL: back to the startup context, taint cleared. */
  | { type: 'reset-all' }
  /** DEALLOCATE name / DEALLOCATE ALL (null): SQL-level and protocol-level
   * prepared statements share one namespace. */
  | { type: 'deallocate'; name: string | null }
  /** SQL-level PREPARE name: the name now exists on the server, its text
   * unknown to the protocol layer. */
  | { type: 'prepare'; name: string }
  /** MySQL USE db: unqualified tables now resolve in this database (name as written). */
  | { type: 'use'; database: string }
  /** DISCARD ALL / DISCARD TEMP: the session's temporary tables are gone, so
   * a temp-table taint ends (RESET ALL does not drop them). */
  | { type: 'discard-temp' }
  /** Something the key cannot hold (SET ROLE, SET of an unknown setting,
   * CREATE TEMP TABLE…): bypass the cache from now on. */
  | { type: 'taint'; reason: BypassReason; detail: string };

/** The single summary of a statement the rest of the proxy acts on. */
export interface Classification {
  kind: StatementKind;
  /** Tables read, normalised: lower-case as the server folds them, no schema. */
  reads: string[];
  /** Tables written (or whose definition changes). */
  writes: string[];
  /** Every relation named, reads and writes, as written (schema or null), for
   * the catalog look-up (relation kind, FK cascades, triggers) under the
   * session's search_path. */
  relations: TableRef[];
  /** May write tables it cannot name (CALL, DO, unparseable write, volatile
   * user function): invalidate everything for the database. */
  writesUnknown: boolean;
  /** Safe to answer from cache (subject to the session and the rules). */
  cacheable: boolean;
  reason?: BypassReason;
  detail?: string;
  /** Functions whose volatility must be looked up in the catalog before the
   * statement is cacheable (user functions, names we do not know). */
  functions: string[];
  /** Lower-case names of the functions the classifier judged safe builtins
   * (de-duplicated): a user function of the same name earlier on the
   * search_path would shadow them, so the session checks these. */
  builtins: string[];
  /** Every operator symbol used (A_Expr, `x = ANY (SELECT …)`, ORDER BY …
   * USING, CASE x WHEN), de-duplicated, without schema:
   * `OPERATOR(pg_catalog.+)` is `+`. For the same shadowing check. */
  operators: string[];
  /** Per statement, in order, the effect on the session context. */
  sessionEffects: SessionEffect[];
  /** Number of statements in the text (0 for an empty query). */
  statementCount: number;
  /** Transaction control present (BEGIN/COMMIT/ROLLBACK…). */
  txnControl: boolean;
}

/** Comment hints: `/* sqlcached:ttl=30s *\/`, `/* sqlcached:nocache *\/`. */
export interface Hints {
  nocache?: boolean;
  ttlMs?: number;
}

/** What the single-pass scanner makes of a statement text. */
export interface ShapedStatement {
  /** Literal-free fingerprint: literals → ?, IN lists → IN (?...), comments
   * dropped, whitespace runs → one space, the statement's own words and case. */
  shape: string;
  /** The text with comments removed and whitespace folded outside literals:
   * the SQL part of the cache key (literals kept). */
  keyText: string;
  hints: Hints;
  /** A literal that is evaluated per call ('now', 'today', 'tomorrow',
   * 'yesterday'): never cache, whatever the shape says. */
  volatileLiteral: boolean;
}

/** What the classifier returns for one statement text. The same shape as
 * `Analysis` in src/sql/classifier.ts (declared here first, when that file
 * did not exist yet; postgres/ imports it from here). Keep the two equal. */
export interface Analysis {
  shaped: ShapedStatement;
  classification: Classification;
}

/** What decide() needs to know about the session asking. */
export interface SessionView {
  dialect: Dialect;
  /** host:port of the database server: part of the key and the catalog scope. */
  upstream: string;
  database: string;
  user: string;
  /** Serialised session settings that shape output (TimeZone, DateStyle…). */
  contextKey: string;
  /** `${upstream}\0${database}\0${searchPathKey}`: where catalog facts hold. */
  catalogScope: string;
  /** Set once the session did something the key cannot hold. */
  taint: { reason: BypassReason; detail: string } | null;
  inTransaction: boolean;
  /** The listener's counters (per-listener metrics); absent in tools and unit tests. */
  listener?: ListenerStats | null;
}

/** The decision for one statement in one session. */
export type Decision =
  | {
      action: 'cache';
      database: string;
      reads: string[];
      ttlMs: number; // 0 = until invalidated
      shape: string;
      rule: string | null; // which rule set the TTL (for /stats, explain)
    }
  | {
      action: 'bypass';
      reason: BypassReason;
      detail?: string;
      shape: string;
      /** Tables to invalidate after the database acknowledges it. */
      writes: string[];
      writesUnknown: boolean;
      /** DDL, or code that may run DDL: what the catalog taught is forgotten after it. */
      catalogMayChange?: boolean;
    };

/** The `action: 'cache'` member of Decision. */
export type CacheDecision = Extract<Decision, { action: 'cache' }>;
