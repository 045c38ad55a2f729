// The classifier the rest of the proxy calls: shape every statement (hot
// path, microseconds), classify each shape once (memo, parser on a miss).

import type { Classification, Dialect, ShapedStatement } from '../core/types.js';
import { ClassificationMemo } from './classification-memo.js';
import { classifyMysql } from './mysql-parser.js';
import { classifyPostgres, loadPostgresParser } from './postgres-parser.js';
import { shapeOf } from './shape.js';
import { toStandardStrings } from './standard-strings.js';

export interface Analysis {
  shaped: ShapedStatement;
  classification: Classification;
}

/**
 * Texts remembered whole (PostgreSQL), per escape mode. Bounded by count and
 * by text length: at most TEXT_MEMO_ENTRIES × TEXT_MEMO_MAX_CHARS characters
 * of SQL (and its shape and key text), ~6 MB of one-byte strings at worst.
 */
const TEXT_MEMO_ENTRIES = 2048;
const TEXT_MEMO_MAX_CHARS = 1024;

export class Classifier {
  private escapesMemo: ClassificationMemo | null = null;
  /**
   * Exact text → frozen Analysis, in front of shapeOf and the shape memo.
   * pgbench, ORMs and drivers send the same Parse text (with $n parameters)
   * over and over; shaping it again was ~4.5 % of the CPU of an extended
   * cache hit (perf, pgbench -M extended). The analysis is a pure function
   * of (dialect, text, escape mode): shapeOf reads nothing else, and only
   * classifications the shape memo keeps (isShapeInvariant, so no SET with
   * a value, no parse error) are remembered here; the volatile-literal
   * override is a function of the text too. Evicted oldest-inserted first.
   */
  private readonly textMemo = new Map<string, Analysis>();
  private readonly textEscapesMemo = new Map<string, Analysis>();
  /** MySQL texts read with backslash escapes (the server's default). */
  private readonly mysqlMemo: ClassificationMemo;
  /** MySQL texts under NO_BACKSLASH_ESCAPES (usually empty). */
  private mysqlPlainMemo: ClassificationMemo | null = null;

  private constructor(private readonly memo: ClassificationMemo) {
    this.mysqlMemo = new ClassificationMemo(memo.maxEntries);
  }

  static async load(opts?: { memoSize?: number }): Promise<Classifier> {
    await loadPostgresParser();
    return new Classifier(new ClassificationMemo(opts?.memoSize));
  }

  /**
   * HOT PATH. Returned classifications are frozen and shared between calls:
   * copy before changing one.
   */
  analyse(dialect: Dialect, sql: string, opts?: { backslashEscapes?: boolean }): Analysis {
    if (dialect === 'mysql') return this.analyseMysql(sql, opts?.backslashEscapes ?? true);
    const escapes = opts?.backslashEscapes === true;
    // Texts read with backslash escapes (standard_conforming_strings off) get
    // their own memo: a shape alone does not say how its text was lexed.
    const memo = escapes ? (this.escapesMemo ??= new ClassificationMemo(this.memo.maxEntries)) : this.memo;
    const texts = escapes ? this.textEscapesMemo : this.textMemo;
    const known = texts.get(sql);
    let shaped: ShapedStatement;
    let classification: Classification | undefined;
    if (known !== undefined) {
      // A text is answered only while its shape is memoised too: the shape
      // memo keeps its bound, recency and counters exactly as without this
      // memo (the shape string is the same object each time, so this get
      // hashes nothing).
      if (memo.get(known.shaped.shape) !== undefined) return known;
      texts.delete(sql);
      shaped = known.shaped;
    } else {
      shaped = shapeOf(sql, dialect, opts);
      classification = memo.get(shaped.shape);
    }
    let invariant = true;
    if (classification === undefined) {
      // Parse the text itself (not the shape: `?` is not SQL), rewritten
      // so libpg-query splits strings where the server does.
      classification = deepFreeze(classifyPostgres(escapes ? toStandardStrings(sql) : sql));
      invariant = isShapeInvariant(classification);
      if (invariant) memo.set(shaped.shape, classification);
    }
    if (shaped.volatileLiteral && classification.cacheable) {
      // Not memoised: another text of the same shape may hold no clock word.
      classification = Object.freeze({ ...classification, cacheable: false, reason: 'volatile-literal', detail: "a 'now'/'today'/'tomorrow'/'yesterday' literal" });
    }
    const analysis: Analysis = { shaped, classification };
    if (invariant && sql.length <= TEXT_MEMO_MAX_CHARS) {
      // Shared from now on, like the classifications: frozen so that a
      // caller changing one cannot change another statement's analysis.
      deepFreeze(analysis);
      if (texts.size >= TEXT_MEMO_ENTRIES) {
        const oldest = texts.keys().next();
        if (oldest.done !== true) texts.delete(oldest.value);
      }
      texts.set(sql, analysis);
    }
    return analysis;
  }

  /**
   * HOT PATH. MySQL: backslash escapes on unless the session's sql_mode has
   * NO_BACKSLASH_ESCAPES (`backslashEscapes: false`). The two modes lex
   * strings differently, so each has its own memo.
   */
  private analyseMysql(sql: string, backslashEscapes: boolean): Analysis {
    const shaped = shapeOf(sql, 'mysql', { backslashEscapes });
    const memo = backslashEscapes ? this.mysqlMemo : (this.mysqlPlainMemo ??= new ClassificationMemo(this.memo.maxEntries));
    let classification = memo.get(shaped.shape);
    if (classification === undefined) {
      classification = deepFreeze(classifyMysql(sql, { backslashEscapes }));
      if (isShapeInvariant(classification)) memo.set(shaped.shape, classification);
    }
    return { shaped, classification };
  }

  /** Every memo together (PostgreSQL, MySQL, and their rarely used
   * backslash-escape variants). */
  memoStats(): { size: number; hits: number; misses: number } {
    const memos = [this.memo, this.escapesMemo, this.mysqlMemo, this.mysqlPlainMemo].filter((m) => m !== null);
    return {
      size: memos.reduce((n, m) => n + m.size, 0),
      hits: memos.reduce((n, m) => n + m.hits, 0),
      misses: memos.reduce((n, m) => n + m.misses, 0),
    };
  }
}

/**
 * Whether every text of this shape classifies the same.
 * - A SET's value comes from its literal (SET TimeZone = 'UTC' and
 *   = 'Asia/Tokyo' share a shape): parsed every time (SETs are rare).
 * - The grammar sometimes wants a string where a number is written
 *   (`interval 1`, `COPY t FROM 1`), so a rejected text can share its shape
 *   with a valid one. A parse error would then hide the valid text's
 *   functions and writes: rejected texts are parsed every time.
 */
function isShapeInvariant(c: Classification): boolean {
  if (c.reason === 'parse-error') return false;
  return !c.sessionEffects.some((e) => e.type === 'set' && e.value !== null);
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) {
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) deepFreeze(v as object);
  }
  return Object.freeze(o);
}
