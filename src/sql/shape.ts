// shapeOf: the single-pass scanner on the hot path. One walk over the text
// yields the shape (literals → ?, the fingerprint stats, rules and the
// classification memo group by), the key text (comments out, whitespace
// folded, literals byte-exact: the SQL part of the cache key), comment hints
// and the clock-literal flag. No parser, no regex per character.
//
// Both outputs are built from slices of the input, not per character: the key
// text is cut only where whitespace or a comment differs from one space, the
// shape also at literals. A single-spaced ORM statement's key is the input.
//
// The IN check looks at the previous token, never back into the shape:
// reading a character of the concatenated shape flattens it, which made a
// 20,000-row INSERT cost ~600 ms (quadratic) to shape.
//
// Measured (node 20, CPU time, 4 ORM statements of 95 chars on average with
// literals, an IN list and a comment): 0.6–0.75M shapes/s on the shared
// 2-vCPU dev container (load average 3–6), where a bare charCodeAt loop over
// the same texts manages ~3.5M/s; i.e. ~5 bare passes per shape (so >1M/s
// wherever a bare pass runs at >5M/s). Profiled: reusing one scanner
// instance removed the ~12% of samples spent initialising fields.

import type { Dialect, Hints, ShapedStatement } from '../core/types.js';
import { mayHoldHint, readHints } from './hints.js';
import {
  AMP, BACKTICK, COMMA, CR, DOLLAR, DOT, DQUOTE, HASH, LF, LPAREN, MINUS, PLUS, QUOTE, QUOTE_BACKSLASH, QUOTE_DOUBLING,
  QUOTE_PLAIN, RPAREN, SLASH, SPACE, STAR, type QuoteMode, endOfBlockComment, endOfDollarTag, endOfLineComment,
  endOfMysqlNumber, endOfPgNumber, endOfQuoted, isCommentStart, isDigit, isIdentCont, isIdentStart, isSpace,
  mysqlExecutableMarker, trimTrailingSeparators,
} from './lexer.js';
import { ClockWordCheck, TEXT_ESCAPED, TEXT_NONE, TEXT_RAW, TEXT_UNICODE, type TextKind } from './volatile-literal.js';

/** Where an `IN (` list stands. */
const IN_NONE = 0;
const IN_EXPECT_VALUE = 1; // after `IN (` or `,`
const IN_AFTER_VALUE = 2; // after a literal
const IN_AFTER_SIGN = 3; // after `-` / `+`

export function shapeOf(sql: string, dialect: Dialect, opts?: { backslashEscapes?: boolean }): ShapedStatement {
  const pg = dialect === 'postgres';
  // MySQL strings take backslash escapes unless NO_BACKSLASH_ESCAPES is set.
  const escapes = opts?.backslashEscapes ?? !pg;
  return scanner.scan(sql, pg, escapes ? QUOTE_BACKSLASH : QUOTE_DOUBLING);
}

/** The scanner's state. One instance is reused (shapeOf is synchronous and
 * never re-entered): allocating ~20 fields per call cost ~12% of a shape. */
class ShapeScanner {
  sql = '';
  pg = true;
  plainMode: QuoteMode = QUOTE_DOUBLING;
  shape = '';
  key = '';
  /** Starts of the input not yet copied to the key / the shape (sRun >= kRun). */
  kRun = 0;
  sRun = 0;
  /** Pending separator: 0 none, 1 a space, 2 a newline run that may continue a PostgreSQL string. */
  ws = 0;
  /** The token being started continues the previous string ('a'<newline>'b'). */
  continuing = false;
  /** Since the last '-quoted PostgreSQL string: only whitespace and `--` comments. */
  cont = false;
  /** Index of the last single space left inside the runs (canonical already). */
  lastSpace = -1;
  /** Lengths the trailing-`;` trim must not cut into (an unterminated literal). */
  keyFloor = 0;
  shapeFloor = 0;
  inList = IN_NONE;
  inStart = 0;
  /** The last token (comments and whitespace aside) was the word IN. */
  lastIn = false;
  /** Inside a MySQL executable comment (`/*!`, `/*M!`, `/*+`): its `*\/` is code. */
  execComment = false;
  hints: Hints = {};
  readonly clock = new ClockWordCheck();

  scan(text: string, pg: boolean, plainMode: QuoteMode): ShapedStatement {
    this.sql = text;
    this.pg = pg;
    this.plainMode = plainMode;
    this.shape = this.key = '';
    this.kRun = this.sRun = this.ws = this.keyFloor = this.shapeFloor = this.inList = this.inStart = 0;
    this.continuing = this.cont = this.execComment = this.lastIn = false;
    this.lastSpace = -1;
    this.hints = {};
    this.clock.reset();
    try {
      return this.run();
    } finally {
      this.sql = this.shape = this.key = ''; // do not pin the caller's strings
    }
  }

  run(): ShapedStatement {
    const sql = this.sql;
    const n = sql.length;
    const pg = this.pg;
    let i = 0;
    while (i < n) {
      const c = sql.charCodeAt(i);
      if (isSpace(c)) {
        // One space between two tokens is already canonical: leave it in the runs.
        if (c === SPACE && this.ws === 0 && (i + 1 >= n || !isSpace(sql.charCodeAt(i + 1))) && (i > this.kRun || this.key.length > 0)) {
          this.lastSpace = i;
          i++;
          continue;
        }
        this.flush(i);
        let nl = false;
        while (i < n) {
          const d = sql.charCodeAt(i);
          if (!isSpace(d)) break;
          if (d === LF || d === CR) nl = true;
          i++;
        }
        this.separate(nl);
        this.kRun = this.sRun = i;
        continue;
      }
      if (this.ws !== 0 && !isCommentStart(sql, i, c, pg)) this.startToken(i, c);
      // Whether IN stands just before this token (a comment does not count as one).
      const afterIn = this.lastIn;
      if (this.lastIn && !((c === MINUS || c === SLASH || c === HASH) && isCommentStart(sql, i, c, pg))) this.lastIn = false;
      if (isIdentStart(c) || (c === DOLLAR && !pg)) {
        const end = this.prefixedLiteral(i, c);
        if (end >= 0) {
          i = end;
          continue;
        }
        this.inList = IN_NONE;
        this.cont = false;
        const start = i;
        i++;
        while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
        this.lastIn = i - start === 2 && (c | 0x20) === 105 /* i */ && (sql.charCodeAt(start + 1) | 0x20) === 110; /* n */
        continue;
      }
      if (isDigit(c) || (c === DOT && i + 1 < n && isDigit(sql.charCodeAt(i + 1)))) {
        i = this.number(i);
        continue;
      }
      switch (c) {
        case QUOTE: {
          const text = pg ? (this.plainMode === QUOTE_BACKSLASH ? TEXT_ESCAPED : TEXT_RAW) : TEXT_NONE;
          i = this.literal(i, i + 1, QUOTE, this.plainMode, text);
          continue;
        }
        case DQUOTE:
          i = pg ? this.quotedIdentifier(i + 1, DQUOTE) : this.literal(i, i + 1, DQUOTE, this.plainMode, TEXT_NONE);
          continue;
        case BACKTICK:
          if (pg) break;
          i = this.quotedIdentifier(i + 1, BACKTICK);
          continue;
        case DOLLAR: {
          // PostgreSQL only (MySQL took `$` as an identifier character above).
          if (i + 1 < n && isDigit(sql.charCodeAt(i + 1))) {
            // $1: a parameter, kept as written.
            this.inList = IN_NONE;
            this.cont = false;
            i += 2;
            while (i < n && isDigit(sql.charCodeAt(i))) i++;
            continue;
          }
          const tagEnd = endOfDollarTag(sql, i);
          if (tagEnd < 0) break;
          const close = sql.indexOf(sql.slice(i, tagEnd), tagEnd);
          const end = close < 0 ? -1 : close + (tagEnd - i);
          i = this.emitLiteral(i, end, tagEnd, close < 0 ? n : close, TEXT_RAW);
          continue;
        }
        case MINUS:
          if (isCommentStart(sql, i, c, pg)) {
            i = this.lineComment(i, i + 2);
            continue;
          }
          this.inList = this.inList === IN_EXPECT_VALUE ? IN_AFTER_SIGN : IN_NONE;
          this.cont = false;
          i++;
          continue;
        case PLUS:
          this.inList = this.inList === IN_EXPECT_VALUE ? IN_AFTER_SIGN : IN_NONE;
          this.cont = false;
          i++;
          continue;
        case HASH:
          if (pg) break;
          i = this.lineComment(i, i + 1);
          continue;
        case SLASH:
          if (i + 1 < n && sql.charCodeAt(i + 1) === STAR) {
            i = this.blockComment(i);
            continue;
          }
          break;
        case STAR:
          if (this.execComment && i + 1 < n && sql.charCodeAt(i + 1) === SLASH) {
            // The end of a MySQL executable comment: code, kept.
            this.execComment = false;
            this.inList = IN_NONE;
            i += 2;
            continue;
          }
          break;
        case LPAREN:
          this.flushShape(i + 1);
          this.inList = afterIn ? IN_EXPECT_VALUE : IN_NONE;
          this.inStart = this.shape.length;
          this.cont = false;
          i++;
          continue;
        case COMMA:
          this.inList = this.inList === IN_AFTER_VALUE ? IN_EXPECT_VALUE : IN_NONE;
          this.cont = false;
          i++;
          continue;
        case RPAREN:
          if (this.inList === IN_AFTER_VALUE) this.closeInList(i);
          this.inList = IN_NONE;
          this.cont = false;
          i++;
          continue;
      }
      // Any other character is plain text: operators, punctuation, `;`.
      this.inList = IN_NONE;
      this.cont = false;
      i++;
    }
    this.flush(n);
    return {
      shape: trimTrailingSeparators(this.shape, this.shapeFloor),
      keyText: trimTrailingSeparators(this.key, this.keyFloor),
      hints: this.hints,
      volatileLiteral: this.pg && this.clock.found,
    };
  }

  /** Copies the pending input up to `to` into both outputs. */
  flush(to: number): void {
    if (to > this.kRun) this.key += this.sql.slice(this.kRun, to);
    this.kRun = to;
    this.flushShape(to);
  }

  flushShape(to: number): void {
    if (to > this.sRun) this.shape += this.sql.slice(this.sRun, to);
    this.sRun = to;
  }

  /** Whitespace or a comment was seen: one separator is pending. */
  separate(newline: boolean): void {
    if (newline && this.cont) this.ws = 2;
    else if (this.ws === 0) this.ws = 1;
  }

  /** A token starts at `i` after whitespace/comments: write the separator. */
  startToken(i: number, c: number): void {
    const ws = this.ws;
    this.ws = 0;
    this.kRun = this.sRun = i;
    if (this.key.length === 0) return; // leading whitespace and comments are trimmed
    if (ws === 2 && c === QUOTE) {
      // 'a'<newline>'b' is the one literal 'ab' in PostgreSQL; on one line it
      // is a syntax error. The key keeps the newline so they never share it.
      this.key += '\n';
      this.continuing = true;
      return;
    }
    this.key += ' ';
    this.shape += ' ';
  }

  /** E'..', B'..', X'..', N'..', U&'..', U&".." (PostgreSQL); B, X, N (MySQL).
   * Returns the index past the token, or -1 when `c` starts a plain word. */
  prefixedLiteral(i: number, c: number): number {
    const sql = this.sql;
    const next = sql.charCodeAt(i + 1);
    const l = c | 0x20;
    if (next === QUOTE) {
      if (l === 101 /* e */ && this.pg) return this.literal(i, i + 2, QUOTE, QUOTE_BACKSLASH, TEXT_ESCAPED);
      if (l === 98 /* b */ || l === 120 /* x */) return this.literal(i, i + 2, QUOTE, QUOTE_PLAIN, TEXT_NONE);
      if (l === 110 /* n */) {
        const text = this.pg ? (this.plainMode === QUOTE_BACKSLASH ? TEXT_ESCAPED : TEXT_RAW) : TEXT_NONE;
        return this.literal(i, i + 2, QUOTE, this.plainMode, text);
      }
      return -1;
    }
    if (next === AMP && l === 117 /* u */ && this.pg) {
      const q = sql.charCodeAt(i + 2);
      if (q === QUOTE) return this.literal(i, i + 3, QUOTE, QUOTE_DOUBLING, TEXT_UNICODE);
      if (q === DQUOTE) return this.quotedIdentifier(i + 3, DQUOTE);
    }
    return -1;
  }

  /** A quoted literal from `start` whose content begins at `from`. */
  literal(start: number, from: number, quote: number, mode: QuoteMode, text: TextKind): number {
    const end = endOfQuoted(this.sql, from, quote, mode);
    const next = this.emitLiteral(start, end, from, end < 0 ? this.sql.length : end - 1, text);
    // Every '-quoted PostgreSQL literal (plain, E, B, X, N, U&) may continue
    // after a newline; dollar quotes and MySQL strings never do.
    if (this.pg && end >= 0 && quote === QUOTE) this.cont = true;
    return next;
  }

  /** A literal spanning [start, end) (end -1: unterminated, the rest of the
   * text is the literal). The key keeps it in its run; the shape gets `?`. */
  emitLiteral(start: number, end: number, contentFrom: number, contentTo: number, text: TextKind): number {
    const stop = end < 0 ? this.sql.length : end;
    if (this.continuing) {
      // The second piece of one literal: no new `?`.
      this.continuing = false;
      if (this.pg) this.clock.more(this.sql, contentFrom, contentTo);
      this.sRun = stop;
    } else {
      this.flushShape(start);
      this.shape += '?';
      this.sRun = stop;
      this.inList = this.inList === IN_EXPECT_VALUE || this.inList === IN_AFTER_SIGN ? IN_AFTER_VALUE : IN_NONE;
      if (this.pg) this.clock.start(this.sql, contentFrom, contentTo, text);
    }
    this.cont = false;
    if (end < 0) this.protectTail();
    return stop;
  }

  number(i: number): number {
    if (this.pg) return this.emitLiteral(i, endOfPgNumber(this.sql, i), i, i, TEXT_NONE);
    const t = endOfMysqlNumber(this.sql, i);
    if (!t.word) return this.emitLiteral(i, t.end, i, i, TEXT_NONE);
    this.inList = IN_NONE;
    return t.end;
  }

  quotedIdentifier(from: number, quote: number): number {
    const end = endOfQuoted(this.sql, from, quote, QUOTE_DOUBLING);
    this.inList = IN_NONE;
    this.cont = false;
    if (end >= 0) return end; // stays in the runs, byte-exact in both outputs
    // Unterminated: the server rejects it; keep the rest whole.
    this.protectTail();
    return this.sql.length;
  }

  /** Everything up to the end is one unterminated token: copy it out and
   * keep the trailing-`;` trim from cutting into it. */
  protectTail(): void {
    this.flush(this.sql.length);
    this.keyFloor = this.key.length;
    this.shapeFloor = this.shape.length;
  }

  /** Copies the runs up to a comment at `start`, without a single space
   * left just before it (the comment's own separator replaces it). */
  flushBeforeComment(start: number): void {
    this.flush(this.lastSpace === start - 1 && start - 1 >= this.sRun ? start - 1 : start);
  }

  lineComment(start: number, from: number): number {
    this.flushBeforeComment(start);
    const end = endOfLineComment(this.sql, from);
    if (mayHoldHint(this.sql, from, end)) readHints(this.sql.slice(from, end), this.hints);
    this.separate(false);
    this.kRun = this.sRun = end;
    return end;
  }

  blockComment(start: number): number {
    const sql = this.sql;
    const marker = this.pg ? 0 : mysqlExecutableMarker(sql, start);
    if (marker > 0) {
      // MySQL runs it: keep it as code, version number included (/*!50100).
      this.execComment = true;
      this.inList = IN_NONE;
      let i = start + marker;
      while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
      return i;
    }
    const end = endOfBlockComment(sql, start + 2, this.pg);
    if (end < 0) {
      // Unterminated: the server rejects it. Keep the rest verbatim so it
      // never shares a key with the text before it.
      if (this.ws !== 0) this.startToken(start, 0);
      return this.emitLiteral(start, -1, start, start, TEXT_NONE);
    }
    this.flushBeforeComment(start);
    if (mayHoldHint(sql, start + 2, end - 2)) readHints(sql.slice(start + 2, end - 2), this.hints);
    // A block comment ends any string continuation ('a' /* c */ <newline> 'b' is an error).
    this.cont = false;
    if (this.ws === 2) this.ws = 1;
    this.separate(false);
    this.kRun = this.sRun = end;
    return end;
  }

  /** `)` after a literal-only IN list: the shape becomes `IN (?...)`. */
  closeInList(i: number): void {
    this.shape = this.shape.slice(0, this.inStart) + '?...)';
    this.sRun = i + 1;
  }
}

const scanner = new ShapeScanner();
