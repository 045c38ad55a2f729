// The text node-sql-parser is given: rebuilt from our tokens, so it lexes
// exactly what the server lexes (comments gone, `/*! … */` unwrapped,
// `1--1` not a comment, NO_BACKSLASH_ESCAPES strings no longer ambiguous).
// Literal values are irrelevant to what a statement reads or writes, so
// every string becomes '' and every number 0: texts of one shape then give
// the parser the same text. A few constructs the parser rejects but whose
// removal changes no table and no call are dropped (index hints, locking
// clauses and priority modifiers are read off the tokens instead). Lists
// of literals collapse to one element and repeated literal rows to one row:
// the parser costs ~10 µs per list element, and bulk INSERTs of every row
// count are each a new shape.

import { PARENLESS_FUNCTIONS } from './mysql-functions.js';
import {
  HINT, IDENT, NUMBER, PARAM, PUNCT, STRING, SYSTEM_VAR, USER_VAR, WORD, type Token, isPunct, qualifiedNameAt, skipParens,
  wordAt,
} from './mysql-tokens.js';

/** Modifiers with no bearing on tables or calls that the parser rejects. */
const DROPPED_WORDS = new Set(['HIGH_PRIORITY', 'LOW_PRIORITY', 'DELAYED', 'QUICK']);

/** Words after which STRAIGHT_JOIN is a SELECT option, not a join. */
const SELECT_OPTION_CONTEXT = new Set([
  'SELECT', 'ALL', 'DISTINCT', 'DISTINCTROW', 'SQL_NO_CACHE', 'SQL_CACHE', 'SQL_CALC_FOUND_ROWS', 'SQL_SMALL_RESULT',
  'SQL_BIG_RESULT', 'SQL_BUFFER_RESULT',
]);

/** Aggregates the parser knows only as STDDEV (all builtins, so the walk judges them the same). */
const STDDEV_ALIASES = new Set(['STD', 'STDDEV_POP', 'STDDEV_SAMP', 'VARIANCE', 'VAR_POP', 'VAR_SAMP']);

export function parserText(statement: readonly Token[]): string {
  const tokens = deleteUsing(statement);
  const out: string[] = [];
  let i = 0;
  // TABLE t [ORDER BY …] [LIMIT …] is SELECT * FROM t.
  if (wordAt(tokens, 0) === 'TABLE') {
    out.push('SELECT * FROM');
    i = 1;
  }
  const deleting = wordAt(tokens, 0) === 'DELETE';
  let afterFrom = false;
  let prevWord = '';
  const rows = valuesRows(tokens);
  /** out.length just after the last literal row written. */
  let lastRow = -1;
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isPunct(t, '(')) {
      const end = skipParens(tokens, i);
      if (isLiteralList(tokens, i + 1, end - 1)) {
        // Multi-row VALUES (…), (…): one row (whole: the parser checks its
        // width against the column list); IN (1, 2, …): one element.
        if (!rows.has(i)) out.push('( 0 )');
        else if (out[out.length - 1] === ',' && out.length - 1 === lastRow) out.pop();
        else out.push(...tokens.slice(i, end).map(literalText));
        if (rows.has(i)) lastRow = out.length;
        i = end - 1;
        continue;
      }
    }
    switch (t.type) {
      case HINT:
        continue;
      case STRING:
        // 'a' 'b' is one literal to the server.
        if (tokens[i - 1]?.type !== STRING) out.push("''");
        break;
      case NUMBER:
        out.push('0');
        break;
      case USER_VAR:
        out.push('@v');
        break;
      case SYSTEM_VAR:
        out.push('@@v');
        break;
      case IDENT:
      case PARAM:
        out.push(t.text);
        break;
      case PUNCT:
        if (t.value === '<=>') out.push('=');
        // DELETE t1.*, t2.* FROM …: the targets' `.*` is noise.
        else if (deleting && !afterFrom && t.value === '.' && isPunct(tokens[i + 1], '*')) i++;
        else out.push(t.text);
        break;
      default: {
        const skipTo = rewriteWord(tokens, i, prevWord, out);
        if (t.value === 'FROM') afterFrom = true;
        if (skipTo > i) {
          i = skipTo - 1;
          continue;
        }
      }
    }
    prevWord = t.type === WORD ? t.value : '';
  }
  return out.join(' ');
}

/** Emits the word at `i` (or its rewrite) and returns the index to resume
 * at when tokens were consumed, else `i`. */
function rewriteWord(tokens: readonly Token[], i: number, prevWord: string, out: string[]): number {
  const t = tokens[i]!;
  const w = t.value;
  const next = tokens[i + 1];
  // _utf8mb4'x', _binary 0x41: a charset introducer.
  if (w.startsWith('_') && next !== undefined && (next.type === STRING || next.type === NUMBER)) return i + 1;
  const nextWord = wordAt(tokens, i + 1);
  if (DROPPED_WORDS.has(w) || w === 'NATURAL' || (w === 'SOUNDS' && nextWord === 'LIKE')) return i + 1;
  if (w === 'STRAIGHT_JOIN' && SELECT_OPTION_CONTEXT.has(prevWord)) return i + 1;
  if (w === 'IGNORE' && (prevWord === 'UPDATE' || prevWord === 'DELETE')) return i + 1;
  if (STDDEV_ALIASES.has(w) && isPunct(next, '(')) {
    out.push('STDDEV');
    return i;
  }
  if ((w === 'USE' || w === 'FORCE' || w === 'IGNORE') && (nextWord === 'INDEX' || nextWord === 'KEY') && i > 0) {
    return skipIndexHint(tokens, i + 2);
  }
  if (w === 'FOR' && (nextWord === 'UPDATE' || nextWord === 'SHARE')) return skipLocking(tokens, i + 2);
  if (w === 'LOCK' && nextWord === 'IN' && wordAt(tokens, i + 2) === 'SHARE' && wordAt(tokens, i + 3) === 'MODE') {
    return skipLocking(tokens, i + 4);
  }
  if (w === 'PARTITION' && isPunct(next, '(')) return skipParens(tokens, i + 1);
  // AGAINST ('x' IN NATURAL LANGUAGE MODE [WITH QUERY EXPANSION]): the default mode.
  if (w === 'IN' && nextWord === 'NATURAL' && wordAt(tokens, i + 3) === 'MODE') {
    return wordAt(tokens, i + 4) === 'WITH' && wordAt(tokens, i + 5) === 'QUERY' ? i + 7 : i + 4;
  }
  if (w === 'VALUE' && isPunct(next, '(')) {
    out.push('VALUES');
    return i;
  }
  if ((w === 'NEXT' || w === 'PREVIOUS') && nextWord === 'VALUE' && wordAt(tokens, i + 2) === 'FOR') {
    const q = qualifiedNameAt(tokens, i + 3);
    if (q !== null) {
      const name = tokens.slice(i + 3, q.next).map((x) => x.text).join(' ');
      out.push(w === 'NEXT' ? 'NEXTVAL' : 'LASTVAL', '(', name, ')');
      return q.next;
    }
  }
  out.push(t.text);
  if (PARENLESS_FUNCTIONS.has(w) && !isPunct(next, '(') && !isPunct(tokens[i - 1], '.')) out.push('( )');
  return i;
}

/** After USE|FORCE|IGNORE INDEX|KEY: [FOR JOIN | FOR ORDER BY | FOR GROUP BY] (list). */
function skipIndexHint(tokens: readonly Token[], i: number): number {
  let j = i;
  if (wordAt(tokens, j) === 'FOR') {
    j++;
    if (wordAt(tokens, j) === 'JOIN') j++;
    else j += 2; // ORDER BY / GROUP BY
  }
  return isPunct(tokens[j], '(') ? skipParens(tokens, j) : j;
}

/** After FOR UPDATE|SHARE or LOCK IN SHARE MODE: [OF t, …] [NOWAIT | SKIP LOCKED | WAIT n]. */
function skipLocking(tokens: readonly Token[], i: number): number {
  let j = i;
  if (wordAt(tokens, j) === 'OF') {
    j++;
    for (;;) {
      const q = qualifiedNameAt(tokens, j);
      if (q === null) break;
      j = q.next;
      if (!isPunct(tokens[j], ',')) break;
      j++;
    }
  }
  const w = wordAt(tokens, j);
  if (w === 'NOWAIT') return j + 1;
  if (w === 'SKIP' && wordAt(tokens, j + 1) === 'LOCKED') return j + 2;
  if (w === 'WAIT' && tokens[j + 1]?.type === NUMBER) return j + 2;
  return j;
}

/** DELETE FROM t1, t2 USING t1 JOIN t2 … is DELETE t1, t2 FROM t1 JOIN t2 …,
 * the only multi-table form the parser knows. */
function deleteUsing(tokens: readonly Token[]): readonly Token[] {
  if (wordAt(tokens, 0) !== 'DELETE') return tokens;
  let from = 1;
  while (from < tokens.length && wordAt(tokens, from) !== 'FROM') {
    if (tokens[from]!.type !== WORD) return tokens;
    from++;
  }
  let j = from + 1;
  for (;;) {
    const q = qualifiedNameAt(tokens, j);
    if (q === null) return tokens;
    j = q.next;
    if (isPunct(tokens[j], '.') && isPunct(tokens[j + 1], '*')) j += 2;
    if (!isPunct(tokens[j], ',')) break;
    j++;
  }
  if (wordAt(tokens, j) !== 'USING') return tokens;
  return [...tokens.slice(0, from), ...tokens.slice(from + 1, j), tokens[from]!, ...tokens.slice(j + 1)];
}

/** Where each row of a `VALUES (…), (…)` list starts. */
function valuesRows(tokens: readonly Token[]): Set<number> {
  const rows = new Set<number>();
  for (let i = 0; i < tokens.length; i++) {
    const w = wordAt(tokens, i);
    if ((w !== 'VALUES' && w !== 'VALUE') || !isPunct(tokens[i + 1], '(')) continue;
    let j = i + 1;
    for (;;) {
      rows.add(j);
      j = skipParens(tokens, j);
      if (!isPunct(tokens[j], ',') || !isPunct(tokens[j + 1], '(')) break;
      j++;
    }
    i = j - 1;
  }
  return rows;
}

function literalText(t: Token): string {
  return t.type === STRING ? "''" : t.type === NUMBER ? '0' : t.text;
}

/** Literals, placeholders, signs and commas only, with at least two elements. */
function isLiteralList(tokens: readonly Token[], from: number, to: number): boolean {
  let commas = 0;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.type === STRING || t.type === NUMBER || t.type === PARAM) continue;
    if (t.type === PUNCT && (t.value === ',' || t.value === '-' || t.value === '+')) {
      if (t.value === ',') commas++;
      continue;
    }
    if (t.type === WORD && (t.value === 'NULL' || t.value === 'TRUE' || t.value === 'FALSE' || t.value === 'DEFAULT')) continue;
    return false;
  }
  return commas > 0;
}
