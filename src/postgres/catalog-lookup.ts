// The proxy's own catalog query, sent on the client's upstream connection
// while it is idle (the proxy holds no password of its own): the session
// settings the server does not report, and, for relations and functions the
// proxy has not seen yet, what a cache decision needs to know about them.
// It only reads the catalog and cannot fail on odd names (to_regclass
// returns NULL). Inside a client's transaction only the settings part is
// sent (session-lookups.ts): a cancel or statement_timeout hitting it there
// would abort that transaction.

import type { FunctionInfo, RelationInfo, Volatility } from '../core/catalog.js';
import type { GraphEdges } from '../core/dependency-graph.js';
import type { TableRef } from '../core/types.js';
import { functionReads, graphSql, readGraphRows } from './dependency-lookup.js';
import { LOOKED_UP_SETTINGS } from './session-context.js';

export interface LookupRequest {
  settings: boolean;
  relations: TableRef[];
  functions: string[];
  /** The database's dependency graph (dependency-lookup.ts). */
  graph?: boolean;
}

export interface LookupResult {
  settings: Map<string, string> | null;
  /** With the settings: builtin function names also defined outside
   * pg_catalog (a user overload may be what runs), with the worst
   * volatility of those, and operators backed by non-immutable user functions. */
  shadowed: Map<string, Volatility> | null;
  userOperators: Set<string> | null;
  relations: Array<[TableRef, RelationInfo]>;
  functions: Array<[string, FunctionInfo]>;
  graph: GraphEdges | null;
}

/** E'' literals mean the same whatever standard_conforming_strings says. */
function literal(text: string): string {
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function qualified(ref: TableRef): string {
  return ref.schema === null ? quoteIdent(ref.name) : `${quoteIdent(ref.schema)}.${quoteIdent(ref.name)}`;
}

// A column default, generated column or CHECK constraint that calls a
// non-builtin, non-immutable function may write anything when a row is
// written (a default that logs into another table): treated like a trigger.
const WRITING_DEFAULTS = `SELECT 1 FROM pg_catalog.pg_depend dep
  JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
  WHERE p.provolatile <> 'i' AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
    AND ((dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid IN (SELECT d.oid FROM pg_catalog.pg_attrdef d WHERE d.adrelid = c.oid))
      OR (dep.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND dep.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid)))`;

// FK actions that make a write to the referenced table change the
// referencing one: CASCADE, SET NULL, SET DEFAULT (on delete or update).
const CASCADING = `(k.confdeltype IN ('c','n','d') OR k.confupdtype IN ('c','n','d'))`;

const GRAPH_LOCK_TIMEOUT = '1s';
const GRAPH_STATEMENT_TIMEOUT = '10s';

export function lookupSql(req: LookupRequest): string {
  const parts: string[] = [];
  if (req.settings) {
    const names = LOOKED_UP_SETTINGS.map((n) => literal(n)).join(',');
    parts.push(`SELECT 's', name::text, setting::text, NULL::text, NULL::text FROM pg_catalog.pg_settings WHERE name IN (${names})`);
    parts.push(`SELECT 's', 'current_user', current_user::text, NULL::text, NULL::text`);
    parts.push(
      `SELECT 'b', p.proname::text, max(p.provolatile::text), NULL::text, NULL::text FROM pg_catalog.pg_proc p
        WHERE p.pronamespace NOT IN ('pg_catalog'::pg_catalog.regnamespace, 'information_schema'::pg_catalog.regnamespace)
          AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc b WHERE b.pronamespace = 'pg_catalog'::pg_catalog.regnamespace AND b.proname = p.proname)
        GROUP BY p.proname`,
    );
    parts.push(
      `SELECT 'o', o.oprname::text, NULL::text, NULL::text, NULL::text FROM pg_catalog.pg_operator o
        JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
        WHERE o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace AND p.provolatile <> 'i'
        GROUP BY o.oprname`,
    );
  }
  if (req.relations.length > 0) {
    const regs = req.relations.map((r) => `pg_catalog.to_regclass(${literal(qualified(r))})`).join(',');
    parts.push(
      `SELECT 'r', o.n::text, c.relkind::text,
        concat_ws(',',
          CASE WHEN c.relhassubclass THEN 'has-children' END,
          CASE WHEN c.relispartition OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) THEN 'is-child' END,
          CASE WHEN c.relnamespace = pg_catalog.pg_my_temp_schema() THEN 'temp' END,
          CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = c.oid AND w.ev_type <> '1')
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) THEN 'triggers' END,
          CASE WHEN c.relrowsecurity THEN 'row-security' END,
          CASE WHEN EXISTS (${WRITING_DEFAULTS}) THEN 'triggers' END),
        (WITH RECURSIVE dep(oid) AS (
            SELECT k.conrelid FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = c.oid AND ${CASCADING}
          UNION
            SELECT k.conrelid FROM pg_catalog.pg_constraint k JOIN dep ON k.confrelid = dep.oid WHERE k.contype = 'f' AND ${CASCADING})
         SELECT CASE WHEN count(*) = 0 THEN NULL ELSE
           pg_catalog.array_to_json(pg_catalog.array_agg(r.relname::text))::text
           || CASE WHEN bool_or(EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = r.oid AND w.ev_type <> '1')
                   OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = r.oid AND NOT t.tgisinternal)) THEN '!' ELSE '' END END
         FROM dep JOIN pg_catalog.pg_class r ON r.oid = dep.oid)
       FROM unnest(ARRAY[${regs}]::pg_catalog.oid[]) WITH ORDINALITY AS o(oid, n)
       LEFT JOIN pg_catalog.pg_class c ON c.oid = o.oid`,
    );
  }
  if (req.functions.length > 0) {
    const names = req.functions.map((f) => literal(f)).join(',');
    // The worst volatility over every overload and schema: 'i' < 's' < 'v'.
    // A name arrives as `schema.name` or `name`, and a quoted name may hold a
    // dot itself: every reading of it counts. An aggregate is as volatile as
    // the worst of its support functions (CREATE AGGREGATE marks itself
    // immutable whatever its transition function does).
    parts.push(
      `SELECT 'f', f.n, (SELECT max(CASE WHEN p.prokind = 'a' THEN (
            SELECT max(q.provolatile::text) FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc q
              ON q.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
             WHERE a.aggfnoid = p.oid) ELSE p.provolatile::text END)
          FROM pg_catalog.pg_proc p
          WHERE p.proname = f.n
             OR p.proname = pg_catalog.split_part(f.n, '.', pg_catalog.array_length(pg_catalog.string_to_array(f.n, '.'), 1))
             OR p.proname = pg_catalog.substr(f.n, pg_catalog.strpos(f.n, '.') + 1)),
        -- Every overload's body (what it reads): [[language, definition], …]
        (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(l.lanname,
                  CASE WHEN l.lanname IN ('plpgsql', 'sql') AND p.prokind = 'f' THEN pg_catalog.pg_get_functiondef(p.oid) END))::text
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
          WHERE p.proname = f.n
             OR p.proname = pg_catalog.split_part(f.n, '.', pg_catalog.array_length(pg_catalog.string_to_array(f.n, '.'), 1))
             OR p.proname = pg_catalog.substr(f.n, pg_catalog.strpos(f.n, '.') + 1)),
        NULL::text
       FROM unnest(ARRAY[${names}]::text[]) AS f(n)`,
    );
  }
  if (req.graph === true) {
    // pg_get_viewdef takes a share lock on every table under the view: a
    // migration holding one must not stall a client's statement behind the
    // proxy's look-up. It fails fast instead; decisions stay conservative
    // until the next try. (SET LOCAL: the statements of one Query message
    // run in one implicit transaction; these settings end with it.)
    return `SET LOCAL lock_timeout = '${GRAPH_LOCK_TIMEOUT}'; SET LOCAL statement_timeout = '${GRAPH_STATEMENT_TIMEOUT}';\n${[...parts, ...graphSql()].join('\nUNION ALL\n')}`;
  }
  return parts.join('\nUNION ALL\n');
}

const KIND_NAMES: Record<string, string> = {
  v: 'view',
  m: 'materialized view',
  p: 'partitioned table',
  f: 'foreign table',
  S: 'sequence',
  c: 'composite type',
  i: 'index',
  I: 'partitioned index',
  t: 'TOAST table',
};

function relationInfo(ref: TableRef, kind: string | null, flags: string, cascades: string | null): RelationInfo {
  const base = { name: ref.name, alsoInvalidates: [] as string[], invalidatesAll: false };
  if (kind === null) return { ...base, cacheable: false, reason: 'unknown-relation', detail: `${ref.name} not found` };
  const flagSet = new Set(flags.split(',').filter(Boolean));
  if (flagSet.has('triggers')) base.invalidatesAll = true;
  if (cascades !== null) {
    const all = cascades.endsWith('!');
    base.alsoInvalidates = JSON.parse(all ? cascades.slice(0, -1) : cascades) as string[];
    if (all) base.invalidatesAll = true;
  }
  if (flagSet.has('temp')) return { ...base, cacheable: false, reason: 'temp-table', detail: ref.name };
  // Policies may read other tables or settings the key does not hold.
  if (flagSet.has('row-security')) return { ...base, cacheable: false, reason: 'relation-kind', detail: `${ref.name} has row-level security` };
  // A view reads its base tables, a parent its children, and a write to a
  // child changes its parent: cacheable only with the database's dependency
  // graph, which says what a read of it reads (decide.ts).
  // Without the graph, a write through one of these lands where the proxy
  // cannot see (base tables, children): the whole database is invalidated.
  if (kind === 'v' || kind === 'p') {
    return { ...base, invalidatesAll: true, cacheable: false, needsGraph: true, reason: 'relation-kind', detail: `${ref.name} is a ${KIND_NAMES[kind] ?? kind} and the dependency graph is not loaded` };
  }
  // A materialized view changes only on REFRESH, which bumps it: cacheable.
  if (kind !== 'r' && kind !== 'm') {
    return { ...base, cacheable: false, reason: 'relation-kind', detail: `${ref.name} is a ${KIND_NAMES[kind] ?? kind}` };
  }
  if (flagSet.has('has-children') || flagSet.has('is-child')) {
    return { ...base, invalidatesAll: true, cacheable: false, needsGraph: true, reason: 'relation-kind', detail: `${ref.name} is part of an inheritance tree and the dependency graph is not loaded` };
  }
  return { ...base, cacheable: true };
}

const VOLATILITY: Record<string, Volatility> = { i: 'immutable', s: 'stable', v: 'volatile' };

/** Rows are (kind, name, a, b, c) in text format. */
export function readLookup(req: LookupRequest, rows: Array<Array<string | null>>): LookupResult {
  const result: LookupResult = {
    settings: req.settings ? new Map() : null,
    shadowed: req.settings ? new Map() : null,
    userOperators: req.settings ? new Set() : null,
    relations: [],
    functions: [],
    graph: null,
  };
  const graphRows: Array<Array<string | null>> = [];
  for (const row of rows) {
    const [k, n, a, b, c] = row;
    if (k !== undefined && k !== null && k.startsWith('g')) {
      graphRows.push(row);
      continue;
    }
    if (k === 's' && n && a !== null && a !== undefined) result.settings?.set(n, a);
    else if (k === 'b' && n) result.shadowed?.set(n, VOLATILITY[a ?? 'v'] ?? 'volatile');
    else if (k === 'o' && n) result.userOperators?.add(n);
    else if (k === 'r' && n) {
      const ref = req.relations[Number(n) - 1];
      if (ref) result.relations.push([ref, relationInfo(ref, a ?? null, b ?? '', c ?? null)]);
    } else if (k === 'f' && n) {
      // No such function: the statement fails anyway; volatile is the safe answer.
      result.functions.push([n, functionInfo(VOLATILITY[a ?? 'v'] ?? 'volatile', b ?? null)]);
    }
  }
  if (req.graph === true) result.graph = readGraphRows(graphRows);
  return result;
}

/** Volatility and, from every overload's body, the tables the function reads. */
function functionInfo(volatility: Volatility, bodies: string | null): FunctionInfo {
  // Volatile: never cached, its body does not matter.
  if (volatility === 'volatile') return { volatility, reads: null, detail: 'it is volatile' };
  let overloads: unknown;
  try {
    overloads = bodies === null ? [] : JSON.parse(bodies);
  } catch {
    overloads = null;
  }
  if (!Array.isArray(overloads)) return { volatility, reads: null, detail: 'its definition could not be read' };
  const reads = new Set<string>();
  for (const o of overloads) {
    const [language, definition] = Array.isArray(o) ? (o as unknown[]) : [];
    const r = functionReads(typeof language === 'string' ? language : 'unknown', typeof definition === 'string' ? definition : null);
    if (typeof r === 'string') return { volatility, reads: null, detail: r };
    for (const t of r) reads.add(t);
  }
  return { volatility, reads: [...reads] };
}
