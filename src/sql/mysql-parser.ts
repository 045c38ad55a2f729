// classifyMysql: a MySQL/MariaDB statement text → Classification. The only
// importer of node-sql-parser (its mysql build; the mariadb build rejects
// more of what ORMs send). Data statements (SELECT, INSERT, UPDATE, DELETE,
// REPLACE, WITH, TABLE) go through the parser and a walk of its tree; every
// other statement is read off its leading keywords (mysql-statements.ts).
// Off the hot path: the classifier memoises results per shape. Measured
// (node 20, CPU time, 5 Rails-style statements of 95 chars on average, the
// shared 2-vCPU dev container): node-sql-parser alone ~74 µs a parse
// (~13k/s); classifyMysql ~83 µs (tokens, parse, walk: ~12k/s); a memo hit,
// shape included, ~1.1 µs.

import { createRequire } from 'node:module';
import type NodeSqlParser from 'node-sql-parser/build/mysql.js';
import type { Classification, SessionEffect, StatementKind } from '../core/types.js';
import { type StatementResult, addTable, newResult } from './mysql-facts.js';
import { rejectedData, unknownStatement } from './mysql-fallback.js';
import { parserText } from './mysql-parser-text.js';
import { classifyByKeyword } from './mysql-statements.js';
import { namedTables, scanTokens } from './mysql-token-scan.js';
import { type Token, isPunct, statementsOf, wordAt } from './mysql-tokens.js';
import { StringNamedRelation, walkStatement } from './mysql-walk.js';
import { emptyQuery } from './empty-query.js';

// Required at the first MySQL data statement, not at start-up: a proxy with
// only PostgreSQL listeners then never holds the parser (~3 MiB resident).
// The first statement pays the ~10 ms load, once, off the hot path (memo).
let loaded: InstanceType<typeof NodeSqlParser.Parser> | null = null;
const parser = (): InstanceType<typeof NodeSqlParser.Parser> =>
  (loaded ??= new (createRequire(import.meta.url)('node-sql-parser/build/mysql.js') as typeof NodeSqlParser).Parser());
const PARSE_OPTIONS = { database: 'mysql' };

/** First keywords of the statements the parser reads. */
const DATA_WORDS = new Set(['SELECT', 'WITH', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'TABLE', 'VALUES']);
const WRITE_TYPES = new Set(['insert', 'replace', 'update', 'delete']);

/** Multi-statement texts take the "strongest" kind among their statements. */
const KIND_RANK: Record<StatementKind, number> = {
  read: 0,
  other: 1,
  'txn-control': 2,
  'session-set': 3,
  write: 4,
  ddl: 5,
};

/**
 * Never throws. `backslashEscapes` (default true, MySQL's default) is false
 * when the session's sql_mode has NO_BACKSLASH_ESCAPES.
 */
export function classifyMysql(sql: string, opts?: { backslashEscapes?: boolean }): Classification {
  const escapes = opts?.backslashEscapes ?? true;
  try {
    const statements = statementsOf(sql, escapes);
    if (statements.length === 0) return emptyQuery();
    return combine(
      statements.map((s) => {
        if (!s.broken) return classifyTokens(s.tokens, escapes);
        const message = 'unterminated quote or comment';
        return isData(s.tokens) ? rejectedData(s.tokens, message) : unknownStatement(s.tokens, message);
      }),
    );
  } catch (err) {
    // A tree or token sequence this code did not expect: refuse to guess.
    const r = unknownStatement([], `classifier failed: ${err instanceof Error ? err.message : String(err)}`);
    r.writesUnknown = true;
    return combine([r]);
  }
}

function isData(tokens: readonly Token[]): boolean {
  return DATA_WORDS.has(wordAt(tokens, 0)) || isPunct(tokens[0], '(');
}

function classifyTokens(tokens: readonly Token[], escapes: boolean): StatementResult {
  if (isData(tokens)) return parseData(tokens);
  const inner = (t: readonly Token[]): StatementResult => classifyTokens(t, escapes);
  return classifyByKeyword(tokens, escapes, inner) ?? unknownStatement(tokens, `not understood: ${(tokens[0]?.text ?? '').slice(0, 40)}`);
}

/** A data statement through node-sql-parser and the tree walk. */
function parseData(tokens: readonly Token[]): StatementResult {
  const text = parserText(tokens);
  let parsed: { ast: unknown; tableList: unknown };
  try {
    parsed = parser().parse(text, PARSE_OPTIONS) as unknown as { ast: unknown; tableList: unknown };
  } catch (err) {
    return rejectedData(tokens, rejection(err, text));
  }
  const asts = Array.isArray(parsed.ast) ? parsed.ast : [parsed.ast];
  const types = asts.map((a) => (typeof a === 'object' && a !== null ? (a as { type?: unknown }).type : undefined));
  // The parser split one statement in two (it takes GO as a separator) or
  // made something else of it: its tree is not the server's.
  if (asts.length !== 1 || !(types[0] === 'select' || WRITE_TYPES.has(String(types[0])))) {
    return rejectedData(tokens, 'parsed as something else');
  }
  const r = newResult(WRITE_TYPES.has(String(types[0])) ? 'write' : 'read');
  // Tokens first: their details name constructs as written (CURRENT_DATE, NEXT VALUE FOR).
  scanTokens(tokens, r.facts);
  let ctes: ReadonlySet<string>;
  try {
    ctes = walkStatement(parsed.ast, r.facts, parsed.tableList);
  } catch (err) {
    if (err instanceof StringNamedRelation) return rejectedData(tokens, err.message);
    throw err;
  }
  for (const q of namedTables(tokens)) {
    // Over-counting is safe; a table the parser dropped is not.
    const key = `${q.db?.toLowerCase() ?? ''}\u0000${q.name.toLowerCase()}`;
    if (!r.facts.relations.has(key) && !(q.db === null && ctes.has(q.name))) addTable(r.facts, q.db, q.name, 'read');
  }
  r.writesUnknown = r.facts.unsure;
  const stored = [...r.facts.functions][0];
  if (stored !== undefined && r.effect.type === 'none') {
    // A stored function may SET time_zone, lc_time_names…, or create a
    // temporary table that shadows a real one: what follows in this session
    // could be keyed on settings it no longer has.
    r.effect = { type: 'taint', reason: 'session-state', detail: `${stored}() may change session settings or create temporary tables` };
  }
  return r;
}

/** node-sql-parser's message lists every expected token: keep where it stopped. */
function rejection(err: unknown, text: string): string {
  const offset = (err as { location?: { start?: { offset?: number } } }).location?.start?.offset;
  if (typeof offset !== 'number') return 'rejected by node-sql-parser';
  return `rejected by node-sql-parser near "${text.slice(offset, offset + 24)}"`;
}

function combine(results: StatementResult[]): Classification {
  const reads = new Set<string>();
  const writes = new Set<string>();
  const relations = new Map<string, { schema: string | null; name: string }>();
  const functions = new Set<string>();
  const sessionEffects: SessionEffect[] = [];
  let kind: StatementKind = results[0]?.kind ?? 'other';
  let writesUnknown = false;
  let txnControl = false;
  for (const r of results) {
    for (const t of r.facts.reads) reads.add(t);
    for (const t of r.facts.writes) writes.add(t);
    for (const [k, v] of r.facts.relations) relations.set(k, v);
    for (const fn of r.facts.functions) functions.add(fn);
    sessionEffects.push(r.effect);
    writesUnknown ||= r.writesUnknown || r.facts.unsure;
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
    // A builtin's name cannot be shadowed in MySQL: nothing for the session to check.
    builtins: [],
    operators: [],
    sessionEffects,
    statementCount: results.length,
    txnControl,
  };
  const only = results.length === 1 ? results[0] : undefined;
  if (only === undefined) {
    c.reason = 'multi-statement';
    c.detail = `${results.length} statements`;
  } else if (only.refusal !== null) {
    c.reason = only.refusal.reason;
    c.detail = only.refusal.detail;
  } else if (only.kind !== 'read') {
    c.reason = 'not-a-read';
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
  if (f.noCache) refuse('hint', 'SQL_NO_CACHE');
  else if (f.selectInto !== null) refuse('select-into', f.selectInto);
  else if (f.locking !== null) refuse('locking-clause', f.locking);
  else if (f.systemCatalog !== null) refuse('system-catalog', f.systemCatalog);
  else if (f.sessionState !== null) refuse('session-state', f.sessionState);
  else if (f.volatile !== null) refuse('volatile-function', f.volatile);
  else if (f.reads.size === 0) refuse('no-table');
  else c.cacheable = true;
}
