// The generic walk over a libpg-query parse tree: collects every relation
// (read or written), function call and construct that makes a read unsafe to
// cache, honouring WITH scoping so CTE names are never taken for tables.
// Statement-specific rules (what a CREATE or GRANT writes) live in
// postgres-statements.ts; this file knows expressions and queries.
//
// Tree shape: a node is `{TypeName: {fields}}`, but fields typed as one
// concrete struct are bare (`InsertStmt.relation` is a RangeVar without its
// wrapper, `SelectStmt.larg` a bare SelectStmt). So RangeVars are recognised
// by their fields, and WITH clauses wherever a `withClause` field appears.

import type { TableRef } from '../core/types.js';
import { isSetConfig, judgeFunction } from './volatile-functions.js';

export type Obj = Record<string, unknown>;

/** What one statement's tree shows. */
export interface Facts {
  reads: Set<string>;
  writes: Set<string>;
  /** Keyed by schema + NUL + name. */
  relations: Map<string, TableRef>;
  functions: Set<string>;
  /** Functions judged safe builtins, lower-case, without schema. */
  builtins: Set<string>;
  /** Operator symbols used, without schema. */
  operators: Set<string>;
  /** Detail of the first construct that reads the clock or is random. */
  volatile: string | null;
  /** `FOR UPDATE` / `FOR SHARE`… anywhere in the tree. */
  locking: string | null;
  /** SELECT … INTO. */
  selectInto: boolean;
  /** INSERT/UPDATE/DELETE/MERGE anywhere (a data-modifying CTE in a SELECT). */
  modifying: boolean;
  systemCatalog: string | null;
  /** A temporary relation named or created (detail: its name). */
  temp: string | null;
  setConfig: boolean;
}

export function newFacts(): Facts {
  return {
    reads: new Set(),
    writes: new Set(),
    relations: new Map(),
    functions: new Set(),
    builtins: new Set(),
    operators: new Set(),
    volatile: null,
    locking: null,
    selectInto: false,
    modifying: false,
    systemCatalog: null,
    temp: null,
    setConfig: false,
  };
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A RangeVar, wrapped (`{RangeVar: …}`) or bare. `relname` alone decides:
 * no other node of a raw parse tree has it, and missing a table here would
 * cache a read that nothing invalidates. */
export function asRangeVar(v: unknown): Obj | undefined {
  if (!isObj(v)) return undefined;
  const inner = isObj(v['RangeVar']) ? v['RangeVar'] : v;
  return typeof inner['relname'] === 'string' ? inner : undefined;
}

/** `[{String: {sval}}…]` → the strings (qualified names, function names). */
export function stringList(v: unknown): string[] {
  const out: string[] = [];
  for (const item of asArray(v)) {
    const s = isObj(item) && isObj(item['String']) ? str(item['String']['sval']) : undefined;
    if (s !== undefined) out.push(s);
  }
  return out;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast']);

/**
 * Records a relation. A read of an unqualified name that an enclosing WITH
 * defines is a CTE reference, not a table. Targets of writes are always
 * tables (INSERT INTO cte is an error), so they ignore the scope.
 */
export function addRelation(rv: Obj, facts: Facts, role: 'read' | 'write', scope: readonly string[]): void {
  const name = str(rv['relname']);
  if (name === undefined) return;
  const schema = str(rv['schemaname']) ?? null;
  if (role === 'read' && schema === null && scope.includes(name)) return;
  addNamed(schema, name, facts, role);
  if (rv['relpersistence'] === 't' && facts.temp === null) facts.temp = name;
}

/** Records a relation known by name only (DROP, COMMENT, RENAME targets). */
export function addNamed(schema: string | null, name: string, facts: Facts, role: 'read' | 'write'): void {
  facts.relations.set(`${schema ?? ''}\u0000${name}`, { schema, name });
  (role === 'read' ? facts.reads : facts.writes).add(name);
  if (schema !== null && (schema === 'pg_temp' || schema.startsWith('pg_temp_'))) {
    if (facts.temp === null) facts.temp = name;
  } else if (schema !== null ? SYSTEM_SCHEMAS.has(schema) || schema.startsWith('pg_toast') : name.startsWith('pg_')) {
    // Unqualified pg_* resolves to pg_catalog first (pg_class, pg_stat_activity…).
    if (facts.systemCatalog === null) facts.systemCatalog = schema === null ? name : `${schema}.${name}`;
  }
}

/** Walks any subtree: expressions, queries, clauses. */
export function walk(node: unknown, facts: Facts, scope: readonly string[]): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, facts, scope);
    return;
  }
  if (!isObj(node)) return;
  const rv = asRangeVar(node);
  if (rv !== undefined) {
    addRelation(rv, facts, 'read', scope);
    return;
  }
  walkFields(node, facts, scope, null);
}

/** Walks an object's fields, opening its WITH scope first; `skip` names a
 * field the caller has handled (a write target). */
export function walkFields(o: Obj, facts: Facts, scope: readonly string[], skip: string | null): void {
  const inner = isObj(o['withClause']) ? walkWith(o['withClause'], facts, scope) : scope;
  for (const key in o) {
    const v = o[key];
    if (typeof v !== 'object' || v === null || key === skip || key === 'withClause') continue;
    switch (key) {
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        if (isObj(v)) walkModify(v, facts, inner);
        break;
      case 'FuncCall':
        if (isObj(v)) funcCall(v, facts);
        walk(v, facts, inner);
        break;
      case 'SQLValueFunction':
        if (isObj(v)) valueFunction(v, facts);
        break;
      case 'TypeCast':
        if (isObj(v)) typeCast(v, facts);
        walk(v, facts, inner);
        break;
      case 'A_Expr':
        if (isObj(v)) exprOperators(v, facts);
        walk(v, facts, inner);
        break;
      case 'SubLink':
        // `x = ANY (SELECT …)`, `x IN (SELECT …)` (operName absent: =).
        if (isObj(v)) {
          if (v['operName'] !== undefined) addOperator(v['operName'], facts);
          else if (v['subLinkType'] === 'ANY_SUBLINK') facts.operators.add('=');
        }
        walk(v, facts, inner);
        break;
      case 'SortBy':
        // ORDER BY x USING <
        if (isObj(v) && v['useOp'] !== undefined) addOperator(v['useOp'], facts);
        walk(v, facts, inner);
        break;
      case 'CaseExpr':
        // CASE x WHEN y …: the server compares x = y by name.
        if (isObj(v) && v['arg'] !== undefined) facts.operators.add('=');
        walk(v, facts, inner);
        break;
      case 'RangeTableSample':
        if (isObj(v)) tableSample(v, facts);
        walk(v, facts, inner);
        break;
      case 'intoClause': {
        facts.selectInto = true;
        const rel = isObj(v) ? asRangeVar(v['rel']) : undefined;
        if (rel !== undefined) addRelation(rel, facts, 'write', inner);
        break;
      }
      case 'lockingClause': {
        // Not walked: FOR UPDATE OF a names aliases, not tables.
        const first = asArray(v)[0];
        const clause = isObj(first) && isObj(first['LockingClause']) ? first['LockingClause'] : undefined;
        if (clause !== undefined && facts.locking === null) facts.locking = lockingDetail(clause['strength']);
        break;
      }
      default:
        walk(v, facts, inner);
    }
  }
}

/** INSERT/UPDATE/DELETE/MERGE, at top level or inside a WITH. */
export function walkModify(stmt: Obj, facts: Facts, scope: readonly string[]): void {
  facts.modifying = true;
  const target = asRangeVar(stmt['relation']);
  if (target !== undefined) addRelation(target, facts, 'write', scope);
  walkFields(stmt, facts, scope, 'relation');
}

/**
 * Walks the CTE queries with the names each may see, and returns the scope
 * of the statement body. Without RECURSIVE a CTE sees only the ones before
 * it (`WITH t AS (SELECT * FROM t)` reads the table t); with RECURSIVE all.
 */
function walkWith(withClause: Obj, facts: Facts, scope: readonly string[]): string[] {
  const ctes: Obj[] = [];
  for (const item of asArray(withClause['ctes'])) {
    if (isObj(item) && isObj(item['CommonTableExpr'])) ctes.push(item['CommonTableExpr']);
  }
  const names = ctes.map((c) => str(c['ctename']) ?? '');
  const all = scope.concat(names);
  ctes.forEach((cte, i) => {
    walk(cte['ctequery'], facts, withClause['recursive'] === true ? all : scope.concat(names.slice(0, i)));
  });
  return all;
}

function funcCall(call: Obj, facts: Facts): void {
  const parts = stringList(call['funcname']);
  if (parts.length === 0) return;
  if (isSetConfig(parts)) facts.setConfig = true;
  const verdict = judgeFunction(parts);
  if (verdict.kind === 'volatile') {
    if (facts.volatile === null) facts.volatile = verdict.detail;
  } else if (verdict.kind === 'lookup') {
    facts.functions.add(verdict.name);
  } else {
    // Recorded even when written pg_catalog.name: the check is conservative.
    facts.builtins.add((parts[parts.length - 1] ?? '').toLowerCase());
  }
  // timestamptz(x), date(x): with no function of that argument type, the
  // server makes it a cast, which may read the clock (see dateTimeCast).
  const args = asArray(call['args']);
  const name = parts[parts.length - 1] ?? '';
  const builtin = parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog');
  if (builtin && args.length === 1 && CLOCK_CAST_TYPES.has(name)) dateTimeCast(name, args[0], facts);
}

/** Operator names (`[String…]`, schema first) → the symbol, schema dropped. */
function addOperator(nameList: unknown, facts: Facts): void {
  const parts = stringList(nameList);
  const op = parts[parts.length - 1];
  if (op !== undefined) facts.operators.add(op);
}

/** BETWEEN is spelt with a keyword in the tree; the server expands it to
 * comparisons it resolves by name. */
const BETWEEN_OPERATORS: Record<string, string[]> = {
  AEXPR_BETWEEN: ['>=', '<='],
  AEXPR_BETWEEN_SYM: ['>=', '<='],
  AEXPR_NOT_BETWEEN: ['<', '>'],
  AEXPR_NOT_BETWEEN_SYM: ['<', '>'],
};

function exprOperators(expr: Obj, facts: Facts): void {
  const between = BETWEEN_OPERATORS[str(expr['kind']) ?? ''];
  if (between !== undefined) for (const op of between) facts.operators.add(op);
  else addOperator(expr['name'], facts);
}

/** Date/time types whose input function reads the clock for 'now', 'today',
 * 'tomorrow', 'yesterday' (and their spellings in any case or with spaces). */
const CLOCK_CAST_TYPES = new Set(['date', 'time', 'timetz', 'timestamp', 'timestamptz', 'abstime']);

/**
 * A cast to a date/time type of a computed text reads the clock when the
 * text comes out as 'now': `('no'||'w')::timestamptz`,
 * `reverse('won')::timestamptz`. Constants are checked by the shape
 * (volatile-literal), parameters by the session ($n values); a plain column
 * is let through. Known limit: a text column holding 'now' cast to a
 * date/time type is cached all the same (the column's type is not known here).
 */
function dateTimeCast(type: string, arg: unknown, facts: Facts): void {
  if (facts.volatile !== null || isPlainOperand(arg)) return;
  facts.volatile = `cast of an expression to ${type}`;
}

/** A constant, column or parameter, possibly under further casts. */
function isPlainOperand(node: unknown): boolean {
  let n = node;
  while (isObj(n) && isObj(n['TypeCast'])) n = n['TypeCast']['arg'];
  return isObj(n) && (isObj(n['A_Const']) || isObj(n['ColumnRef']) || isObj(n['ParamRef']));
}

/** CURRENT_DATE and friends read the clock; CURRENT_USER, CURRENT_SCHEMA,
 * CURRENT_CATALOG… are fixed by the key (user, search_path, database). */
const CLOCK_VALUE_FUNCTIONS: Record<string, string> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
};

function valueFunction(svf: Obj, facts: Facts): void {
  const name = CLOCK_VALUE_FUNCTIONS[str(svf['op']) ?? ''];
  if (name !== undefined && facts.volatile === null) facts.volatile = name;
}

/** Object-identifier types: their input and output look names up in the
 * catalog (`oid::regclass` prints a table's current name). */
const OID_TYPES = new Set([
  'regclass', 'regtype', 'regproc', 'regprocedure', 'regoper', 'regoperator', 'regnamespace', 'regrole', 'regconfig',
  'regdictionary', 'regcollation',
]);

function typeCast(cast: Obj, facts: Facts): void {
  const typeName = isObj(cast['typeName']) ? cast['typeName'] : {};
  const names = stringList(typeName['names']);
  const name = names[names.length - 1];
  if (name !== undefined && OID_TYPES.has(name) && facts.volatile === null) facts.volatile = `::${name}`;
  if (name !== undefined && CLOCK_CAST_TYPES.has(name)) dateTimeCast(name, cast['arg'], facts);
}

/** TABLESAMPLE picks random rows unless REPEATABLE fixes the seed of a
 * built-in method (extension methods such as system_time ignore it). */
function tableSample(sample: Obj, facts: Facts): void {
  const method = stringList(sample['method']).join('.');
  const seeded = sample['repeatable'] !== undefined && (method === 'bernoulli' || method === 'system');
  if (!seeded && facts.volatile === null) facts.volatile = `tablesample ${method}`;
}

function lockingDetail(strength: unknown): string {
  switch (strength) {
    case 'LCS_FORKEYSHARE':
      return 'FOR KEY SHARE';
    case 'LCS_FORSHARE':
      return 'FOR SHARE';
    case 'LCS_FORNOKEYUPDATE':
      return 'FOR NO KEY UPDATE';
    default:
      return 'FOR UPDATE';
  }
}
