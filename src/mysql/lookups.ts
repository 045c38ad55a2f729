// The look-ups a MySQL session runs on its own upstream connection (the
// proxy holds no password): its keyed variables, and the catalog facts of the
// tables a statement names (kind, engine, triggers, foreign-key actions).
//
// They run only just before a statement that would itself reset what a
// look-up disturbs (warnings, ROW_COUNT(), FOUND_ROWS()): a read or write
// naming tables, outside any transaction.

import type { RelationInfo } from '../core/catalog.js';
import { emptyEdges, type GraphEdges } from '../core/dependency-graph.js';
import type { Classification, TableRef } from '../core/types.js';
import { classifyMysql } from '../sql/mysql-parser.js';
import { payloadStart, type Packet } from './framer.js';
import { packet, readLenenc } from './protocol.js';
import { keyedVariables } from './session-context.js';

/** How a NULL column reads in a decoded row. */
export const SQL_NULL = '\0NULL';

export function settingsLookupSql(mariadb: boolean): string {
  return `SELECT ${keyedVariables(mariadb).map((v) => `@@session.${v}`).join(', ')}, DATABASE(), CURRENT_USER()`;
}

/** A text literal that reads the same under any sql_mode (no quotes or backslashes to escape). */
function literal(s: string): string {
  return `CONVERT(X'${Buffer.from(s, 'utf8').toString('hex')}' USING utf8mb4)`;
}

/** Tables by (schema, name), plus every cascading foreign key on the server. */
export function relationLookupSql(refs: readonly { schema: string; name: string }[]): string {
  const where = refs.map((r) => `(t.TABLE_SCHEMA = ${literal(r.schema)} AND t.TABLE_NAME = ${literal(r.name)})`).join(' OR ');
  return (
    `SELECT 't', t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, IFNULL(t.ENGINE, ''), ` +
    `(SELECT COUNT(*) FROM information_schema.TRIGGERS g WHERE g.EVENT_OBJECT_SCHEMA = t.TABLE_SCHEMA AND g.EVENT_OBJECT_TABLE = t.TABLE_NAME) ` +
    `FROM information_schema.TABLES t WHERE ${where} ` +
    `UNION ALL SELECT 'f', r.UNIQUE_CONSTRAINT_SCHEMA, r.REFERENCED_TABLE_NAME, r.CONSTRAINT_SCHEMA, r.TABLE_NAME, 0 ` +
    `FROM information_schema.REFERENTIAL_CONSTRAINTS r ` +
    `WHERE r.UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR r.DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION') ` +
    // information_schema shows only what this user may see: with SELECT and
    // TRIGGER on *.* it sees every table, trigger and foreign key.
    `UNION ALL SELECT 'p', COUNT(DISTINCT u.PRIVILEGE_TYPE), '', '', '', 0 FROM information_schema.USER_PRIVILEGES u ` +
    `WHERE u.GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') ` +
    `AND u.PRIVILEGE_TYPE IN ('SELECT', 'TRIGGER') ` +
    // The session's sql_select_limit must not cut the answer short.
    `LIMIT 18446744073709551615`
  );
}

/** The COM_QUERY packet of a look-up. */
export function lookupPacket(sql: string): Buffer {
  const body = Buffer.from(sql, 'utf8');
  const payload = Buffer.allocUnsafe(1 + body.length);
  payload[0] = 0x03;
  body.copy(payload, 1);
  return packet(0, payload);
}

/** The columns of a text-protocol row packet. */
export function decodeTextRow(p: Packet): string[] {
  const out: string[] = [];
  let at = payloadStart(p);
  while (at < p.end) {
    if (p.buf[at] === 0xfb) {
      out.push(SQL_NULL);
      at++;
      continue;
    }
    const n = readLenenc(p.buf, at, p.end);
    if (n === null || at + n.size + n.value > p.end) throw new Error('malformed row in a look-up answer');
    out.push(p.buf.toString('utf8', at + n.size, at + n.size + n.value));
    at += n.size + n.value;
  }
  return out;
}

/** Engines whose rows live elsewhere or in other tables: writes behind our back. */
const FOREIGN_ENGINES = new Set(['mrg_myisam', 'federated', 'connect', 'spider', 'sequence']);

/** The normalised table id the classifier uses in reads/writes: `db.table`, lower-case. */
export function tableId(schema: string, name: string): string {
  return `${schema.toLowerCase()}.${name.toLowerCase()}`;
}

/**
 * Catalog facts for `refs` (schema filled in) from the look-up rows. A table
 * the user cannot see, or that does not exist, is not cacheable, and a write
 * to it invalidates the whole database.
 */
export function relationFacts(refs: readonly { schema: string; name: string }[], rows: string[][]): Array<[TableRef, RelationInfo]> {
  // Names are compared lower-cased (the classifier folds them) and
  // information_schema compares them case- and accent-insensitively, so one
  // id may match several objects (`Orders`, a view, and `orders`, a table):
  // all of them are kept and the most cautious answer wins.
  const found = new Map<string, string[][]>();
  const cascades = new Map<string, string[]>();
  let seesAll = false;
  for (const r of rows) {
    if (r[0] === 'p') seesAll = Number(r[1]) >= 2;
    else if (r[0] === 't') {
      const id = tableId(r[1]!, r[2]!);
      found.set(id, [...(found.get(id) ?? []), r]);
    } else if (r[0] === 'f' && r[1] !== SQL_NULL && r[2] !== SQL_NULL) {
      const from = tableId(r[1]!, r[2]!);
      const list = cascades.get(from) ?? [];
      list.push(tableId(r[3]!, r[4]!));
      cascades.set(from, list);
    }
  }
  return refs.map((ref): [TableRef, RelationInfo] => {
    const id = tableId(ref.schema, ref.name);
    const matches = found.get(id);
    const key: TableRef = { schema: ref.schema, name: ref.name };
    if (matches === undefined) {
      return [key, { name: id, cacheable: false, reason: 'unknown-relation', detail: id, alsoInvalidates: [], invalidatesAll: true }];
    }
    // A user who cannot see every trigger and foreign key cannot tell what a
    // write of theirs reaches: it invalidates everything.
    const info: RelationInfo = { name: id, cacheable: true, alsoInvalidates: closure(id, cascades), invalidatesAll: !seesAll };
    for (const row of matches) refine(info, id, row);
    return [key, info];
  });
}

/** Narrows `info` by one matching information_schema.TABLES row (never widens it). */
function refine(info: RelationInfo, id: string, row: string[]): void {
  const type = row[3]!;
  const engine = row[4]!.toLowerCase();
  if (Number(row[5]) > 0) info.invalidatesAll = true; // triggers
  if (!info.cacheable) return;
  if (type === 'SYSTEM VIEW') Object.assign(info, { cacheable: false, reason: 'system-catalog', detail: id });
  else if (type === 'TEMPORARY') Object.assign(info, { cacheable: false, reason: 'temp-table', detail: id });
  else if (type !== 'BASE TABLE' && type !== 'SYSTEM VERSIONED') {
    // A view reads, and a write through it lands in, tables it does not name:
    // cacheable only with the dependency graph, which knows them (decide.ts).
    const needsGraph = type === 'VIEW';
    Object.assign(info, {
      cacheable: false,
      reason: 'relation-kind',
      detail: `${id} is a ${type.toLowerCase()}${needsGraph ? ' and the dependency graph is not loaded' : ''}`,
      invalidatesAll: true,
      needsGraph,
    });
  } else if (FOREIGN_ENGINES.has(engine)) {
    Object.assign(info, { cacheable: false, reason: 'relation-kind', detail: `${id} uses the ${engine} engine` });
  }
}

/** Tables reached from `id` through ON UPDATE/DELETE CASCADE, SET NULL, SET DEFAULT, transitively. */
function closure(id: string, cascades: Map<string, string[]>): string[] {
  const seen = new Set<string>([id]);
  const todo = [id];
  while (todo.length > 0) {
    for (const next of cascades.get(todo.pop()!) ?? []) {
      if (seen.has(next)) continue;
      seen.add(next);
      todo.push(next);
    }
  }
  seen.delete(id);
  return [...seen];
}

// ---- the dependency graph (core/dependency-graph.ts) of the whole server ----
// Table ids are `db.table` server-wide, so one graph per upstream: views and
// what they read (VIEW_DEFINITION, classified), triggers and what they write
// (ACTION_STATEMENT, classified), cascading foreign keys, and tables whose
// rows live elsewhere. information_schema shows only what the user may see:
// without SELECT and TRIGGER on *.* no graph is built (conservative rules).

const SYSTEM_SCHEMAS = `('mysql', 'sys', 'information_schema', 'performance_schema')`;

export function graphLookupSql(): string {
  return (
    `SELECT 'p', COUNT(DISTINCT u.PRIVILEGE_TYPE), '', '', '' FROM information_schema.USER_PRIVILEGES u ` +
    `WHERE u.GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') ` +
    `AND u.PRIVILEGE_TYPE IN ('SELECT', 'TRIGGER') ` +
    `UNION ALL SELECT 'gv', v.TABLE_SCHEMA, v.TABLE_NAME, v.VIEW_DEFINITION, '' FROM information_schema.VIEWS v WHERE v.TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS} ` +
    `UNION ALL SELECT 'gt', g.EVENT_OBJECT_SCHEMA, g.EVENT_OBJECT_TABLE, g.TRIGGER_NAME, g.ACTION_STATEMENT FROM information_schema.TRIGGERS g ` +
    `UNION ALL SELECT 'gf', r.UNIQUE_CONSTRAINT_SCHEMA, r.REFERENCED_TABLE_NAME, r.CONSTRAINT_SCHEMA, r.TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS r ` +
    `WHERE r.UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR r.DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION') ` +
    `UNION ALL SELECT 'gk', t.TABLE_SCHEMA, t.TABLE_NAME, IFNULL(t.ENGINE, ''), t.TABLE_TYPE FROM information_schema.TABLES t ` +
    `WHERE t.TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS} AND LOWER(IFNULL(t.ENGINE, '')) IN ('mrg_myisam', 'federated', 'connect', 'spider', 'sequence') ` +
    `LIMIT 18446744073709551615`
  );
}

/** The edges, or why the graph cannot be trusted (the user does not see everything). */
export function readMysqlGraph(rows: string[][]): GraphEdges | string {
  const e = emptyEdges();
  const add = (m: Map<string, Set<string>>, k: string, v: string): void => {
    let s = m.get(k);
    if (s === undefined) m.set(k, (s = new Set()));
    s.add(v);
  };
  let seesAll = false;
  for (const r of rows) {
    const [kind, schema, name, a, b] = r;
    if (kind === 'p') {
      seesAll = Number(schema) >= 2;
      continue;
    }
    if (schema === undefined || name === undefined || schema === SQL_NULL || name === SQL_NULL) continue;
    const id = tableId(schema, name);
    if (kind === 'gv') {
      e.kinds.set(id, 'view');
      const def = a === undefined || a === SQL_NULL ? '' : a;
      // Without SHOW VIEW the definition reads empty: neither what it reads
      // nor where a write through it lands is known.
      if (def.trim() === '') {
        e.viewRefusals.set(id, `the definition of view ${id} is not visible to this user`);
        e.opaqueWrites.set(id, `view ${id}: its definition is not visible to this user`);
        continue;
      }
      const c = classifyMysql(def, { backslashEscapes: true });
      for (const t of c.reads) add(e.viewReads, id, qualified(schema, t));
      const refusal = viewRefusal(c);
      if (refusal !== null) e.viewRefusals.set(id, `view ${id}: ${refusal}`);
    } else if (kind === 'gt') {
      const effect = triggerWrites(b === undefined || b === SQL_NULL ? '' : b);
      if (typeof effect === 'string') {
        if (!e.opaqueWrites.has(id)) e.opaqueWrites.set(id, `trigger ${a ?? '?'} on ${id}: ${effect}`);
      } else for (const t of effect) add(e.triggerWrites, id, qualified(schema, t));
    } else if (kind === 'gf' && a !== undefined && b !== undefined && a !== SQL_NULL && b !== SQL_NULL) {
      add(e.cascades, id, tableId(a, b));
    } else if (kind === 'gk') {
      e.kinds.set(id, 'foreign');
    }
  }
  if (!seesAll) return 'this user cannot see every view, trigger and foreign key (it needs SELECT and TRIGGER on *.*)';
  return e;
}

/** `t` as read in a body running in `schema`: unqualified names resolve there. */
function qualified(schema: string, t: string): string {
  return t.includes('.') ? t : tableId(schema, t);
}

function viewRefusal(c: Classification): string | null {
  if (c.functions.length > 0) return `it calls ${c.functions[0]}`;
  if (!c.cacheable && c.reason !== 'no-table') return `${c.reason ?? c.kind}${c.detail ? ` (${c.detail})` : ''}`;
  return null;
}

/** A trigger body (one statement, or BEGIN … END): the tables it writes, or why that cannot be known. */
function triggerWrites(body: string): string[] | string {
  const compound = /^\s*BEGIN\b([\s\S]*)\bEND\s*;?\s*$/i.exec(body);
  const writes = new Set<string>();
  for (const piece of topLevel(compound === null ? body : compound[1]!, ';')) {
    if (piece.trim() === '') continue;
    const c = classifyMysql(piece, { backslashEscapes: true });
    if (c.writesUnknown) return `it may write tables it does not name (${c.detail ?? c.reason ?? c.kind})`;
    if (c.kind === 'ddl') return 'it runs DDL';
    if (c.functions.length > 0) return `it calls ${c.functions[0]}`;
    // SET NEW.col = … only changes the row; any other SET changes the
    // session's variables under its cache key.
    if (c.sessionEffects.some((e) => e.type !== 'none') && !setsRowOnly(piece)) return 'it changes session variables';
    for (const t of c.writes) writes.add(t);
  }
  return [...writes];
}

/** `SET NEW.a = …, OLD.b = …`: every assignment targets the row. */
function setsRowOnly(statement: string): boolean {
  const m = /^\s*SET\s+([\s\S]*)$/i.exec(statement);
  return m !== null && topLevel(m[1]!, ',').every((a) => /^\s*(?:NEW|OLD)\s*\.\s*[`\w$]/i.test(a));
}

/** `text` split at `sep` outside parentheses, quotes and comments. */
function topLevel(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      for (i++; i < text.length && text[i] !== ch; i++) if (text[i] === '\\' && ch !== '`') i++;
    } else if (ch === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === sep && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}
