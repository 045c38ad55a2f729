// Per-statement rules for PostgreSQL: what kind a statement is, which
// relations it writes, whether it may write tables it cannot name, and its
// session effect. Expressions and queries are walked by postgres-walk.ts.

import type { BypassReason, SessionEffect, StatementKind } from '../core/types.js';
import { deallocateEffect, discardEffects, variableSetEffect } from './postgres-session.js';
import {
  type Facts, type Obj, addNamed, addRelation, asArray, asRangeVar, isObj, newFacts, str, stringList, walk,
} from './postgres-walk.js';

export interface StatementResult {
  kind: StatementKind;
  facts: Facts;
  writesUnknown: boolean;
  /** Why a non-read is not cacheable (not-a-read unless more specific). */
  reason: BypassReason;
  effects: SessionEffect[];
  txnControl: boolean;
}

const NONE: SessionEffect = Object.freeze({ type: 'none' });

/** Relation kinds whose DROP / RENAME / SET SCHEMA / COMMENT name tables we track. */
const RELATION_OBJECTS = new Set([
  'OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE',
]);

/** Objects that belong to a table and are named `[schema.]table.object`. */
const TABLE_MEMBER_OBJECTS = new Set(['OBJECT_COLUMN', 'OBJECT_TABCONSTRAINT', 'OBJECT_TRIGGER', 'OBJECT_POLICY', 'OBJECT_RULE']);

/** Triggers, rules and policies change what later statements do to tables we
 * cannot name (a trigger's body, a rule's actions, a policy's filter). */
const BEHAVIOUR_OBJECTS = new Set(['OBJECT_TRIGGER', 'OBJECT_POLICY', 'OBJECT_RULE']);

/** DDL that creates something no existing query's result can depend on. */
const INERT_DDL = new Set(['CreateEnumStmt', 'CompositeTypeStmt', 'CreateDomainStmt', 'CreateRangeStmt', 'CreateStatsStmt', 'AlterStatsStmt', 'CreateTableSpaceStmt']);

/** Utility statements that change no table data (their relations count as reads).
 * VACUUM FULL and CLUSTER are handled apart: they rewrite the table. */
const PLAIN_OTHER = new Set([
  'VariableShowStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt', 'VacuumStmt', 'ReindexStmt',
  'CheckPointStmt', 'LockStmt', 'FetchStmt', 'ClosePortalStmt', 'DeclareCursorStmt',
]);

/** SQL the server runs that we cannot see: an SQL-level prepared statement,
 * a procedure, an anonymous block, a loaded library. */
const OPAQUE = new Set(['CallStmt', 'DoStmt', 'ExecuteStmt', 'LoadStmt']);

/** `node` is a RawStmt's `stmt`: `{TypeName: {fields}}`. */
export function classifyStatement(node: unknown): StatementResult {
  const r: StatementResult = { kind: 'other', facts: newFacts(), writesUnknown: false, reason: 'not-a-read', effects: [NONE], txnControl: false };
  const type = isObj(node) ? Object.keys(node)[0] ?? '' : '';
  const body = isObj(node) && isObj(node[type]) ? node[type] : {};
  const f = r.facts;
  switch (type) {
    case 'SelectStmt':
      walk(node, f, []);
      r.kind = f.selectInto || f.modifying ? 'write' : 'read';
      if (f.selectInto) r.reason = 'select-into';
      break;
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      walk(node, f, []);
      r.kind = 'write';
      break;
    case 'TruncateStmt':
      for (const rel of asArray(body['relations'])) writeRel(rel, f);
      r.kind = 'write';
      // CASCADE empties every table with a foreign key to these, whatever its ON DELETE action.
      r.writesUnknown = body['behavior'] === 'DROP_CASCADE';
      break;
    case 'CopyStmt':
      if (body['is_from'] === true) {
        writeRel(body['relation'], f);
        walk(body['whereClause'], f, []);
        r.kind = 'write';
      } else {
        // COPY t TO / COPY (query) TO; the query may be INSERT … RETURNING.
        walk(body, f, []);
        r.kind = f.modifying ? 'write' : 'other';
      }
      break;
    case 'RefreshMatViewStmt':
      writeRel(body['relation'], f);
      r.kind = 'write';
      break;
    case 'CreateTableAsStmt': {
      const into = isObj(body['into']) ? body['into'] : {};
      writeRel(into['rel'], f);
      walk(body['query'], f, []);
      // CREATE TABLE … AS EXECUTE p runs a prepared statement we cannot see.
      r.writesUnknown = isObj(body['query']) && 'ExecuteStmt' in body['query'];
      // CREATE TABLE AS is SELECT … INTO spelt differently; a materialized view is DDL.
      r.kind = body['objtype'] === 'OBJECT_MATVIEW' ? 'ddl' : 'write';
      if (r.kind === 'write') r.reason = 'select-into';
      break;
    }
    case 'TransactionStmt':
      r.kind = 'txn-control';
      r.txnControl = true;
      // COMMIT PREPARED makes visible what another session (or one long
      // gone) wrote under PREPARE TRANSACTION: tables we never saw.
      if (body['kind'] === 'TRANS_STMT_COMMIT_PREPARED' || body['kind'] === 'TRANS_STMT_ROLLBACK_PREPARED') r.writesUnknown = true;
      break;
    case 'VariableSetStmt':
      r.kind = 'session-set';
      r.effects = [variableSetEffect(body)];
      break;
    case 'DiscardStmt':
      r.kind = 'session-set';
      r.effects = discardEffects(body);
      break;
    case 'DeallocateStmt':
      r.kind = 'session-set';
      r.effects = [deallocateEffect(body)];
      break;
    case 'ConstraintsSetStmt':
      r.kind = 'session-set';
      break;
    case 'ExplainStmt':
      explain(body, r);
      break;
    case 'VacuumStmt':
      // VACUUM FULL rewrites the table: ctid and physical order (what a read
      // without ORDER BY returns) change. Without a table: every table.
      if (isVacuumFull(body)) rewrite(asArray(body['rels']).map((v) => (isObj(v) && isObj(v['VacuumRelation']) ? v['VacuumRelation']['relation'] : v)), r);
      else walk(body, f, []);
      break;
    case 'ClusterStmt':
      // CLUSTER t [USING i] rewrites t in index order; bare CLUSTER, every
      // table clustered before.
      rewrite(body['relation'] === undefined ? [] : [body['relation']], r);
      break;
    case 'PrepareStmt': {
      // Nothing runs until EXECUTE (which we treat as opaque): keep the names only.
      const inner = classifyStatement(body['query']);
      for (const name of inner.facts.reads) f.reads.add(name);
      for (const [k, v] of inner.facts.relations) f.relations.set(k, v);
      // The name is taken on the server, in the namespace protocol-level
      // statements share: the session must know it exists.
      const name = typeof body['name'] === 'string' ? body['name'] : null;
      if (name !== null) r.effects = [{ type: 'prepare', name }];
      break;
    }
    default:
      if (PLAIN_OTHER.has(type)) {
        walk(body, f, []);
      } else if (OPAQUE.has(type)) {
        r.writesUnknown = true;
        // A procedure, DO block or prepared statement can SET (or set_config)
        // what the key holds, and the change outlives it.
        if (type !== 'LoadStmt') r.effects = [{ type: 'taint', reason: 'session-state', detail: `${opaqueName(type)} may change session settings` }];
      } else {
        ddl(type, body, r);
      }
  }
  if (r.effects[0] === NONE) r.effects = [effectOf(f)];
  return r;
}

/** The session effect of a statement that is not a SET: temp relations and
 * set_config() make the session's results depend on more than the key. */
function effectOf(f: Facts): SessionEffect {
  if (f.temp !== null && f.writes.has(f.temp)) {
    return { type: 'taint', reason: 'temp-table', detail: `temporary relation ${f.temp}` };
  }
  if (f.setConfig) return { type: 'taint', reason: 'session-state', detail: 'set_config()' };
  return NONE;
}

/** EXPLAIN reads nothing cacheable. With ANALYZE it runs the statement, and
 * `ANALYZE ?` may hide its boolean behind a literal the shape folds, so the
 * inner statement's writes count whatever the options say. */
function explain(body: Obj, r: StatementResult): void {
  const inner = classifyStatement(body['query']);
  r.facts = inner.facts;
  r.writesUnknown = inner.writesUnknown;
  r.effects = inner.effects;
  r.kind = 'other';
}

function opaqueName(type: string): string {
  return type === 'CallStmt' ? 'CALL' : type === 'DoStmt' ? 'DO' : 'EXECUTE';
}

/** A table rewrite (VACUUM FULL, CLUSTER): writes its tables, or every
 * table when none is named. Still kind other. */
function rewrite(rels: unknown[], r: StatementResult): void {
  for (const rel of rels) writeRel(rel, r.facts);
  r.writesUnknown = r.facts.writes.size === 0;
}

/** VACUUM FULL, VACUUM (FULL …) whatever its value: `(FULL 0)` and
 * `(FULL 1)` share a shape, and the memo keeps one answer per shape, so an
 * explicit value counts as FULL (at worst an extra invalidation). */
function isVacuumFull(body: Obj): boolean {
  return asArray(body['options']).some((o) => isObj(o) && isObj(o['DefElem']) && str(o['DefElem']['defname']) === 'full');
}

function writeRel(v: unknown, f: Facts): void {
  const rv = asRangeVar(v);
  if (rv !== undefined) addRelation(rv, f, 'write', []);
}

/** `[schema, name]` or `[name]` (or `[catalog, schema, name]`) → a write. */
function writeQualified(names: string[], f: Facts): void {
  const name = names[names.length - 1];
  if (name === undefined) return;
  addNamed(names.length > 1 ? names[names.length - 2] ?? null : null, name, f, 'write');
}

/** An object list item: `{List: {items: [String…]}}` or a bare `{String}`. */
function objectNames(item: unknown): string[] {
  if (isObj(item) && isObj(item['List'])) return stringList(item['List']['items']);
  return stringList([item]);
}

function ddl(type: string, body: Obj, r: StatementResult): void {
  const f = r.facts;
  r.kind = 'ddl';
  switch (type) {
    case 'CreateStmt':
    case 'CreateForeignTableStmt': {
      const base = type === 'CreateForeignTableStmt' && isObj(body['base']) ? body['base'] : body;
      writeRel(base['relation'], f);
      // A new child or partition joins its parents' scans.
      for (const parent of asArray(base['inhRelations'])) writeRel(parent, f);
      return;
    }
    case 'ViewStmt':
      writeRel(body['view'], f);
      walk(body['query'], f, []);
      return;
    case 'IndexStmt':
      writeRel(body['relation'], f);
      return;
    case 'CreateSeqStmt':
    case 'AlterSeqStmt':
      writeRel(body['sequence'], f);
      return;
    case 'AlterTableStmt':
      writeRel(body['relation'], f);
      for (const cmd of asArray(body['cmds'])) {
        const c = isObj(cmd) && isObj(cmd['AlterTableCmd']) ? cmd['AlterTableCmd'] : {};
        const part = isObj(c['def']) && isObj(c['def']['PartitionCmd']) ? c['def']['PartitionCmd'] : undefined;
        if (part !== undefined) writeRel(part['name'], f);
      }
      // ALTER INDEX: which table the index belongs to is not in the text.
      r.writesUnknown = body['objtype'] === 'OBJECT_INDEX';
      return;
    case 'RenameStmt':
      rename(body, r);
      return;
    case 'AlterObjectSchemaStmt': {
      const rv = asRangeVar(body['relation']);
      if (rv === undefined || !RELATION_OBJECTS.has(str(body['objectType']) ?? '')) {
        r.writesUnknown = true;
        return;
      }
      addRelation(rv, f, 'write', []);
      addNamed(str(body['newschema']) ?? null, str(rv['relname']) ?? '', f, 'write');
      return;
    }
    case 'DropStmt':
      drop(body, r);
      return;
    case 'GrantStmt':
      // Privileges on named tables change who may read them; anything wider
      // (ALL TABLES IN SCHEMA, schemas, functions, databases) is unbounded.
      if (body['targtype'] === 'ACL_TARGET_OBJECT' && (body['objtype'] === 'OBJECT_TABLE' || body['objtype'] === 'OBJECT_SEQUENCE')) {
        for (const obj of asArray(body['objects'])) writeRel(obj, f);
      } else {
        r.writesUnknown = true;
      }
      return;
    case 'CommentStmt': {
      // A comment changes no row: name the table so catalog readers are told, nothing more.
      const objtype = str(body['objtype']) ?? '';
      const names = objectNames(body['object']);
      if (RELATION_OBJECTS.has(objtype) || objtype === 'OBJECT_INDEX') writeQualified(names, f);
      else if (TABLE_MEMBER_OBJECTS.has(objtype)) writeQualified(names.slice(0, -1), f);
      return;
    }
    case 'CreateTrigStmt':
    case 'RuleStmt':
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      writeRel(body['relation'] ?? body['table'], f);
      r.writesUnknown = true;
      return;
    default:
      if (INERT_DDL.has(type)) return;
      // CREATE/ALTER/DROP FUNCTION, ROLE, SCHEMA, EXTENSION, TYPE, … and any
      // statement this file does not know: may change what any query returns.
      writeRel(body['relation'], f);
      r.writesUnknown = true;
      if (!/^(Create|Alter|Drop|Define|Grant|Reassign|Import|SecLabel|Comment|Rule)/.test(type)) r.kind = 'other';
  }
}

function rename(body: Obj, r: StatementResult): void {
  const f = r.facts;
  const renameType = str(body['renameType']) ?? '';
  const rv = asRangeVar(body['relation']);
  if (rv !== undefined && (RELATION_OBJECTS.has(renameType) || renameType === 'OBJECT_INDEX')) {
    // The old name's entries go stale; the new name may shadow another table on the search_path.
    addRelation(rv, f, 'write', []);
    addNamed(str(rv['schemaname']) ?? null, str(body['newname']) ?? '', f, 'write');
    r.writesUnknown = renameType === 'OBJECT_INDEX';
    return;
  }
  if (rv !== undefined && TABLE_MEMBER_OBJECTS.has(renameType)) {
    addRelation(rv, f, 'write', []);
    r.writesUnknown = BEHAVIOUR_OBJECTS.has(renameType);
    return;
  }
  r.writesUnknown = true;
}

function drop(body: Obj, r: StatementResult): void {
  const f = r.facts;
  const removeType = str(body['removeType']) ?? '';
  const objects = asArray(body['objects']).map(objectNames);
  if (RELATION_OBJECTS.has(removeType) || removeType === 'OBJECT_INDEX') {
    for (const names of objects) writeQualified(names, f);
    // DROP INDEX: the table is not in the text. CASCADE drops dependants we cannot list.
    r.writesUnknown = removeType === 'OBJECT_INDEX' || body['behavior'] === 'DROP_CASCADE';
    return;
  }
  if (BEHAVIOUR_OBJECTS.has(removeType)) {
    for (const names of objects) writeQualified(names.slice(0, -1), f);
  }
  r.writesUnknown = true;
}
