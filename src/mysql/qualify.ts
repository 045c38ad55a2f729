// MySQL names tables by database: `users` means `<current database>.users`.
// The classifier reports what the text says (`users` or `db2.users`); this
// module qualifies every name with the session's current database, so that
// `db1.users` and `db2.users` never share table versions or catalog facts,
// and turns a decision's writes into bumps per database.

import type { Analysis, Classification, Decision, TableRef } from '../core/types.js';
import type { QueryCache } from '../core/query-cache.js';

/** Qualified names are memoised per (classification, database): classifications are shared and frozen. */
const memo = new WeakMap<Classification, Map<string, Classification>>();

/**
 * The analysis with every table qualified (`db.table`, lower-case) and every
 * relation given its schema. Without a current database an unqualified name
 * cannot be resolved: not cacheable (the server would refuse it anyway).
 * `unsafeText`: the text was not decoded exactly, so its table names may be
 * wrong: anything but a plain read invalidates everything.
 */
export function qualify(a: Analysis, database: string | null, unsafeText: boolean): Analysis {
  const c = a.classification;
  const db = database ?? '';
  let byDb = memo.get(c);
  let q = byDb?.get(db);
  if (q === undefined) {
    q = qualifyClassification(c, database);
    if (byDb === undefined) {
      byDb = new Map();
      memo.set(c, byDb);
    }
    if (byDb.size < 64) byDb.set(db, q);
  }
  // A text not lexed as the server lexes it may hide any statement (a
  // multibyte character ending in 0x5C, a "quoted" identifier under ANSI_QUOTES).
  if (unsafeText && !q.writesUnknown) q = { ...q, writesUnknown: true, cacheable: false, reason: 'encoding' };
  return q === c ? a : { shaped: a.shaped, classification: q };
}

function qualifyClassification(c: Classification, database: string | null): Classification {
  if (c.reads.length === 0 && c.writes.length === 0 && c.relations.length === 0 && !c.writesUnknown) return c;
  const db = database?.toLowerCase() ?? null;
  let unresolved = false;
  let odd = false;
  const name = (t: string): string => {
    const dot = t.indexOf('.');
    if (dot >= 0) {
      // `a.b.c` cannot say which dot separates the database: refuse to guess.
      if (t.indexOf('.', dot + 1) >= 0) odd = true;
      return t;
    }
    if (db === null) {
      unresolved = true;
      return t;
    }
    return `${db}.${t}`;
  };
  const relations: TableRef[] = c.relations.map((r) => {
    if (r.schema?.includes('.') || r.name.includes('.')) odd = true;
    return r.schema !== null ? { schema: r.schema.toLowerCase(), name: r.name.toLowerCase() } : { schema: db ?? '', name: r.name.toLowerCase() };
  });
  const out: Classification = { ...c, reads: c.reads.map(name), writes: c.writes.map(name), relations };
  // `USE db2; UPDATE t …` in one text: the statements after the USE resolve
  // in a database this per-text qualification cannot follow.
  const switches = c.statementCount > 1 && c.sessionEffects.some((e) => e.type === 'use');
  if (odd || switches || (unresolved && c.writes.length > 0)) out.writesUnknown = true;
  if ((odd || unresolved) && out.cacheable) {
    out.cacheable = false;
    out.reason = 'unknown-relation';
    out.detail = odd ? 'a table or database name containing a dot' : 'no database selected';
  }
  // Frozen like the classifier's own: shared by every statement of this
  // shape, and query-path.ts memoises by the identity of its reads array.
  Object.freeze(out.reads);
  Object.freeze(out.writes);
  Object.freeze(out.relations);
  return Object.freeze(out);
}

/** `db.table` names grouped by database (the part before the first dot). */
export function groupByDatabase(names: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of names) {
    const dot = n.indexOf('.');
    const db = dot < 0 ? '' : n.slice(0, dot);
    const t = dot < 0 ? n : n.slice(dot + 1);
    const list = out.get(db);
    if (list === undefined) out.set(db, [t]);
    else if (!list.includes(t)) list.push(t);
  }
  return out;
}

/** What a request wrote, to bump once the server acknowledged it. */
export class WriteSet {
  readonly tables = new Set<string>();
  unknown = false;
  ddl = false;
  /** DDL, or code that may run DDL (CALL, a rejected statement, a stored
   * function): the catalog facts are forgotten after it. Not a write that is
   * unknown only because its table was not looked up yet: forgetting then
   * would drop the dependency graph on every such write. */
  catalogMayChange = false;

  static of(d: Decision, c: Classification): WriteSet {
    const w = new WriteSet();
    if (d.action !== 'bypass') return w;
    for (const t of d.writes) w.tables.add(t);
    w.unknown = d.writesUnknown;
    w.ddl = c.kind === 'ddl';
    w.catalogMayChange = w.ddl || d.catalogMayChange === true;
    return w;
  }

  static unknown(): WriteSet {
    const w = new WriteSet();
    w.unknown = true;
    w.catalogMayChange = true;
    return w;
  }

  get empty(): boolean {
    return this.tables.size === 0 && !this.unknown && !this.ddl;
  }

  merge(o: WriteSet): void {
    for (const t of o.tables) this.tables.add(t);
    this.unknown ||= o.unknown;
    this.ddl ||= o.ddl;
    this.catalogMayChange ||= o.catalogMayChange;
  }

  /**
   * Bumps every table written, per database. Unknown writes (CALL, a
   * statement the parser rejected…) may reach any database: every one this
   * listener has seen is invalidated. DDL invalidates the databases it names,
   * or all of them when it names no table (DROP DATABASE, CREATE USER…).
   */
  bump(qc: QueryCache, upstream: string, current: string | null, known: ReadonlySet<string>, scope: string): Promise<unknown> | null {
    const pending: Promise<unknown>[] = [];
    const run = (r: void | Promise<void>): void => {
      if (r instanceof Promise) pending.push(r);
    };
    const groups = groupByDatabase([...this.tables]);
    if (this.unknown || (this.ddl && groups.size === 0)) {
      const all = new Set(known);
      if (current !== null) all.add(current.toLowerCase());
      for (const db of groups.keys()) all.add(db);
      for (const db of all) run(qc.afterWrite(upstream, db, [], true, this.ddl));
    } else {
      for (const [db, tables] of groups) run(qc.afterWrite(upstream, db, tables, false, this.ddl));
    }
    if (this.ddl || this.catalogMayChange) qc.catalog.forget(upstream, ''); // the MySQL catalog scope is `${upstream}\0`
    return pending.length === 0 ? null : Promise.all(pending);
  }
}
