// With standard_conforming_strings off, PostgreSQL reads '…' like E'…'
// (backslash escapes). libpg-query always lexes as if it were on, so it
// would split 'a\' OR …' differently from the server and could miss a write
// hidden in what it takes for a string. toStandardStrings rewrites the text
// so the parser sees the server's token boundaries: every plain '…' literal
// that starts a string gets an E prefix. Only the classifier's memo-miss path
// calls this; the hot path never does.

import {
  AMP, CR, DOLLAR, DQUOTE, LF, MINUS, QUOTE, QUOTE_BACKSLASH, QUOTE_DOUBLING, QUOTE_PLAIN, SLASH, STAR,
  endOfBlockComment, endOfDollarTag, endOfLineComment, endOfQuoted, isDigit, isIdentCont, isIdentStart, isSpace,
} from './lexer.js';

export function toStandardStrings(sql: string): string {
  const n = sql.length;
  let out = '';
  let copied = 0;
  // Since the last '-quoted literal: only whitespace and -- comments, and a
  // newline among them. A ' here continues that literal (no new prefix).
  let afterString = false;
  let newline = false;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      if (c === LF || c === CR) newline = true;
      i++;
      continue;
    }
    if (c === MINUS && sql.charCodeAt(i + 1) === MINUS) {
      i = endOfLineComment(sql, i + 2);
      continue;
    }
    const continues = afterString && newline;
    afterString = false;
    newline = false;
    if (c === QUOTE) {
      if (!continues) {
        // `date'…'`, `N'…'`: keep the typed literal a typed literal.
        const glued = i > 0 && isIdentCont(sql.charCodeAt(i - 1));
        out += sql.slice(copied, i) + (glued ? ' E' : 'E');
        copied = i;
      }
      i = endOrRest(endOfQuoted(sql, i + 1, QUOTE, QUOTE_BACKSLASH), n);
      afterString = true;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      i = endOrRest(endOfBlockComment(sql, i + 2, true), n);
    } else if (c === DQUOTE) {
      i = endOrRest(endOfQuoted(sql, i + 1, DQUOTE, QUOTE_DOUBLING), n);
    } else if (c === DOLLAR) {
      const tagEnd = isDigit(sql.charCodeAt(i + 1)) ? -1 : endOfDollarTag(sql, i);
      if (tagEnd < 0) {
        i++;
      } else {
        const close = sql.indexOf(sql.slice(i, tagEnd), tagEnd);
        i = close < 0 ? n : close + (tagEnd - i);
      }
    } else if (isIdentStart(c)) {
      const l = c | 0x20;
      const next = sql.charCodeAt(i + 1);
      if (next === QUOTE && (l === 101 /* e */ || l === 98 /* b */ || l === 120 /* x */)) {
        const mode = l === 101 ? QUOTE_BACKSLASH : QUOTE_PLAIN;
        i = endOrRest(endOfQuoted(sql, i + 2, QUOTE, mode), n);
        afterString = true;
      } else if (l === 117 /* u */ && next === AMP && sql.charCodeAt(i + 2) === QUOTE) {
        // U&'…' is rejected by the server when standard_conforming_strings is off.
        i = endOrRest(endOfQuoted(sql, i + 3, QUOTE, QUOTE_DOUBLING), n);
        afterString = true;
      } else {
        // N'…' falls through: `N` is a word, the ' after it a plain literal.
        i++;
        while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
      }
    } else {
      i++;
    }
  }
  return out === '' ? sql : out + sql.slice(copied);
}

function endOrRest(end: number, n: number): number {
  return end < 0 ? n : end;
}
