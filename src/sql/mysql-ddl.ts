// MySQL/MariaDB DDL, GRANT/REVOKE, RENAME, TRUNCATE and LOAD read off the
// tokens: the leading keywords say what kind of object changes and where its
// table name stands. (node-sql-parser lists no table for CREATE/DROP INDEX
// or LOAD DATA and rejects much DDL; the keywords are exact.) The core
// invalidates the whole database for any DDL, so a DDL statement that names
// no table is still safe; writesUnknown marks the ones that change what
// statements do to tables they do not name (triggers, routines, privileges).

import type { StatementResult } from './mysql-facts.js';
import { addTable, newResult } from './mysql-facts.js';
import { PUNCT, type Token, isPunct, qualifiedNameAt, splitTopLevel, wordAt } from './mysql-tokens.js';

/** Words between CREATE/ALTER/DROP and the object keyword. */
const MODIFIERS = new Set([
  'TEMPORARY', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'ONLINE', 'OFFLINE', 'IGNORE', 'AGGREGATE', 'NONBLOCKING',
]);

/** CREATE / ALTER / DROP … */
export function ddl(tokens: readonly Token[]): StatementResult {
  const r = newResult('ddl');
  const verb = wordAt(tokens, 0);
  let i = 1;
  let temporary = false;
  for (;;) {
    const w = wordAt(tokens, i);
    if (w === 'OR' && wordAt(tokens, i + 1) === 'REPLACE') i += 2;
    else if (w === 'DEFINER') i = skipDefiner(tokens, i + 1);
    else if (w === 'ALGORITHM' && isPunct(tokens[i + 1], '=')) i += 3;
    else if (w === 'SQL' && wordAt(tokens, i + 1) === 'SECURITY') i += 3;
    else if (MODIFIERS.has(w)) {
      temporary ||= w === 'TEMPORARY';
      i++;
    } else break;
  }
  const object = wordAt(tokens, i);
  i = skipIfExists(tokens, i + 1);
  switch (object) {
    case 'TABLE':
    case 'TABLES':
    case 'VIEW':
    case 'SEQUENCE':
      // MariaDB sequences are tables; a view's readers see its new definition.
      if (verb === 'DROP') writeList(tokens.slice(i), r);
      else write(tokens, i, r);
      if (verb === 'ALTER' && object === 'TABLE') alterTableExtras(tokens, i, r);
      if (verb === 'CREATE' && temporary) {
        const name = [...r.facts.writes][0] ?? '?';
        // A temporary table may shadow a real table of the same name.
        r.effect = { type: 'taint', reason: 'temp-table', detail: `temporary table ${name}` };
      }
      return r;
    case 'INDEX':
    case 'TRIGGER': {
      // CREATE INDEX i ON t, DROP INDEX i ON t, CREATE TRIGGER tr … ON t.
      const on = findWord(tokens, i, 'ON');
      if (on >= 0) write(tokens, on + 1, r);
      // A trigger changes what writes to t do to tables not named here.
      r.writesUnknown = on < 0 || object === 'TRIGGER';
      return r;
    }
    case 'PREPARE':
      // DROP PREPARE s is DEALLOCATE PREPARE s.
      r.kind = 'other';
      return r;
    default:
      // DATABASE, PROCEDURE, FUNCTION, EVENT, USER, ROLE, SERVER…
      r.writesUnknown = true;
      return r;
  }
}

/** RENAME TABLE a TO b, c TO d: the old and new names both change. */
export function rename(tokens: readonly Token[]): StatementResult {
  const r = newResult('ddl');
  const object = wordAt(tokens, 1);
  if (object !== 'TABLE' && object !== 'TABLES') {
    r.writesUnknown = true;
    return r;
  }
  for (const pair of splitTopLevel(tokens.slice(2))) {
    const from = qualifiedNameAt(pair, 0);
    const to = from === null || wordAt(pair, from.next) !== 'TO' ? null : qualifiedNameAt(pair, from.next + 1);
    if (from === null || to === null) {
      r.writesUnknown = true;
      continue;
    }
    addTable(r.facts, from.db, from.name, 'write');
    addTable(r.facts, to.db, to.name, 'write');
  }
  return r;
}

/** GRANT/REVOKE … ON [TABLE] db.t: privileges on a named table change who
 * may read it; anything wider (db.*, *.*, routines, roles) is unbounded. */
export function grant(tokens: readonly Token[]): StatementResult {
  const r = newResult('ddl');
  const on = findWord(tokens, 1, 'ON');
  let i = on + 1;
  let object = wordAt(tokens, i);
  if (object === 'TABLE' || object === 'FUNCTION' || object === 'PROCEDURE' || object === 'PACKAGE') i++;
  else object = 'TABLE';
  const q = on < 0 ? null : qualifiedNameAt(tokens, i);
  if (q === null || object !== 'TABLE' || isPunct(tokens[q.next], '.')) {
    r.writesUnknown = true;
    return r;
  }
  addTable(r.facts, q.db, q.name, 'write');
  return r;
}

/** TRUNCATE [TABLE] t. */
export function truncate(tokens: readonly Token[]): StatementResult {
  const r = newResult('write');
  write(tokens, wordAt(tokens, 1) === 'TABLE' ? 2 : 1, r);
  r.writesUnknown = r.facts.writes.size === 0;
  return r;
}

/** LOAD DATA|XML … INTO TABLE t; LOAD INDEX INTO CACHE is a cache hint. */
export function load(tokens: readonly Token[]): StatementResult {
  const kind = wordAt(tokens, 1);
  if (kind !== 'DATA' && kind !== 'XML') return newResult('other');
  const r = newResult('write');
  const into = findWord(tokens, 2, 'INTO');
  if (into >= 0 && wordAt(tokens, into + 1) === 'TABLE') write(tokens, into + 2, r);
  r.writesUnknown = r.facts.writes.size === 0;
  return r;
}

function write(tokens: readonly Token[], i: number, r: StatementResult): void {
  const q = qualifiedNameAt(tokens, i);
  if (q === null || (q.next < tokens.length && isPunct(tokens[q.next], '.'))) {
    r.writesUnknown = true;
    return;
  }
  addTable(r.facts, q.db, q.name, 'write');
}

/** `a, db.b [RESTRICT | CASCADE]`. */
function writeList(tokens: readonly Token[], r: StatementResult): void {
  for (const item of splitTopLevel(tokens)) write(item, 0, r);
}

/** ALTER TABLE t … RENAME [TO|AS] u …, EXCHANGE PARTITION p WITH TABLE u. */
function alterTableExtras(tokens: readonly Token[], from: number, r: StatementResult): void {
  for (let i = from; i < tokens.length; i++) {
    const w = wordAt(tokens, i);
    if (w === 'RENAME') {
      const next = wordAt(tokens, i + 1);
      if (next === 'COLUMN' || next === 'INDEX' || next === 'KEY' || next === 'CONSTRAINT') continue;
      write(tokens, next === 'TO' || next === 'AS' ? i + 2 : i + 1, r);
    } else if (w === 'WITH' && wordAt(tokens, i + 1) === 'TABLE') {
      write(tokens, i + 2, r);
    }
  }
}

/** IF [NOT] EXISTS at `i`, if present. */
function skipIfExists(tokens: readonly Token[], i: number): number {
  if (wordAt(tokens, i) !== 'IF') return i;
  return wordAt(tokens, i + 1) === 'NOT' ? i + 3 : i + 2;
}

/** DEFINER = 'u'@'h' | u@h | CURRENT_USER[()] | CURRENT_ROLE. */
function skipDefiner(tokens: readonly Token[], i: number): number {
  let j = isPunct(tokens[i], '=') ? i + 1 : i;
  j++; // the user (a name, string or CURRENT_USER)
  if (isPunct(tokens[j], '(') && isPunct(tokens[j + 1], ')')) j += 2;
  // 'u'@'h' lexes as a string then a user-variable token @'h'.
  if (tokens[j]?.text.startsWith('@') === true) j++;
  return j;
}

/** The index of the first top-level `word` from `i`, or -1. */
function findWord(tokens: readonly Token[], i: number, word: string): number {
  let depth = 0;
  for (let j = i; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (t.type === PUNCT) {
      if (t.value === '(') depth++;
      else if (t.value === ')') depth--;
    } else if (depth === 0 && wordAt(tokens, j) === word) {
      return j;
    }
  }
  return -1;
}
