// 'now', 'today', 'tomorrow', 'yesterday': PostgreSQL's date/time input reads
// the clock when it parses these words, so `'now'::timestamptz` differs per
// call although its text (and shape) never changes. The scanner asks this
// module about every string literal's content.

import { BACKSLASH } from './lexer.js';

/**
 * True when `text` contains one of the clock words as a whole word (letters
 * on neither side), case-insensitive. Whole words rather than the exact
 * trimmed value: PostgreSQL also accepts 'tomorrow 13:00' and
 * 'yesterday UTC'. Costs a few false positives ('buy now') — safety first.
 */
export function hasClockWord(text: string, from = 0, to = text.length): boolean {
  const n = to;
  let i = from;
  while (i < n) {
    if (!isLetter(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && isLetter(text.charCodeAt(i))) i++;
    const len = i - start;
    if ((len === 3 || len === 5 || len === 8 || len === 9) && isClockWord(text, start, len)) return true;
  }
  return false;
}

function isLetter(c: number): boolean {
  const l = c | 0x20;
  return l >= 97 && l <= 122;
}

function isClockWord(text: string, start: number, len: number): boolean {
  const word = text.slice(start, start + len).toLowerCase();
  return word === 'now' || word === 'today' || word === 'tomorrow' || word === 'yesterday';
}

/** Decodes E'' (and non-standard '') escapes: \n \t…, \ooo, \xhh, \uXXXX,
 * \UXXXXXXXX, and `\c` → c. Only the letters matter to the caller, so an
 * invalid code point becomes a space rather than an error. */
export function decodeBackslashEscapes(raw: string): string {
  if (raw.indexOf('\\') < 0) return raw;
  let out = '';
  const n = raw.length;
  let i = 0;
  while (i < n) {
    const c = raw.charCodeAt(i);
    if (c !== BACKSLASH || i + 1 >= n) {
      out += raw[i];
      i++;
      continue;
    }
    const e = raw[i + 1] ?? '';
    i += 2;
    if (e >= '0' && e <= '7') {
      let j = i - 1;
      while (j < n && j < i + 2 && raw[j]! >= '0' && raw[j]! <= '7') j++;
      out += fromCode(parseInt(raw.slice(i - 1, j), 8));
      i = j;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const max = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      let j = i;
      while (j < n && j < i + max && isHex(raw.charCodeAt(j))) j++;
      out += j > i ? fromCode(parseInt(raw.slice(i, j), 16)) : e;
      i = j;
    } else {
      out += e === 'n' || e === 't' || e === 'r' || e === 'b' || e === 'f' ? ' ' : e;
    }
  }
  return out;
}

/**
 * U&'…' literals. The escape character is `\` unless a UESCAPE clause (which
 * follows the literal, unseen yet) picks another one: any character but a hex
 * digit, `+`, a quote or whitespace. So we decode once per candidate escape
 * present in the text and answer true if any decoding shows a clock word.
 */
export function unicodeLiteralMayBeClockWord(raw: string): boolean {
  if (hasClockWord(raw)) return true;
  const tried = new Set<string>();
  for (const ch of raw) {
    if (tried.has(ch) || isHex(ch.charCodeAt(0)) || ch === '+' || ch === "'" || ch === '"' || ch.trim() === '') continue;
    tried.add(ch);
    if (hasClockWord(decodeUnicodeEscapes(raw, ch))) return true;
  }
  return false;
}

function decodeUnicodeEscapes(raw: string, esc: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== esc) {
      out += raw[i];
      continue;
    }
    if (raw[i + 1] === esc) {
      out += esc;
      i++;
      continue;
    }
    const wide = raw[i + 1] === '+';
    const from = wide ? i + 2 : i + 1;
    const hex = raw.slice(from, from + (wide ? 6 : 4));
    out += fromCode(parseInt(hex, 16));
    i = from + hex.length - 1;
  }
  return out;
}

function isHex(c: number): boolean {
  const l = c | 0x20;
  return (c >= 48 && c <= 57) || (l >= 97 && l <= 102);
}

function fromCode(cp: number): string {
  return Number.isInteger(cp) && cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : ' ';
}

/** How a string literal's content must be read for the check. */
export const TEXT_RAW = 0; // '..' standard, $$..$$: the raw letters
export const TEXT_ESCAPED = 1; // E'..', or '..' with backslash escapes
export const TEXT_UNICODE = 2; // U&'..'
export const TEXT_NONE = 3; // B'..', X'..', numbers, MySQL: never checked
export type TextKind = 0 | 1 | 2 | 3;

/**
 * The scanner's running check. A PostgreSQL literal may continue after a
 * newline ('no'<newline>'w' is 'now'), so the content of the current
 * literal is kept until the next one starts.
 */
export class ClockWordCheck {
  found = false;
  private kind: TextKind = TEXT_NONE;
  /** The current literal's content: decoded text, or a range of `src` (no copy on the hot path). */
  private chain = '';
  private src = '';
  private from = 0;
  private to = 0;

  reset(): void {
    this.found = false;
    this.kind = TEXT_NONE;
    this.chain = this.src = '';
  }

  /** A new literal with content [from, to) of `sql`. */
  start(sql: string, from: number, to: number, kind: TextKind): void {
    this.kind = kind;
    if (kind === TEXT_NONE || this.found) return;
    if (kind === TEXT_RAW) {
      this.src = sql;
      this.from = from;
      this.to = to;
      this.chain = '';
      if (hasClockWord(sql, from, to)) this.found = true;
    } else if (kind === TEXT_ESCAPED) {
      this.chain = decodeBackslashEscapes(sql.slice(from, to));
      if (hasClockWord(this.chain)) this.found = true;
    } else {
      this.chain = sql.slice(from, to);
      if (unicodeLiteralMayBeClockWord(this.chain)) this.found = true;
    }
  }

  /** The next piece of the same literal (after a newline). */
  more(sql: string, from: number, to: number): void {
    if (this.kind === TEXT_NONE || this.found) return;
    if (this.kind === TEXT_RAW && this.chain === '') this.chain = this.src.slice(this.from, this.to);
    const piece = sql.slice(from, to);
    this.chain += this.kind === TEXT_ESCAPED ? decodeBackslashEscapes(piece) : piece;
    const hit = this.kind === TEXT_UNICODE ? unicodeLiteralMayBeClockWord(this.chain) : hasClockWord(this.chain);
    if (hit) this.found = true;
  }
}
