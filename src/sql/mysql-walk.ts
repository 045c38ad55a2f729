// The walk over a node-sql-parser (mysql build) tree: every table read or
// written, every function call, honouring WITH scoping so CTE names are not
// taken for tables and aliases are resolved to the tables they stand for.
//
// Tree shape (5.4.0): a statement is `{type: 'select'|'insert'|'replace'|
// 'update'|'delete', with, from, table, …}`; a subquery is wrapped as
// `{tableList, columnList, ast}`; UNION chains through `_next`; a FROM item
// is `{db, table, as, join, on, using}`, `{expr: subquery, as}` or, for a
// parenthesised join, `{expr: [items], joins: [items]}`; a call is
// `{type: 'function', name: {name: [{value}], schema?}, args}` or
// `{type: 'aggr_func', name: 'COUNT', args}`. Unknown fields are walked
// anyway, any `{table}`-shaped object met there counts as a read, and the
// parser's own tableList (and, in mysql-parser.ts, the tokens) are checked
// against the walk: a table missed is a read nothing invalidates.

import { addTable, type MysqlFacts } from './mysql-facts.js';
import { judgeFunction } from './mysql-functions.js';

type Obj = Record<string, unknown>;

interface Ref {
  db: string | null;
  name: string;
  alias: string | null;
}

interface Walk {
  facts: MysqlFacts;
  /** Every CTE name defined anywhere in the statement. */
  ctes: Set<string>;
}

/** The parser named a relation with a string literal (`FROM "t"` under
 * ANSI_QUOTES): which table the server reads is not known here. */
export class StringNamedRelation extends Error {}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A name in the tree: a string or `{type, value}`; doubled backticks undone. */
function nameText(v: unknown): string | null {
  const s = typeof v === 'string' ? v : isObj(v) && typeof v['value'] === 'string' ? v['value'] : null;
  return s === null ? null : s.replace(/``/g, '`');
}

/** Walks one parsed statement (or the array the parser returns); returns
 * every CTE name it defines. */
export function walkStatement(ast: unknown, facts: MysqlFacts, tableList: unknown): ReadonlySet<string> {
  const w: Walk = { facts, ctes: new Set() };
  walk(ast, w, []);
  crossCheck(tableList, w);
  return w.ctes;
}

function walk(v: unknown, w: Walk, scope: readonly string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) walk(item, w, scope);
    return;
  }
  if (!isObj(v)) return;
  if (isObj(v['ast']) && ('tableList' in v || 'columnList' in v)) {
    walk(v['ast'], w, scope);
    return;
  }
  switch (v['type']) {
    case 'select':
      select(v, w, scope);
      return;
    case 'insert':
    case 'replace':
      insert(v, w, scope);
      return;
    case 'update':
      update(v, w, scope);
      return;
    case 'delete':
      del(v, w, scope);
      return;
    case 'function':
      call(v, w);
      break;
    case 'aggr_func':
      aggregate(v, w);
      break;
    case 'column_ref':
    case 'var':
      return;
  }
  if (looksLikeTableRef(v)) {
    // A table reference where this walk did not expect one (a join group
    // the FROM handling below did not reach, a new tree shape): a read.
    for (const ref of fromList([v], w, scope)) addTable(w.facts, ref.db, ref.name, 'read');
    return;
  }
  for (const key in v) walk(v[key], w, scope);
}

/** `{db, table, as}`: not a column (`{type: 'column_ref', table}`) nor a
 * SET item (`{column, value, table}`), whose `table` is a qualifier. */
function looksLikeTableRef(v: Obj): boolean {
  const table = v['table'];
  return (typeof table === 'string' || (isObj(table) && typeof table['value'] === 'string')) && !('column' in v) && v['type'] === undefined;
}

/** Walks every field but `skip` (handled by the caller). */
function walkRest(o: Obj, w: Walk, scope: readonly string[], skip: readonly string[]): void {
  for (const key in o) if (!skip.includes(key)) walk(o[key], w, scope);
}

function select(s: Obj, w: Walk, scope: readonly string[]): void {
  const inner = withClause(s['with'], w, scope);
  for (const ref of fromList(s['from'], w, inner)) addTable(w.facts, ref.db, ref.name, 'read');
  walkRest(s, w, inner, ['with', 'from']);
}

function insert(s: Obj, w: Walk, scope: readonly string[]): void {
  const inner = withClause(s['with'], w, scope);
  for (const item of asArray(s['table'])) {
    const ref = isObj(item) ? tableRef(item) : null;
    if (ref !== null) addTable(w.facts, ref.db, ref.name, 'write');
  }
  walkRest(s, w, inner, ['with', 'table']);
}

/** Single-table UPDATE writes its table; a multi-table one writes the
 * tables its SET assigns (an unqualified column may belong to any). */
function update(s: Obj, w: Walk, scope: readonly string[]): void {
  const inner = withClause(s['with'], w, scope);
  const refs = fromList(s['table'], w, inner);
  const written = new Set<Ref>(refs.length === 1 ? refs : []);
  if (refs.length > 1) {
    for (const item of asArray(s['set'])) {
      const qualifier = isObj(item) && item['table'] !== null && item['table'] !== undefined ? nameText(item['table']) : null;
      const matches = qualifier === null ? [] : resolve({ db: null, name: qualifier }, refs);
      for (const ref of matches.length > 0 ? matches : refs) written.add(ref);
    }
  }
  for (const ref of refs) addTable(w.facts, ref.db, ref.name, written.has(ref) ? 'write' : 'read');
  walkRest(s, w, inner, ['with', 'table']);
}

/** DELETE targets (`table`) name tables or aliases of the FROM list. */
function del(s: Obj, w: Walk, scope: readonly string[]): void {
  const inner = withClause(s['with'], w, scope);
  const refs = fromList(s['from'], w, inner);
  const written = new Set<Ref>();
  for (const item of asArray(s['table'])) {
    const target = isObj(item) ? tableRef(item) : null;
    if (target === null) continue;
    const matches = resolve(target, refs);
    for (const ref of matches) written.add(ref);
    if (matches.length === 0) {
      addTable(w.facts, target.db, target.name, 'write');
      w.facts.unsure = true;
    }
  }
  for (const ref of refs) addTable(w.facts, ref.db, ref.name, written.has(ref) ? 'write' : 'read');
  walkRest(s, w, inner, ['with', 'table', 'from']);
}

/** Refs an UPDATE/DELETE target names: by alias, else by table name
 * (case-insensitively: a miss would leave a written table out). */
function resolve(target: { db: string | null; name: string }, refs: readonly Ref[]): Ref[] {
  const name = target.name.toLowerCase();
  const db = target.db?.toLowerCase() ?? null;
  if (db === null) {
    const byAlias = refs.filter((r) => r.alias?.toLowerCase() === name);
    if (byAlias.length > 0) return byAlias;
  }
  return refs.filter((r) => r.name.toLowerCase() === name && (db === null || r.db?.toLowerCase() === db));
}

/**
 * The base tables of a FROM (or UPDATE) list, CTE references left out;
 * derived tables, ON and USING are walked. A parenthesised join group,
 * `(a JOIN b ON …) JOIN c`, is `{expr: [a, b], joins: [c]}`, as the whole
 * list or as one item (node-sql-parser's own table list misses its tables).
 */
function fromList(list: unknown, w: Walk, scope: readonly string[]): Ref[] {
  const refs: Ref[] = [];
  const visit = (item: unknown): void => {
    if (Array.isArray(item)) {
      for (const x of item) visit(x);
      return;
    }
    if (!isObj(item)) return;
    if (Array.isArray(item['expr']) || Array.isArray(item['joins'])) {
      visit(item['expr']);
      visit(item['joins']);
      walkRest(item, w, scope, ['expr', 'joins']);
      return;
    }
    const ref = tableRef(item);
    if (ref !== null && !(ref.db === null && scope.includes(ref.name))) refs.push(ref);
    walkRest(item, w, scope, ['table', 'db', 'as']);
  };
  visit(list);
  return refs;
}

function tableRef(item: Obj): Ref | null {
  const table = item['table'];
  if (typeof table !== 'string' && !isObj(table)) return null;
  const name = nameText(table);
  const db = item['db'] === null || item['db'] === undefined ? null : nameText(item['db']);
  if (name === null || name === '' || db === '') throw new StringNamedRelation('a relation named by a string');
  const alias = typeof item['as'] === 'string' || isObj(item['as']) ? nameText(item['as']) : null;
  return { db, name, alias };
}

/**
 * Walks the CTE queries with the names each may see and returns the scope
 * of the statement body. Without RECURSIVE a CTE sees only the ones before
 * it (`WITH t AS (SELECT * FROM t)` reads the table t); with RECURSIVE all.
 */
function withClause(list: unknown, w: Walk, scope: readonly string[]): readonly string[] {
  const ctes = asArray(list).filter(isObj);
  if (ctes.length === 0) return scope;
  const names = ctes.map((cte) => nameText(cte['name']) ?? '');
  for (const name of names) w.ctes.add(name);
  const recursive = ctes.some((cte) => cte['recursive'] === true);
  const all = scope.concat(names);
  ctes.forEach((cte, i) => walk(cte['stmt'], w, recursive ? all : scope.concat(names.slice(0, i))));
  return all;
}

function call(node: Obj, w: Walk): void {
  const name = isObj(node['name']) ? node['name'] : {};
  const parts = asArray(name['name']).map((p) => nameText(p) ?? '');
  const schema = name['schema'] === null || name['schema'] === undefined ? null : nameText(name['schema']);
  const fn = parts.join('.');
  const quoted = asArray(name['name']).some((p) => isObj(p) && p['type'] === 'backticks_quote_string');
  if (schema !== null || parts.length !== 1 || quoted) {
    // db.fn() is a stored function; so may be `fn`() (a quoted name is not a keyword builtin).
    w.facts.functions.add((schema === null ? fn : `${schema}.${fn}`).toLowerCase());
    return;
  }
  const args = isObj(node['args']) ? node['args'] : null;
  const count = args === null ? 0 : Array.isArray(args['value']) ? args['value'].length : 1;
  judge(fn, count, w.facts);
}

function aggregate(node: Obj, w: Walk): void {
  const name = nameText(node['name']);
  if (name !== null) judge(name, 1, w.facts);
}

function judge(name: string, args: number, f: MysqlFacts): void {
  const verdict = judgeFunction(name.toUpperCase(), args);
  if (verdict === 'volatile') f.volatile ??= `${name.toLowerCase()}()`;
  else if (verdict === 'unknown') f.functions.add(name.toLowerCase());
}

/**
 * node-sql-parser's own table list (`select::db::name`): any table it saw
 * that the walk did not (a tree shape this walk does not know) counts too,
 * unless it is a CTE name. Missing a table would cache a read that nothing
 * invalidates.
 */
function crossCheck(tableList: unknown, w: Walk): void {
  for (const entry of asArray(tableList)) {
    if (typeof entry !== 'string') continue;
    const [kind = '', db = 'null', ...rest] = entry.split('::');
    const name = rest.join('::').replace(/``/g, '`');
    const schema = db === 'null' ? null : db.replace(/``/g, '`');
    if (name === '' || schema === '') throw new StringNamedRelation('a relation named by a string');
    if (schema === null && w.ctes.has(name)) continue;
    const key = `${schema?.toLowerCase() ?? ''}\u0000${name.toLowerCase()}`;
    if (w.facts.relations.has(key)) continue;
    addTable(w.facts, schema, name, kind === 'select' ? 'read' : 'write');
  }
}
