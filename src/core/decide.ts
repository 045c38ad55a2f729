// decide(): one statement in one session → cache it, or bypass with a reason.
// Pure (reads the catalog memo, changes nothing but its recency). Called for
// every statement, hits included: the common read path allocates only the
// decision object.
//
// Order: first what the statement may write (every bypass carries it, so
// whichever refusal wins, the session still invalidates), then the refusals
// in a fixed order: classification, session taint, transaction, catalog
// (functions, relations), rules and hints.

import type { CatalogMemo, RelationInfo } from './catalog.js';
import type { DependencyGraph } from './dependency-graph.js';
import type { Rules } from './rules.js';
import type { Analysis } from '../sql/classifier.js';
import type { BypassReason, Decision, SessionView } from './types.js';

export interface DecideEnv {
  rules: Rules;
  catalog: CatalogMemo;
  /** cache.in_transactions */
  inTransactions: boolean;
  /** `dependencies:` edges of the config: written table → tables whose reads it invalidates. */
  extraEdges?: ReadonlyMap<string, readonly string[]>;
}

export function decide(a: Analysis, s: SessionView, env: DecideEnv): Decision {
  const c = a.classification;
  const shape = a.shaped.shape;
  const scope = s.catalogScope;
  // MySQL names tables `db.table` server-wide: one graph per upstream.
  const graph = env.catalog.graph(s.upstream, s.dialect === 'mysql' ? '' : s.database);

  // 1. Effects. With the database's dependency graph, a written table brings
  // its closure (views over it, parents, children written through it, FK
  // actions, what its triggers write, YAML edges) and a trigger it cannot
  // analyse invalidates the whole database. Without one, the per-relation
  // facts: cascades, and any trigger or rule invalidates everything. An
  // unknown written relation, or a write that names no table, invalidates
  // the whole database either way.
  let writes = c.writes;
  let writesUnknown = c.writesUnknown || (c.kind === 'write' && c.writes.length === 0);
  if (c.writes.length > 0) {
    const expanded = new Set(c.writes);
    const covered = new Set<string>();
    for (const ref of c.relations) {
      const info = env.catalog.relation(scope, ref);
      if (info === undefined || !(expanded.has(ref.name) || expanded.has(info.name))) continue;
      covered.add(ref.name).add(info.name);
      for (const t of info.alsoInvalidates) expanded.add(t);
      if (info.invalidatesAll && (graph === undefined || !graphKnows(graph, info.name))) writesUnknown = true;
    }
    for (const w of c.writes) if (!covered.has(w)) writesUnknown = true;
    if (graph !== undefined) {
      for (const w of c.writes) {
        const effect = graph.write(w);
        for (const t of effect.tables) expanded.add(t);
        if (effect.unknown !== null) writesUnknown = true;
      }
    }
    if (env.extraEdges !== undefined && env.extraEdges.size > 0) for (const w of c.writes) for (const t of extraFor(env.extraEdges, w)) expanded.add(t);
    writes = [...expanded];
  }
  // A function of unknown volatility, or a volatile one, may write anything.
  // A stable one is cached when its body says what it reads; an immutable
  // one is trusted, and what its body reads is versioned too.
  let fnReason: BypassReason | null = null;
  let fnDetail = '';
  let fnReads: string[] | null = null;
  let fnMayWrite = false;
  for (const f of c.functions) {
    const info = env.catalog.fn(scope, f);
    if (info === undefined) {
      writesUnknown = fnMayWrite = true;
      if (fnReason !== 'unknown-function') {
        fnReason = 'unknown-function';
        fnDetail = f;
      }
    } else if (info.volatility === 'volatile') {
      writesUnknown = fnMayWrite = true;
      if (fnReason === null) {
        fnReason = 'user-function';
        fnDetail = `${f} is volatile`;
      }
    } else if (info.reads !== null) {
      if (info.reads.length > 0) (fnReads ??= []).push(...info.reads);
    } else if (info.volatility === 'stable' && fnReason === null) {
      fnReason = 'user-function';
      fnDetail = `${f} is stable and its body cannot be analysed: ${info.detail ?? 'unknown'}`;
    }
  }

  // Whether the statement may have changed the catalog (DDL, or code that
  // could run DDL: CALL, DO, an unknown or volatile function): the session
  // then forgets what the catalog taught. A write that is unknown only
  // because its relation has not been looked up yet does not.
  const catalogMayChange = c.kind === 'ddl' || c.writesUnknown || (c.kind === 'write' && c.writes.length === 0) || fnMayWrite;

  // 2. The classification. A statement that writes is never cached, whatever
  // its cacheable flag says.
  // 'no-table' is judged below, where a function's reads count.
  if ((!c.cacheable && c.reason !== 'no-table') || c.kind !== 'read' || c.writes.length > 0 || c.writesUnknown) {
    const detail = c.detail ?? (c.reason === undefined ? c.kind : undefined);
    return bypass(c.reason ?? 'not-a-read', detail, shape, writes, writesUnknown, catalogMayChange);
  }
  if (a.shaped.volatileLiteral) return bypass('volatile-literal', undefined, shape, writes, writesUnknown, catalogMayChange);
  // No table named: a function may still read some (SELECT f()), or be why.
  if (c.reads.length === 0 && fnReads === null) {
    return fnReason === null ? bypass('no-table', undefined, shape, writes, writesUnknown, catalogMayChange) : bypass(fnReason, fnDetail, shape, writes, writesUnknown, catalogMayChange);
  }

  // 3. The session.
  if (s.taint !== null) return bypass(s.taint.reason, s.taint.detail, shape, writes, writesUnknown, catalogMayChange);
  if (s.inTransaction && !env.inTransactions) return bypass('in-transaction', undefined, shape, writes, writesUnknown, catalogMayChange);

  // 4. The catalog: analysable functions, plain tables, and views and
  // inheritance trees the graph can follow. A read carries the versions of
  // every table under what it names (hit path: allocates only then).
  if (fnReason !== null) return bypass(fnReason, fnDetail, shape, writes, writesUnknown, catalogMayChange);
  let reads: string[] = c.reads;
  for (const ref of c.relations) {
    const info: RelationInfo | undefined = env.catalog.relation(scope, ref);
    if (info === undefined) {
      return bypass('unknown-relation', refName(ref.schema, ref.name), shape, writes, writesUnknown, catalogMayChange);
    }
    if (!info.cacheable && !(info.needsGraph === true && graph !== undefined && graphKnows(graph, info.name))) {
      const detail = info.detail ?? refName(ref.schema, ref.name);
      return bypass(info.reason ?? 'relation-kind', detail, shape, writes, writesUnknown, catalogMayChange);
    }
    if (graph === undefined) continue;
    const effect = graph.read(info.name);
    if (effect.refusal !== null) return bypass('relation-kind', effect.refusal, shape, writes, writesUnknown, catalogMayChange);
    if (effect.tables.length > 1) reads = union(reads, c.reads, effect.tables);
  }
  if (fnReads !== null) {
    // Without the graph a table a function reads could be a view or a
    // parent whose base tables nothing would version.
    if (graph === undefined) return bypass('user-function', 'its body reads tables and the dependency graph is not loaded', shape, writes, writesUnknown, catalogMayChange);
    for (const t of fnReads) {
      const effect = graph.read(t);
      if (effect.refusal !== null) return bypass('user-function', effect.refusal, shape, writes, writesUnknown, catalogMayChange);
      reads = union(reads, c.reads, effect.tables);
    }
  }

  // 5. Rules and hints (a rule naming a table applies to views over it too).
  const m = env.rules.match(shape, reads, a.shaped.hints);
  if (!m.cache) return bypass(m.reason ?? 'rule', m.rule ?? undefined, shape, writes, writesUnknown, catalogMayChange);
  return { action: 'cache', database: s.database, reads, ttlMs: m.ttlMs, shape, rule: m.rule };
}

/**
 * The graph covers what the relation's facts flag (triggers, a view, a
 * partition…). Facts are looked up per relation when first needed, so they
 * can be newer than the graph: a trigger or view created behind the proxy
 * since the graph was read. Then the conservative facts decide, and the
 * graph is marked for reloading before the next statement (the one side
 * effect of decide() besides recency).
 */
function graphKnows(graph: DependencyGraph, name: string): boolean {
  if (graph.knows(name)) return true;
  graph.outdated = true;
  return false;
}

/** YAML edges of a written table. MySQL names tables `db.table`: an edge
 * written `orders` matches `app.orders`, and its unqualified targets are
 * read in the same database. */
function extraFor(edges: ReadonlyMap<string, readonly string[]>, written: string): string[] {
  const out = [...(edges.get(written) ?? [])];
  const dot = written.indexOf('.');
  if (dot >= 0) {
    const db = written.slice(0, dot + 1);
    for (const t of edges.get(written.slice(dot + 1)) ?? []) out.push(t.includes('.') ? t : db + t);
  }
  return out;
}

/** `reads` plus `more`, copying `reads` only the first time it grows past `original`. */
function union(reads: string[], original: string[], more: readonly string[]): string[] {
  let out = reads;
  for (const t of more) {
    if (out.includes(t)) continue;
    if (out === original) out = [...original];
    out.push(t);
  }
  return out;
}

function bypass(
  reason: BypassReason,
  detail: string | undefined,
  shape: string,
  writes: string[],
  writesUnknown: boolean,
  catalogMayChange: boolean,
): Decision {
  const d: Decision = { action: 'bypass', reason, shape, writes, writesUnknown };
  if (detail !== undefined) d.detail = detail;
  if (catalogMayChange) d.catalogMayChange = true;
  return d;
}

function refName(schema: string | null, name: string): string {
  return schema === null ? name : `${schema}.${name}`;
}
