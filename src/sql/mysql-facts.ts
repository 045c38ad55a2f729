// What the MySQL classifier learns about one statement, whichever way it was
// read (node-sql-parser's tree, or the keyword-led scan of its tokens).
// Table names are lower-cased (over-invalidation is safe on case-sensitive
// servers), written `db.table` when the statement qualifies them.

import type { BypassReason, SessionEffect, StatementKind, TableRef } from '../core/types.js';

export interface MysqlFacts {
  reads: Set<string>;
  writes: Set<string>;
  /** Keyed by schema + NUL + name, lower-case. */
  relations: Map<string, TableRef>;
  /** Lower-case names of calls that are not known builtins (`db.fn` when qualified). */
  functions: Set<string>;
  /** Detail of the first construct that reads the clock, is random or per-connection. */
  volatile: string | null;
  /** FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE. */
  locking: string | null;
  /** SELECT … INTO OUTFILE / DUMPFILE / @var. */
  selectInto: string | null;
  systemCatalog: string | null;
  /** A @user or @@system variable, or a SET_VAR hint. */
  sessionState: string | null;
  /** SQL_NO_CACHE. */
  noCache: boolean;
  /** A write target the walk could not tie to a table (invalidate everything). */
  unsure: boolean;
}

export interface StatementResult {
  kind: StatementKind;
  facts: MysqlFacts;
  writesUnknown: boolean;
  /** Refused whatever the facts say (parse error, SET STATEMENT … FOR). */
  refusal: { reason: BypassReason; detail: string } | null;
  effect: SessionEffect;
  txnControl: boolean;
}

export const NO_EFFECT: SessionEffect = Object.freeze({ type: 'none' });

export function newFacts(): MysqlFacts {
  return {
    reads: new Set(),
    writes: new Set(),
    relations: new Map(),
    functions: new Set(),
    volatile: null,
    locking: null,
    selectInto: null,
    systemCatalog: null,
    sessionState: null,
    noCache: false,
    unsure: false,
  };
}

export function newResult(kind: StatementKind): StatementResult {
  return { kind, facts: newFacts(), writesUnknown: false, refusal: null, effect: NO_EFFECT, txnControl: false };
}

const SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'mysql', 'sys']);

/** Records a table read or written. */
export function addTable(f: MysqlFacts, db: string | null, name: string, role: 'read' | 'write'): void {
  const d = db === null ? null : db.toLowerCase();
  const n = name.toLowerCase();
  f.relations.set(`${d ?? ''}\u0000${n}`, { schema: d, name: n });
  (role === 'read' ? f.reads : f.writes).add(d === null ? n : `${d}.${n}`);
  if (d !== null && SYSTEM_SCHEMAS.has(d) && f.systemCatalog === null) f.systemCatalog = `${d}.${n}`;
}
