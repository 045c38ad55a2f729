// Facts read straight off a statement's tokens, whether or not the parser
// accepts it: session variables, clock and random functions (also the
// keyword forms without parentheses), locking clauses, SELECT … INTO,
// SQL_NO_CACHE, sequence writes; the tables named after FROM and JOIN (a
// check on the parser); and, for statements the parser rejected, the calls
// that are not known builtins.

import { addTable, type MysqlFacts } from './mysql-facts.js';
import { BUILTIN_FUNCTIONS, NON_CALL_WORDS, PARENLESS_VOLATILE, VOLATILE_FUNCTIONS } from './mysql-functions.js';
import {
  HINT, IDENT, SYSTEM_VAR, USER_VAR, WORD, type QualifiedName, type Token, isPunct, nameOf, qualifiedNameAt, skipParens,
  wordAt,
} from './mysql-tokens.js';

export function scanTokens(tokens: readonly Token[], f: MysqlFacts): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === USER_VAR || t.type === SYSTEM_VAR) {
      f.sessionState ??= t.text;
      continue;
    }
    // A hint may set a variable for the statement: SET_VAR(sql_mode = …).
    if (t.type === HINT && /SET_VAR/i.test(t.text)) f.sessionState ??= 'SET_VAR hint';
    if (t.type !== WORD || isPunct(tokens[i - 1], '.')) continue;
    word(tokens, i, t.value, f);
  }
}

function word(tokens: readonly Token[], i: number, w: string, f: MysqlFacts): void {
  const next = wordAt(tokens, i + 1);
  switch (w) {
    case 'SQL_NO_CACHE':
      f.noCache = true;
      return;
    case 'SQL_CALC_FOUND_ROWS':
      // Sets FOUND_ROWS() for the session: the query must run.
      f.volatile ??= 'SQL_CALC_FOUND_ROWS';
      return;
    case 'FOR':
      if (next === 'UPDATE' || next === 'SHARE') f.locking ??= `FOR ${next}`;
      return;
    case 'LOCK':
      if (next === 'IN' && wordAt(tokens, i + 2) === 'SHARE') f.locking ??= 'LOCK IN SHARE MODE';
      return;
    case 'INTO': {
      // Only meaningful in a read (INSERT INTO is the write's target).
      const target = tokens[i + 1];
      f.selectInto ??= target?.type === USER_VAR ? 'INTO @var' : `INTO ${next || 'variable'}`;
      return;
    }
    case 'NEXT':
    case 'PREVIOUS':
      // NEXT VALUE FOR s / PREVIOUS VALUE FOR s (MariaDB sequences).
      if (next === 'VALUE' && wordAt(tokens, i + 2) === 'FOR') {
        f.volatile ??= `${w.toLowerCase()} value for`;
        if (w === 'NEXT') sequenceWrite(tokens, i + 3, f);
      }
      return;
  }
  if (isPunct(tokens[i + 1], '(')) {
    if (w === 'UNIX_TIMESTAMP') {
      if (isPunct(tokens[i + 2], ')')) f.volatile ??= 'unix_timestamp()';
    } else if (VOLATILE_FUNCTIONS.has(w)) {
      f.volatile ??= `${w.toLowerCase()}()`;
      // NEXTVAL(s) and SETVAL(s, n) advance the sequence, a table in MariaDB.
      if (w === 'NEXTVAL' || w === 'SETVAL') sequenceWrite(tokens, i + 2, f);
    }
  } else if (PARENLESS_VOLATILE.has(w)) {
    f.volatile ??= w.toLowerCase();
  }
}

function sequenceWrite(tokens: readonly Token[], i: number, f: MysqlFacts): void {
  const q = qualifiedNameAt(tokens, i);
  if (q !== null) addTable(f, q.db, q.name, 'write');
}

/**
 * Lower-case names of calls that are not known builtins, read off the
 * tokens (`name (`, `db.name (`, `` `name` ( ``). Only for statements the
 * parser rejected and for SET values: keywords before `(` are told apart by
 * a list, and column lists (`WITH c (a) AS (`, `AS d (a)`, `INTO t (a)`)
 * are recognised by what surrounds them.
 */
export function unknownCalls(tokens: readonly Token[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if ((t.type !== WORD && t.type !== IDENT) || !isPunct(tokens[i + 1], '(')) continue;
    const prev = tokens[i - 1];
    if (isPunct(prev, '.')) {
      out.push(`${nameOf(tokens[i - 2]) ?? ''}.${nameOf(t) ?? ''}`.toLowerCase());
      continue;
    }
    if (t.type === WORD) {
      const w = t.value;
      if (BUILTIN_FUNCTIONS.has(w) || VOLATILE_FUNCTIONS.has(w) || NON_CALL_WORDS.has(w)) continue;
      const p = prev !== undefined && prev.type === WORD ? prev.value : '';
      if (p === 'AS' || p === 'INTO' || p === 'TABLE') continue;
      const after = skipParens(tokens, i + 1);
      if (wordAt(tokens, after) === 'AS' && isPunct(tokens[after + 1], '(')) continue;
    }
    out.push((nameOf(t) ?? '').toLowerCase());
  }
  return out;
}

/**
 * The names written right after a query's FROM (not EXTRACT's, TRIM's or
 * SUBSTRING's: a FROM counts at the top level or after a SELECT at its own
 * parenthesis depth) or after a JOIN keyword. The tree walk must have seen
 * every one: a table the parser dropped would be a read nothing invalidates.
 */
export function namedTables(tokens: readonly Token[]): QualifiedName[] {
  const out: QualifiedName[] = [];
  /** Per open parenthesis (the statement itself first): a SELECT was seen in it. */
  const selects: boolean[] = [false];
  // DELETE FROM a, b USING t1 AS a …: after that FROM come targets, maybe aliases.
  let skipFrom = wordAt(tokens, 0) === 'DELETE' && topLevelWords(tokens).has('USING');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isPunct(t, '(')) selects.push(false);
    else if (isPunct(t, ')')) {
      if (selects.length > 1) selects.pop();
    } else if (t.type === WORD) {
      if (t.value === 'SELECT') selects[selects.length - 1] = true;
      let from = t.value === 'FROM' && (selects.length === 1 || selects[selects.length - 1] === true);
      if (from && skipFrom && selects.length === 1) from = skipFrom = false;
      if (!from && t.value !== 'JOIN' && t.value !== 'STRAIGHT_JOIN') continue;
      const next = wordAt(tokens, i + 1);
      const q = next === 'DUAL' || next === 'LATERAL' ? null : qualifiedNameAt(tokens, i + 1);
      if (q !== null && !isPunct(tokens[q.next], '(')) out.push(q);
    }
  }
  return out;
}

function topLevelWords(tokens: readonly Token[]): Set<string> {
  const words = new Set<string>();
  let depth = 0;
  for (const t of tokens) {
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')')) depth--;
    else if (depth === 0 && t.type === WORD) words.add(t.value);
  }
  return words;
}
