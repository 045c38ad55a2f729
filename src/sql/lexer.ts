// Character classes and "where does this token end" helpers shared by the
// single-pass scanners (shape.ts, standard-strings.ts). Pure index arithmetic
// over a JS string: no allocation, no regex, so the hot path stays cheap.

// Character codes the scanners dispatch on (plain consts, not a `const enum`,
// so per-file transpilers such as vitest's keep them as inlinable numbers).
export const TAB = 9;
export const LF = 10;
export const FF = 12;
export const CR = 13;
export const SPACE = 32;
export const BANG = 33; // !
export const DQUOTE = 34; // "
export const HASH = 35; // #
export const DOLLAR = 36; // $
export const AMP = 38; // &
export const QUOTE = 39; // '
export const LPAREN = 40; // (
export const RPAREN = 41; // )
export const STAR = 42; // *
export const PLUS = 43; // +
export const COMMA = 44; // ,
export const MINUS = 45; // -
export const DOT = 46; // .
export const SLASH = 47; // /
export const ZERO = 48;
export const NINE = 57;
export const SEMICOLON = 59; // ;
export const BACKSLASH = 92; // \
export const UNDERSCORE = 95; // _
export const BACKTICK = 96; // `

/** Whitespace as PostgreSQL 15 and MySQL lex it. \v is deliberately absent:
 * PostgreSQL only accepts it from 16 on, so folding it could merge a text the
 * server rejects with one it accepts. */
export function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === TAB || c === CR || c === FF;
}

export function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** PostgreSQL ident_start: [A-Za-z\200-\377_]. Any UTF-16 unit >= 0x80 comes
 * from bytes >= 0x80 in the server's encoding, so it counts as a letter. */
export function isIdentStart(c: number): boolean {
  const l = c | 0x20;
  return (l >= 97 && l <= 122) || c === UNDERSCORE || c >= 0x80;
}

/** PostgreSQL ident_cont: ident_start plus digits and `$`. */
export function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === DOLLAR;
}

/** How a quoted token treats its delimiter. */
export type QuoteMode = 0 | 1 | 2;
/** B'..', X'..': the first quote ends it. */
export const QUOTE_PLAIN: QuoteMode = 0;
/** '..' (standard), "..": a doubled quote is one quote. */
export const QUOTE_DOUBLING: QuoteMode = 1;
/** E'..', and '..' under backslash escapes: `\x` is escaped too. */
export const QUOTE_BACKSLASH: QuoteMode = 2;

/**
 * `from` is just past the opening quote. Returns the index just past the
 * closing quote, or -1 when the text ends first (unterminated).
 */
export function endOfQuoted(sql: string, from: number, quote: number, mode: QuoteMode): number {
  const n = sql.length;
  let i = from;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === quote) {
      if (mode !== QUOTE_PLAIN && i + 1 < n && sql.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    if (c === BACKSLASH && mode === QUOTE_BACKSLASH) {
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

/**
 * `at` is on a `$`. If a dollar-quote delimiter `$tag$` (tag an identifier
 * that does not start with a digit, or empty) starts here, returns the index
 * just past its closing `$`; otherwise -1 (`$1` parameters, stray `$`).
 */
export function endOfDollarTag(sql: string, at: number): number {
  const n = sql.length;
  let i = at + 1;
  if (i < n && sql.charCodeAt(i) === DOLLAR) return i + 1;
  if (i >= n || !isIdentStart(sql.charCodeAt(i))) return -1;
  i++;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === DOLLAR) return i + 1;
    // The tag is ident_cont without `$` (which would end it).
    if (!isIdentStart(c) && !isDigit(c)) return -1;
    i++;
  }
  return -1;
}

/** `from` is past `/*`. Returns the index past the matching `*\/`, or -1.
 * PostgreSQL nests block comments; MySQL does not. */
export function endOfBlockComment(sql: string, from: number, nested: boolean): number {
  const n = sql.length;
  let depth = 1;
  let i = from;
  while (i + 1 < n) {
    const c = sql.charCodeAt(i);
    if (c === STAR && sql.charCodeAt(i + 1) === SLASH) {
      depth--;
      i += 2;
      if (depth === 0) return i;
      continue;
    }
    if (nested && c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      depth++;
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

/** `from` is past `--` or `#`. Returns the index of the ending \n or \r (not
 * consumed: it is whitespace), or the text's length. */
export function endOfLineComment(sql: string, from: number): number {
  const n = sql.length;
  let i = from;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === LF || c === CR) return i;
    i++;
  }
  return n;
}

/** MySQL only treats `--` as a comment when a space or control character
 * (or the end of the text) follows it: `1--1` is 1 - -1. */
export function isMysqlDashComment(sql: string, at: number): boolean {
  const i = at + 2;
  return i >= sql.length || sql.charCodeAt(i) <= SPACE;
}

/** [eE][+-]?digits after a mantissa, if present: the index past it, else `i`. */
export function exponentEnd(sql: string, i: number): number {
  const n = sql.length;
  if (i >= n || (sql.charCodeAt(i) | 0x20) !== 101) return i;
  let j = i + 1;
  const s = j < n ? sql.charCodeAt(j) : 0;
  if (s === PLUS || s === MINUS) j++;
  if (j >= n || !isDigit(sql.charCodeAt(j))) return i;
  while (j < n && isDigit(sql.charCodeAt(j))) j++;
  return j;
}

/** PostgreSQL numeric literal from `start` (a digit, or `.` before a digit):
 * digits, an optional fraction, an optional exponent. `1..5` is an integer
 * then `..`, so a `.` followed by another `.` is not taken. */
export function endOfPgNumber(sql: string, start: number): number {
  const n = sql.length;
  let i = start;
  while (i < n && isDigit(sql.charCodeAt(i))) i++;
  if (i < n && sql.charCodeAt(i) === DOT && !(i + 1 < n && sql.charCodeAt(i + 1) === DOT)) {
    i++;
    while (i < n && isDigit(sql.charCodeAt(i))) i++;
  }
  return exponentEnd(sql, i);
}

/**
 * MySQL token from `start` (a digit, or `.` before a digit). Identifiers may
 * start with digits (`1st_table`), so returns the end and whether it is a
 * number: digits with fraction/exponent, 0x…, 0b…; anything else glued to
 * letters is a word.
 */
export function endOfMysqlNumber(sql: string, start: number): { end: number; word: boolean } {
  const n = sql.length;
  let i = start;
  while (i < n && isDigit(sql.charCodeAt(i))) i++;
  if (i > start && i < n && isIdentStart(sql.charCodeAt(i))) {
    const l = sql.charCodeAt(i) | 0x20;
    let end = -1;
    if (i === start + 1 && sql.charCodeAt(start) === ZERO && (l === 120 /* x */ || l === 98 /* b */)) {
      let j = i + 1;
      while (j < n && isRadixDigit(sql.charCodeAt(j), l === 120)) j++;
      if (j > i + 1) end = j;
    } else if (l === 101 /* e */) {
      const j = exponentEnd(sql, i);
      if (j > i) end = j;
    }
    if (end >= 0 && !(end < n && isIdentCont(sql.charCodeAt(end)))) return { end, word: false };
    let j = i;
    while (j < n && isIdentCont(sql.charCodeAt(j))) j++;
    return { end: j, word: true };
  }
  return { end: endOfPgNumber(sql, start), word: false };
}

function isRadixDigit(c: number, hex: boolean): boolean {
  if (!hex) return c === ZERO || c === ZERO + 1;
  const l = c | 0x20;
  return isDigit(c) || (l >= 97 && l <= 102);
}

/** Does a comment start at `i` (`c` is the character there)? MySQL's
 * executable comments are code, not comments. */
export function isCommentStart(sql: string, i: number, c: number, pg: boolean): boolean {
  if (c === MINUS) return sql.charCodeAt(i + 1) === MINUS && (pg || isMysqlDashComment(sql, i));
  if (c === SLASH) return sql.charCodeAt(i + 1) === STAR && (pg || mysqlExecutableMarker(sql, i) === 0);
  return c === HASH && !pg;
}

/** At a MySQL `/*`: the length of an executable-comment marker (`/*!`,
 * `/*M!`, `/*+`: code the server runs), or 0 for a plain comment. */
export function mysqlExecutableMarker(sql: string, i: number): number {
  const m = sql.charCodeAt(i + 2);
  if (m === BANG || m === PLUS) return 3;
  return m === 77 /* M */ && sql.charCodeAt(i + 3) === BANG ? 4 : 0;
}

/** Drops trailing spaces and `;` from an output, down to `floor` (the end of
 * an unterminated literal, which keeps its bytes). */
export function trimTrailingSeparators(s: string, floor: number): string {
  let end = s.length;
  while (end > floor) {
    const c = s.charCodeAt(end - 1);
    if (c !== SPACE && c !== SEMICOLON) break;
    end--;
  }
  return end === s.length ? s : s.slice(0, end);
}
