// The MySQL/MariaDB token stream the classifier reads: one pass over a
// statement text with the same lexical rules as shape.ts (lexer.ts helpers),
// so two texts of one shape always tokenize alike apart from literal values.
// Comments are dropped; executable comments (`/*! … */`, `/*M! … */`) are
// code; optimizer hints (`/*+ … */`) become one HINT token. Off the hot
// path: runs once per shape (and for every SET, whose values are literals).

import {
  BACKTICK, DOLLAR, DOT, DQUOTE, HASH, MINUS, QUOTE, QUOTE_BACKSLASH, QUOTE_DOUBLING, QUOTE_PLAIN, SLASH, STAR,
  type QuoteMode, endOfBlockComment, endOfLineComment, endOfMysqlNumber, endOfQuoted, isDigit, isIdentCont,
  isIdentStart, isMysqlDashComment, isSpace, mysqlExecutableMarker,
} from './lexer.js';

/** Token types (plain numbers so a switch stays cheap). */
export const WORD = 0; // keyword or unquoted identifier (also `1st_table`)
export const IDENT = 1; // `backtick quoted`
export const STRING = 2; // '…', "…", N'…'
export const NUMBER = 3; // 12, 1.5e3, 0x1F, 0b01, X'1F', B'01'
export const USER_VAR = 4; // @name, @'name', @`name`
export const SYSTEM_VAR = 5; // @@name, @@session.name
export const PARAM = 6; // ? (COM_STMT_PREPARE)
export const PUNCT = 7; // ( ) , ; . and operators (<=>, ->>, := … as one token)
export const HINT = 8; // /*+ optimizer hints */

export interface Token {
  type: number;
  /** The source slice. */
  text: string;
  /** WORD: upper-cased text. IDENT: the name unquoted. Others: the text. */
  value: string;
}

export interface Statement {
  tokens: Token[];
  /** An unterminated string, identifier or comment: the server rejects it. */
  broken: boolean;
}

const OPERATORS = ['<=>', '->>', '<=', '>=', '<>', '!=', ':=', '->', '||', '&&', '<<', '>>'];

/** Splits a text into statements at top-level `;` (not inside a stored
 * program's BEGIN … END, which the server reads as one statement). */
export function statementsOf(sql: string, backslashEscapes: boolean): Statement[] {
  const out: Statement[] = [];
  const lexer = new Lexer(sql, backslashEscapes ? QUOTE_BACKSLASH : QUOTE_DOUBLING);
  let cur: Token[] = [];
  let depth = 0;
  /** Null until a block word asks. */
  let compound: boolean | null = null;
  for (let t = lexer.next(); t !== null; t = lexer.next()) {
    if (t.type === PUNCT && t.value === ';' && depth <= 0) {
      if (cur.length > 0) out.push({ tokens: cur, broken: false });
      cur = [];
      depth = 0;
      compound = null;
      continue;
    }
    // An optimizer hint counts only after a verb; before one it is a comment.
    if (t.type === HINT && cur.length === 0) continue;
    cur.push(t);
    if (t.type !== WORD) continue;
    if (cur.length === 2 && cur[0]!.value === 'BEGIN' && t.value === 'NOT') {
      // MariaDB's BEGIN NOT ATOMIC … END: the BEGIN just read opened it.
      compound = true;
      depth = 1;
      continue;
    }
    if (!BLOCK_WORDS.has(t.value)) continue;
    compound ??= isStoredProgram(cur);
    if (compound) depth += blockDelta(t.value, cur);
  }
  if (cur.length > 0) out.push({ tokens: cur, broken: lexer.broken });
  else if (lexer.broken && out.length > 0) out[out.length - 1]!.broken = true;
  return out;
}

const BLOCK_WORDS = new Set(['BEGIN', 'CASE', 'END', 'IF', 'LOOP', 'WHILE', 'REPEAT', 'FOR']);
const STORED_PROGRAMS = new Set(['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'PACKAGE']);

/** CREATE/ALTER [OR REPLACE] [DEFINER = u] [AGGREGATE] PROCEDURE|FUNCTION|
 * TRIGGER|EVENT|PACKAGE: a body that may hold BEGIN … END with `;` inside.
 * (Not CREATE TABLE: `begin` is a valid column name there.) */
function isStoredProgram(tokens: readonly Token[]): boolean {
  const first = wordAt(tokens, 0);
  if (first !== 'CREATE' && first !== 'ALTER') return false;
  let i = 1;
  if (wordAt(tokens, i) === 'OR' && wordAt(tokens, i + 1) === 'REPLACE') i += 2;
  if (wordAt(tokens, i) === 'DEFINER') {
    i += isPunct(tokens[i + 1], '=') ? 3 : 2;
    if (isPunct(tokens[i], '(') && isPunct(tokens[i + 1], ')')) i += 2;
    if (tokens[i]?.text.startsWith('@') === true) i++;
  }
  if (wordAt(tokens, i) === 'AGGREGATE') i++;
  return STORED_PROGRAMS.has(wordAt(tokens, i));
}

/** BEGIN and CASE open a block that END closes; END IF / END LOOP / END
 * WHILE / END REPEAT / END FOR close blocks that were never counted. The
 * END being looked at is the last token; what follows it is not read yet,
 * so `END IF` is undone when IF arrives. */
function blockDelta(word: string, tokens: readonly Token[]): number {
  const afterEnd = wordAt(tokens, tokens.length - 2) === 'END';
  if (word === 'BEGIN') return 1;
  // END CASE closes a CASE block already closed by its END.
  if (word === 'CASE') return afterEnd ? 0 : 1;
  if (word === 'END') return -1;
  return afterEnd ? 1 : 0;
}

class Lexer {
  i = 0;
  broken = false;
  /** Inside an executable comment: its closing star-slash is skipped as code. */
  exec = false;

  constructor(
    readonly sql: string,
    readonly mode: QuoteMode,
  ) {}

  next(): Token | null {
    const sql = this.sql;
    const n = sql.length;
    while (this.i < n) {
      const i = this.i;
      const c = sql.charCodeAt(i);
      if (isSpace(c)) {
        this.i++;
        continue;
      }
      if (c === HASH || (c === MINUS && sql.charCodeAt(i + 1) === MINUS && isMysqlDashComment(sql, i))) {
        this.i = endOfLineComment(sql, i + (c === HASH ? 1 : 2));
        continue;
      }
      if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
        const hint = this.comment(i);
        if (hint !== null) return hint;
        continue;
      }
      if (c === STAR && this.exec && sql.charCodeAt(i + 1) === SLASH) {
        this.exec = false;
        this.i += 2;
        continue;
      }
      return this.token(i, c);
    }
    return null;
  }

  /** A comment at `i`: skipped, an executable comment opened, or a hint token. */
  comment(i: number): Token | null {
    const sql = this.sql;
    const marker = mysqlExecutableMarker(sql, i);
    if (marker > 0 && sql.charCodeAt(i + 2) !== 43 /* + */) {
      // /*!50100 … */ and /*M!100100 … */: the server runs the contents.
      let j = i + marker;
      while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
      this.i = j;
      this.exec = true;
      return null;
    }
    const end = endOfBlockComment(sql, i + 2, false);
    if (end < 0) {
      this.broken = true;
      this.i = sql.length;
      return null;
    }
    this.i = end;
    if (marker === 0) return null;
    const text = sql.slice(i, end);
    return { type: HINT, text, value: text };
  }

  token(i: number, c: number): Token {
    const sql = this.sql;
    const n = sql.length;
    if (isIdentStart(c) || c === DOLLAR) {
      const next = sql.charCodeAt(i + 1);
      const l = c | 0x20;
      if (next === QUOTE && (l === 98 /* b */ || l === 120 /* x */)) return this.quoted(i, i + 2, QUOTE, QUOTE_PLAIN, NUMBER);
      if (next === QUOTE && l === 110 /* n */) return this.quoted(i, i + 2, QUOTE, this.mode, STRING);
      let j = i + 1;
      while (j < n && isIdentCont(sql.charCodeAt(j))) j++;
      return this.word(i, j);
    }
    if (isDigit(c) || (c === DOT && isDigit(sql.charCodeAt(i + 1)))) {
      const t = endOfMysqlNumber(sql, i);
      return t.word ? this.word(i, t.end) : this.emit(NUMBER, i, t.end);
    }
    switch (c) {
      case QUOTE:
      case DQUOTE:
        return this.quoted(i, i + 1, c, this.mode, STRING);
      case BACKTICK:
        return this.quoted(i, i + 1, BACKTICK, QUOTE_DOUBLING, IDENT);
      case 63: // ?
        return this.emit(PARAM, i, i + 1);
      case 64: // @
        return this.variable(i);
    }
    for (const op of OPERATORS) {
      if (sql.startsWith(op, i)) return this.emit(PUNCT, i, i + op.length);
    }
    return this.emit(PUNCT, i, i + 1);
  }

  word(i: number, end: number): Token {
    this.i = end;
    const text = this.sql.slice(i, end);
    return { type: WORD, text, value: text.toUpperCase() };
  }

  emit(type: number, i: number, end: number): Token {
    this.i = end;
    const text = this.sql.slice(i, end);
    return { type, text, value: text };
  }

  quoted(start: number, from: number, quote: number, mode: QuoteMode, type: number): Token {
    let end = endOfQuoted(this.sql, from, quote, mode);
    if (end < 0) {
      this.broken = true;
      end = this.sql.length;
    }
    const t = this.emit(type, start, end);
    if (type === IDENT) t.value = unquoteIdent(t.text);
    return t;
  }

  /** @name, @'name', @`name`, @@name, @@session.name, @@session.`name`. */
  variable(i: number): Token {
    const sql = this.sql;
    const system = sql.charCodeAt(i + 1) === 64;
    let j = i + (system ? 2 : 1);
    const q = sql.charCodeAt(j);
    if (!system && (q === QUOTE || q === DQUOTE || q === BACKTICK)) {
      const end = endOfQuoted(sql, j + 1, q, q === BACKTICK ? QUOTE_DOUBLING : this.mode);
      if (end < 0) this.broken = true;
      j = end < 0 ? sql.length : end;
    } else {
      for (;;) {
        while (j < sql.length && (isIdentCont(sql.charCodeAt(j)) || (!system && sql.charCodeAt(j) === DOT))) j++;
        if (system && sql.charCodeAt(j) === DOT && j + 1 < sql.length) {
          j++;
          if (sql.charCodeAt(j) === BACKTICK) {
            const end = endOfQuoted(sql, j + 1, BACKTICK, QUOTE_DOUBLING);
            if (end < 0) this.broken = true;
            j = end < 0 ? sql.length : end;
          }
          continue;
        }
        break;
      }
    }
    return this.emit(system ? SYSTEM_VAR : USER_VAR, i, j);
  }
}

/** `name` → name, with doubled backticks undone. */
export function unquoteIdent(text: string): string {
  const inner = text.length >= 2 && text.endsWith('`') ? text.slice(1, -1) : text.slice(1);
  return inner.replace(/``/g, '`');
}

/** The word at `i` (upper case), or '' when it is not a WORD. */
export function wordAt(tokens: readonly Token[], i: number): string {
  const t = tokens[i];
  return t !== undefined && t.type === WORD ? t.value : '';
}

export function isPunct(t: Token | undefined, p: string): boolean {
  return t !== undefined && t.type === PUNCT && t.value === p;
}

/** A name token (unquoted word or `quoted`) → the name as the server sees it. */
export function nameOf(t: Token | undefined): string | null {
  if (t === undefined) return null;
  if (t.type === IDENT) return t.value;
  return t.type === WORD ? t.text : null;
}

export interface QualifiedName {
  db: string | null;
  name: string;
  /** Index just past the name. */
  next: number;
}

/** `[db.]name` at `i`, or null. */
export function qualifiedNameAt(tokens: readonly Token[], i: number): QualifiedName | null {
  const first = nameOf(tokens[i]);
  if (first === null) return null;
  if (isPunct(tokens[i + 1], '.')) {
    const second = nameOf(tokens[i + 2]);
    if (second !== null) return { db: first, name: second, next: i + 3 };
  }
  return { db: null, name: first, next: i + 1 };
}

/** Index just past the parenthesised group opening at `i` (`(` there). */
export function skipParens(tokens: readonly Token[], i: number): number {
  let depth = 0;
  for (let j = i; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (t.type !== PUNCT) continue;
    if (t.value === '(') depth++;
    else if (t.value === ')' && --depth === 0) return j + 1;
  }
  return tokens.length;
}

/** Splits tokens at top-level (parenthesis depth 0) commas. */
export function splitTopLevel(tokens: readonly Token[], sep = ','): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.type === PUNCT) {
      if (t.value === '(') depth++;
      else if (t.value === ')') depth--;
      else if (t.value === sep && depth === 0) {
        out.push(cur);
        cur = [];
        continue;
      }
    }
    cur.push(t);
  }
  out.push(cur);
  return out;
}

