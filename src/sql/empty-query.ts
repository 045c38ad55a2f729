// The classification of a text with no statement in it (only comments or
// semicolons): both dialects answer it alike.

import type { Classification } from '../core/types.js';

export function emptyQuery(): Classification {
  return {
    kind: 'other',
    reads: [],
    writes: [],
    relations: [],
    writesUnknown: false,
    cacheable: false,
    reason: 'not-a-read',
    detail: 'empty query',
    functions: [],
    builtins: [],
    operators: [],
    sessionEffects: [],
    statementCount: 0,
    txnControl: false,
  };
}
