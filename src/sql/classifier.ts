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
    // The shape already differs when the escape mode splits tokens
    // differently; the flag in the key is belt and braces.
    const key = (escapes ? 'p\\:' : 'p:') + shaped.shape;
    let classification = this.memo.get(key);
    if (classification === undefined) {
      // Parse the text itself (not the shape: `?` is not SQL), rewritten
      // so libpg-query splits strings where the server does.
      classification = deepFreeze(classifyPostgres(escapes ? toStandardStrings(sql) : sql));
      if (isShapeInvariant(classification)) this.memo.set(key, classification);
    }
    if (shaped.volatileLiteral && classification.cacheable) {
      // Not memoised: another text of the same shape may hold no clock word.
      classification = { ...classification, cacheable: false, reason: 'volatile-literal', detail: "a 'now'/'today'/'tomorrow'/'yesterday' literal" };
    }
    return { shaped, classification };
  }

  memoStats(): { size: number; hits: number; misses: number } {
    return { size: this.memo.size, hits: this.memo.hits, misses: this.memo.misses };
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
