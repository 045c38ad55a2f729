// classifyPostgres: the PostgreSQL grammar (libpg-query, WebAssembly) turns a
// statement text into a Classification. The only importer of libpg-query.
// Off the hot path: the classifier memoises results per shape, so this runs
// once per shape (measured ~65 µs for a 95-char statement, parse + walk, on
// the shared dev container).

import { loadModule, parseSync } from 'libpg-query';
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
