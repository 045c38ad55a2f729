// The dependency graph of the session's database, read from the catalog in
// one query (sent like every catalog look-up: on the client's own upstream
// connection while it is idle, see session-lookups.ts) and turned into
// GraphEdges here:
//   views      pg_rewrite + pg_depend: the relations each view's query reads;
//              pg_get_viewdef classified, so a view over now() or a user
//              function is refused like the query itself would be
//   partitions pg_inherits (declarative partitions and INHERITS alike)
//   cascades   pg_constraint: FK actions that write (CASCADE, SET NULL, SET DEFAULT)
//   triggers   pg_trigger → pg_get_functiondef, its statements classified for
//              what they write; dynamic SQL, other languages or a call of a
//              user function make the table opaque (a write there
//              invalidates the whole database)
//   rules      non-SELECT rules: opaque
//   defaults   a default or CHECK calling a non-immutable user function: opaque
// Rows share the catalog look-up's five text columns (kind, a, b, c, d).

import type { Classification } from '../core/types.js';
import { emptyEdges, type GraphEdges, type RelKind } from '../core/dependency-graph.js';
import { functionBodyStatements } from '../sql/postgres-parser.js';

const USER_RELATION = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

/** The graph query's parts, to be UNION ALLed with the rest of a look-up. */
export function graphSql(): string[] {
  return [
    // Relations that are not plain tables, or that row security guards.
    `SELECT 'gk', c.relname::text, c.relkind::text, CASE WHEN c.relrowsecurity THEN 'rls' END, NULL::text
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (c.relkind IN ('v','m','p','f') OR c.relrowsecurity) AND ${USER_RELATION}`,
    `SELECT 'gv', c.relname::text, pg_catalog.pg_get_viewdef(c.oid), NULL::text, NULL::text
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'v' AND ${USER_RELATION}`,
    // A view's _RETURN rule depends on every relation its query reads.
    `SELECT DISTINCT 'ge', v.relname::text, b.relname::text, NULL::text, NULL::text
       FROM pg_catalog.pg_rewrite r
       JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
       JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
       JOIN pg_catalog.pg_class b ON b.oid = d.refobjid
      WHERE r.ev_type = '1' AND v.relkind IN ('v','m') AND ${USER_RELATION}`,
    `SELECT 'gi', c.relname::text, p.relname::text, NULL::text, NULL::text
       FROM pg_catalog.pg_inherits i
       JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
       JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','p','f') AND ${USER_RELATION}`,
    `SELECT DISTINCT 'gf', t.relname::text, r.relname::text, NULL::text, NULL::text
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class t ON t.oid = k.confrelid
       JOIN pg_catalog.pg_class r ON r.oid = k.conrelid
      WHERE k.contype = 'f' AND (k.confdeltype IN ('c','n','d') OR k.confupdtype IN ('c','n','d'))`,
    `SELECT 'gt', c.relname::text, t.tgname::text, l.lanname::text,
            CASE WHEN l.lanname IN ('plpgsql', 'sql') THEN pg_catalog.pg_get_functiondef(t.tgfoid) END
       FROM pg_catalog.pg_trigger t
       JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
       JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      WHERE NOT t.tgisinternal AND ${USER_RELATION}`,
    `SELECT 'gr', c.relname::text, r.rulename::text, NULL::text, NULL::text
       FROM pg_catalog.pg_rewrite r
       JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE r.ev_type <> '1' AND ${USER_RELATION}`,
    // A default or CHECK that calls a non-immutable user function may write
    // anything when a row is written (a default that logs into another table).
    `SELECT DISTINCT 'gd', c.relname::text, p.proname::text, NULL::text, NULL::text
       FROM pg_catalog.pg_depend dep
       JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       LEFT JOIN pg_catalog.pg_attrdef ad ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND ad.oid = dep.objid
       LEFT JOIN pg_catalog.pg_constraint ck ON dep.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND ck.oid = dep.objid
       JOIN pg_catalog.pg_class c ON c.oid = COALESCE(ad.adrelid, ck.conrelid)
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE p.provolatile <> 'i' AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace AND ${USER_RELATION}`,
  ];
}

const KINDS: Record<string, RelKind> = { r: 'table', v: 'view', m: 'matview', p: 'partitioned', f: 'foreign' };

/** Rows of kinds g* in text format → the edges (bodies and view definitions classified). */
export function readGraphRows(rows: Array<Array<string | null>>): GraphEdges {
  const e = emptyEdges();
  const add = (m: Map<string, Set<string>>, k: string, v: string): void => {
    let s = m.get(k);
    if (s === undefined) m.set(k, (s = new Set()));
    s.add(v);
  };
  for (const [kind, a, b, c, d] of rows) {
    if (a === null || a === undefined) continue;
    switch (kind) {
      case 'gk':
        e.kinds.set(a, KINDS[b ?? ''] ?? 'other');
        if (c === 'rls') e.viewRefusals.set(a, `${a} has row-level security`);
        break;
      case 'gv': {
        const refusal = viewRefusal(a, b ?? '');
        if (refusal !== null) e.viewRefusals.set(a, refusal);
        break;
      }
      case 'ge':
        if (b) add(e.viewReads, a, b);
        break;
      case 'gi':
        if (b) add(e.parents, a, b);
        break;
      case 'gf':
        if (b) add(e.cascades, a, b);
        break;
      case 'gt': {
        const effect = triggerWrites(c ?? 'unknown', d ?? null);
        if (typeof effect === 'string') {
          if (!e.opaqueWrites.has(a)) e.opaqueWrites.set(a, `trigger ${b ?? '?'} on ${a}: ${effect}`);
        } else for (const t of effect) add(e.triggerWrites, a, t);
        break;
      }
      case 'gr':
        if (!e.opaqueWrites.has(a)) e.opaqueWrites.set(a, `rule ${b ?? '?'} on ${a}`);
        break;
      case 'gd':
        if (!e.opaqueWrites.has(a)) e.opaqueWrites.set(a, `a default or check of ${a} calls ${b ?? 'a user function'}`);
        break;
      default:
        break;
    }
  }
  return e;
}

/** Why reading the view (its own query, not what it reads) cannot be cached. */
function viewRefusal(view: string, definition: string): string | null {
  const statements = functionBodyStatements('sql', `CREATE FUNCTION v() RETURNS void LANGUAGE sql AS ${dollarQuoted(definition)}`);
  if (typeof statements === 'string') return `view ${view}: ${statements}`;
  for (const s of statements) {
    if (s.functions.length > 0) return `view ${view} calls ${s.functions[0]}`;
    // A view over no table at all (SELECT 1) is still a fine read.
    if (!s.cacheable && s.reason !== 'no-table') return `view ${view}: ${s.reason ?? s.kind}${s.detail ? ` (${s.detail})` : ''}`;
  }
  return null;
}

/** The tables a trigger function writes, or why it cannot be known. */
function triggerWrites(language: string, definition: string | null): string[] | string {
  if (definition === null) return `its function is written in ${language}`;
  const statements = functionBodyStatements(language, definition);
  if (typeof statements === 'string') return statements;
  return writesOf(statements);
}

/** What a list of body statements writes, or why it may write anything. */
export function writesOf(statements: Classification[]): string[] | string {
  const writes = new Set<string>();
  for (const s of statements) {
    if (s.writesUnknown) return `it may write tables it does not name (${s.detail ?? s.reason ?? s.kind})`;
    if (s.kind === 'ddl') return 'it runs DDL';
    // SET, set_config(): the session's settings change under its cache key.
    if (s.sessionEffects.some((e) => e.type !== 'none')) return 'it changes session settings';
    // A user function called from the body may write anything.
    if (s.functions.length > 0) return `it calls ${s.functions[0]}`;
    for (const t of s.writes) writes.add(t);
  }
  return [...writes];
}

/** What a function called in a SELECT reads, or why that cannot be known
 * (it writes, calls user or volatile functions, runs dynamic SQL…). */
export function functionReads(language: string, definition: string | null): string[] | string {
  if (definition === null) return `it is written in ${language}`;
  const statements = functionBodyStatements(language, definition);
  if (typeof statements === 'string') return statements;
  const reads = new Set<string>();
  for (const s of statements) {
    if (s.kind !== 'read' || s.writes.length > 0 || s.writesUnknown) return `it runs ${s.kind === 'read' ? 'a write' : s.kind === 'other' ? 'a statement that is not a read' : `a ${s.kind} statement`}`;
    if (s.functions.length > 0) return `it calls ${s.functions[0]}`;
    if (!s.cacheable && s.reason !== 'no-table') return `${s.reason ?? 'a statement that cannot be cached'}${s.detail ? ` (${s.detail})` : ''}`;
    for (const t of s.reads) reads.add(t);
  }
  return [...reads];
}

/** A dollar-quoted literal whose tag does not occur in the text. */
function dollarQuoted(text: string): string {
  let tag = 'v';
  while (text.includes(`$${tag}$`)) tag += 'v';
  return `$${tag}$${text}$${tag}$`;
}
