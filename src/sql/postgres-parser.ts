// classifyPostgres: the PostgreSQL grammar (libpg-query, WebAssembly) turns a
// statement text into a Classification. The only importer of libpg-query.
// Off the hot path: the classifier memoises results per shape, so this runs
// once per shape (measured ~65 µs for a 95-char statement, parse + walk, on
// the shared dev container).

import { loadModule, parsePlPgSQLSync, parseSync } from 'libpg-query';
import type { Classification, SessionEffect, StatementKind } from '../core/types.js';
import { classifyStatement, type StatementResult } from './postgres-statements.js';
import { asArray, isObj } from './postgres-walk.js';
import { shapeOf } from './shape.js';
import { emptyQuery } from './empty-query.js';

let loaded: Promise<void> | null = null;
let ready = false;

/** Loads the WebAssembly parser once (~40–120 ms). */
export function loadPostgresParser(): Promise<void> {
  loaded ??= loadModule().then(() => {
    ready = true;
  });
  return loaded;
}

/** Multi-statement texts take the "strongest" kind among their statements. */
const KIND_RANK: Record<StatementKind, number> = {
  read: 0,
  other: 1,
  'txn-control': 2,
  'session-set': 3,
  write: 4,
  ddl: 5,
};

export function classifyPostgres(sql: string): Classification {
  if (!ready) throw new Error('classifyPostgres: await loadPostgresParser() first');
  // The wire protocol ends a query string at its first NUL; libpg-query would
  // silently parse only the part before it. Never guess.
  if (sql.includes('\u0000')) return parseError(sql, 'query text contains a NUL character');
  let stmts: unknown[];
  try {
    stmts = asArray((parseSync(sql) as unknown as { stmts?: unknown }).stmts);
  } catch (err) {
    if (sql.trim() === '') return emptyQuery();
    return parseError(sql, err instanceof Error ? err.message : String(err));
  }
  if (stmts.length === 0) return emptyQuery();
  try {
    return combine(stmts.map((raw) => classifyStatement(isObj(raw) ? raw['stmt'] : undefined)));
  } catch (err) {
    // A tree shape this walker did not expect: refuse to guess.
    const c = parseError(sql, `classifier failed: ${err instanceof Error ? err.message : String(err)}`);
    return { ...c, writesUnknown: true };
  }
}

/**
 * The statements a function body runs, each classified alone, from its
 * `pg_get_functiondef` text; or why the body cannot be analysed (dynamic SQL,
 * a language other than SQL and PL/pgSQL, a body the parser refuses).
 * Used for trigger functions (what they write) and functions called in a
 * SELECT (what they read). Off the hot path: once per catalog refresh.
 */
export function functionBodyStatements(language: string, definition: string): Classification[] | string {
  if (!ready) throw new Error('functionBodyStatements: await loadPostgresParser() first');
  try {
    if (language === 'plpgsql') return plpgsqlStatements(definition);
    if (language === 'sql') return sqlFunctionStatements(definition);
  } catch (err) {
    return `its body could not be parsed (${err instanceof Error ? err.message : String(err)})`;
  }
  return `it is written in ${language}`;
}

function sqlFunctionStatements(definition: string): Classification[] | string {
  const create = (asArray((parseSync(definition) as unknown as { stmts?: unknown }).stmts)[0] as { stmt?: { CreateFunctionStmt?: Record<string, unknown> } } | undefined)
    ?.stmt?.CreateFunctionStmt;
  if (create === undefined) return 'its definition is not a CREATE FUNCTION';
  const body = create['sql_body'];
  if (isObj(body)) {
    // RETURN expr (PostgreSQL 14+): read it as SELECT expr.
    if (isObj(body['ReturnStmt'])) {
      const select = { SelectStmt: { targetList: [{ ResTarget: { val: body['ReturnStmt']['returnval'] } }] } };
      return [combine([classifyStatement(select)])];
    }
    // BEGIN ATOMIC … END: a list holding the list of statements.
    const outer = isObj(body['List']) ? asArray(body['List']['items']) : [];
    const inner = outer.flatMap((x) => (isObj(x) && isObj(x['List']) ? asArray(x['List']['items']) : []));
    return inner.map((stmt) => combine([classifyStatement(stmt)]));
  }
  for (const option of asArray(create['options'])) {
    const def = isObj(option) && isObj(option['DefElem']) ? option['DefElem'] : null;
    if (def === null || def['defname'] !== 'as' || !isObj(def['arg']) || !isObj(def['arg']['List'])) continue;
    const first = asArray(def['arg']['List']['items'])[0];
    const text = isObj(first) && isObj(first['String']) ? first['String']['sval'] : undefined;
    if (typeof text !== 'string') break;
    return asArray((parseSync(text) as unknown as { stmts?: unknown }).stmts).map((raw) => combine([classifyStatement(isObj(raw) ? raw['stmt'] : undefined)]));
  }
  return 'its body was not found';
}

// PL/pgSQL keeps every SQL statement and expression as text (PLpgSQL_expr):
// statements as written, expressions read as SELECT expr, assignments
// (`target := expr`, parse modes 3–5) as SELECT of their right-hand side.
const ASSIGNMENT = /^\s*(?:"(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)|\s*\[[^\]();]*\])*\s*:?=/;

function plpgsqlStatements(definition: string): Classification[] | string {
  const tree: unknown = parsePlPgSQLSync(definition);
  const out: Classification[] = [];
  let refusal: string | null = null;
  const visit = (node: unknown): void => {
    if (refusal !== null) return;
    if (Array.isArray(node)) {
      for (const x of node) visit(x);
      return;
    }
    if (!isObj(node)) return;
    for (const [key, value] of Object.entries(node)) {
      // EXECUTE 'text', FOR … IN EXECUTE, OPEN … FOR EXECUTE, RETURN QUERY EXECUTE.
      if (key.startsWith('PLpgSQL_stmt_dyn') || key === 'dynquery') {
        refusal = 'it runs dynamic SQL (EXECUTE)';
        return;
      }
      if (key === 'PLpgSQL_expr' && isObj(value) && typeof value['query'] === 'string') {
        const text = expressionStatement(value['query'], typeof value['parseMode'] === 'number' ? value['parseMode'] : 0);
        if (text === null) {
          refusal = `an assignment could not be read: ${value['query'].slice(0, 80)}`;
          return;
        }
        if (text !== '') out.push(classifyPostgres(text));
        continue;
      }
      visit(value);
    }
  };
  visit(tree);
  return refusal ?? out;
}

function expressionStatement(query: string, parseMode: number): string | null {
  if (parseMode === 0) return query;
  if (parseMode === 1) return ''; // a type name
  if (parseMode === 2) return `SELECT ${query}`;
  const target = ASSIGNMENT.exec(query);
  return target === null ? null : `SELECT ${query.slice(target[0].length)}`;
}

function combine(results: StatementResult[]): Classification {
  const reads = new Set<string>();
  const writes = new Set<string>();
  const relations = new Map<string, { schema: string | null; name: string }>();
  const functions = new Set<string>();
  const builtins = new Set<string>();
  const operators = new Set<string>();
  const sessionEffects: SessionEffect[] = [];
  let kind: StatementKind = results[0]?.kind ?? 'other';
  let writesUnknown = false;
  let txnControl = false;
  for (const r of results) {
    for (const t of r.facts.reads) reads.add(t);
    for (const t of r.facts.writes) writes.add(t);
    for (const [k, v] of r.facts.relations) relations.set(k, v);
    for (const fn of r.facts.functions) functions.add(fn);
    for (const fn of r.facts.builtins) builtins.add(fn);
    for (const op of r.facts.operators) operators.add(op);
    sessionEffects.push(...r.effects);
    writesUnknown ||= r.writesUnknown;
    txnControl ||= r.txnControl;
    if (KIND_RANK[r.kind] > KIND_RANK[kind]) kind = r.kind;
  }
  const c: Classification = {
    kind,
    reads: [...reads],
    writes: [...writes],
    relations: [...relations.values()],
    writesUnknown,
    cacheable: false,
    functions: [...functions],
    builtins: [...builtins],
    operators: [...operators],
    sessionEffects,
    statementCount: results.length,
    txnControl,
  };
  const only = results.length === 1 ? results[0] : undefined;
  if (only === undefined) {
    c.reason = 'multi-statement';
    c.detail = `${results.length} statements`;
  } else if (only.kind !== 'read') {
    c.reason = only.reason;
  } else {
    decideRead(only, c);
  }
  return c;
}

/** A single read: cacheable unless something in it makes the answer depend
 * on more than the key and the versions of the tables it names. */
function decideRead(r: StatementResult, c: Classification): void {
  const f = r.facts;
  const refuse = (reason: Classification['reason'], detail?: string): void => {
    c.reason = reason;
    if (detail !== undefined) c.detail = detail;
  };
  if (f.locking !== null) refuse('locking-clause', f.locking);
  else if (f.systemCatalog !== null) refuse('system-catalog', f.systemCatalog);
  else if (f.temp !== null) refuse('temp-table', f.temp);
  else if (f.volatile !== null) refuse('volatile-function', f.volatile);
  else if (f.reads.size === 0) refuse('no-table');
  else c.cacheable = true;
}

/** Words that start a statement that cannot write (EXPLAIN only without ANALYZE). */
const READ_ONLY_FIRST_WORDS = new Set(['SELECT', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN']);

/**
 * The parser refused the text: the server (whose grammar may differ from
 * libpg-query's by version) decides. Nothing is cached; unless every
 * statement visibly starts read-only, it may have written anything.
 */
function parseError(sql: string, message: string): Classification {
  const pieces = shapeOf(sql, 'postgres').shape.split(';').filter((p) => p.trim() !== '');
  const count = Math.max(pieces.length, 1);
  return {
    kind: 'other',
    reads: [],
    writes: [],
    relations: [],
    writesUnknown: !pieces.every(isReadOnlyPiece),
    cacheable: false,
    reason: 'parse-error',
    detail: message,
    functions: [],
    builtins: [],
    operators: [],
    sessionEffects: Array.from({ length: count }, () => ({ type: 'none' }) as const),
    statementCount: count,
    txnControl: false,
  };
}

function isReadOnlyPiece(piece: string): boolean {
  const words = piece.replace(/^[\s(]+/, '').toUpperCase().split(/[^A-Z0-9_$]+/);
  const first = words[0] ?? '';
  if (!READ_ONLY_FIRST_WORDS.has(first)) return false;
  // SELECT … INTO creates a table; EXPLAIN ANALYZE runs its statement.
  if (words.includes('INTO')) return false;
  return first !== 'EXPLAIN' || !(words.includes('ANALYZE') || words.includes('ANALYSE'));
}
