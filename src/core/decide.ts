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
import type { Rules } from './rules.js';
import type { Analysis } from '../sql/classifier.js';
import type { BypassReason, Decision, SessionView } from './types.js';

export interface DecideEnv {
  rules: Rules;
  catalog: CatalogMemo;
  /** cache.in_transactions */
  inTransactions: boolean;
}

export function decide(a: Analysis, s: SessionView, env: DecideEnv): Decision {
  const c = a.classification;
  const shape = a.shaped.shape;
  const scope = s.catalogScope;

  // 1. Effects. Written relations invalidate their cascades too; an unknown
  // written relation (cascades unknown) or one with triggers we cannot
  // analyse invalidates the whole database, and so does a write that names
  // no table at all.
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
      if (info.invalidatesAll) writesUnknown = true;
    }
    for (const w of c.writes) if (!covered.has(w)) writesUnknown = true;
    writes = [...expanded];
  }
  // A function of unknown volatility, or a volatile one, may write anything.
  let fnReason: BypassReason | null = null;
  let fnDetail = '';
  for (const f of c.functions) {
    const v = env.catalog.fn(scope, f);
    if (v === undefined) {
      writesUnknown = true;
      if (fnReason !== 'unknown-function') {
        fnReason = 'unknown-function';
        fnDetail = f;
      }
    } else if (v !== 'immutable') {
      if (v === 'volatile') writesUnknown = true;
      if (fnReason === null) {
        fnReason = 'user-function';
        fnDetail = `${f} is ${v}`;
      }
    }
  }

  // 2. The classification. A statement that writes is never cached, whatever
  // its cacheable flag says.
  if (!c.cacheable || c.kind !== 'read' || c.writes.length > 0 || c.writesUnknown) {
    const detail = c.detail ?? (c.reason === undefined ? c.kind : undefined);
    return bypass(c.reason ?? 'not-a-read', detail, shape, writes, writesUnknown);
  }
  if (a.shaped.volatileLiteral) return bypass('volatile-literal', undefined, shape, writes, writesUnknown);
  if (c.reads.length === 0) return bypass('no-table', undefined, shape, writes, writesUnknown);

  // 3. The session.
  if (s.taint !== null) return bypass(s.taint.reason, s.taint.detail, shape, writes, writesUnknown);
  if (s.inTransaction && !env.inTransactions) return bypass('in-transaction', undefined, shape, writes, writesUnknown);

  // 4. The catalog: immutable functions only, plain tables only.
  if (fnReason !== null) return bypass(fnReason, fnDetail, shape, writes, writesUnknown);
  for (const ref of c.relations) {
    const info: RelationInfo | undefined = env.catalog.relation(scope, ref);
    if (info === undefined) {
      return bypass('unknown-relation', refName(ref.schema, ref.name), shape, writes, writesUnknown);
    }
    if (!info.cacheable) {
      const detail = info.detail ?? refName(ref.schema, ref.name);
      return bypass(info.reason ?? 'relation-kind', detail, shape, writes, writesUnknown);
    }
  }

  // 5. Rules and hints.
  const m = env.rules.match(shape, c.reads, a.shaped.hints);
  if (!m.cache) return bypass(m.reason ?? 'rule', m.rule ?? undefined, shape, writes, writesUnknown);
  return { action: 'cache', database: s.database, reads: c.reads, ttlMs: m.ttlMs, shape, rule: m.rule };
}

function bypass(
  reason: BypassReason,
  detail: string | undefined,
  shape: string,
  writes: string[],
  writesUnknown: boolean,
): Decision {
  return detail === undefined
    ? { action: 'bypass', reason, shape, writes, writesUnknown }
    : { action: 'bypass', reason, detail, shape, writes, writesUnknown };
}

function refName(schema: string | null, name: string): string {
  return schema === null ? name : `${schema}.${name}`;
}
