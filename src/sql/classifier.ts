// The classifier the rest of the proxy calls: shape every statement (hot
// path, microseconds), classify each shape once (memo, parser on a miss).

import type { Classification, Dialect, ShapedStatement } from '../core/types.js';
import { ClassificationMemo } from './classification-memo.js';
import { classifyPostgres, loadPostgresParser } from './postgres-parser.js';
import { shapeOf } from './shape.js';
import { toStandardStrings } from './standard-strings.js';

export interface Analysis {
  shaped: ShapedStatement;
  classification: Classification;
}

export class Classifier {
  private escapesMemo: ClassificationMemo | null = null;

  private constructor(private readonly memo: ClassificationMemo) {}

  static async load(opts?: { memoSize?: number }): Promise<Classifier> {
    await loadPostgresParser();
    return new Classifier(new ClassificationMemo(opts?.memoSize));
  }

  /**
   * HOT PATH. Returned classifications are frozen and shared between calls:
   * copy before changing one.
   */
  analyse(dialect: Dialect, sql: string, opts?: { backslashEscapes?: boolean }): Analysis {
    if (dialect === 'mysql') throw new Error('mysql classifier not implemented yet');
    const shaped = shapeOf(sql, dialect, opts);
    const escapes = opts?.backslashEscapes === true;
    // Texts read with backslash escapes (standard_conforming_strings off) get
    // their own memo: a shape alone does not say how its text was lexed.
    const memo = escapes ? (this.escapesMemo ??= new ClassificationMemo(this.memo.maxEntries)) : this.memo;
    const key = shaped.shape;
    let classification = memo.get(key);
    if (classification === undefined) {
      // Parse the text itself (not the shape: `?` is not SQL), rewritten
      // so libpg-query splits strings where the server does.
      classification = deepFreeze(classifyPostgres(escapes ? toStandardStrings(sql) : sql));
      if (isShapeInvariant(classification)) memo.set(key, classification);
    }
    if (shaped.volatileLiteral && classification.cacheable) {
      // Not memoised: another text of the same shape may hold no clock word.
      classification = { ...classification, cacheable: false, reason: 'volatile-literal', detail: "a 'now'/'today'/'tomorrow'/'yesterday' literal" };
    }
    return { shaped, classification };
  }

  /** Both memos together (the backslash-escapes one is usually empty). */
  memoStats(): { size: number; hits: number; misses: number } {
    const e = this.escapesMemo;
    return {
      size: this.memo.size + (e?.size ?? 0),
      hits: this.memo.hits + (e?.hits ?? 0),
      misses: this.memo.misses + (e?.misses ?? 0),
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
