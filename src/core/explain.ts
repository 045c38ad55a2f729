// explain(): what the proxy would do with one statement, without running it
// (the `sqlcached explain` command and GET /explain give the same answer).
// STUB: filled in by the explain work.

import type { Config } from '../config/schema.js';
import type { StatementClassifier } from './query-cache.js';
import type { Dialect } from './types.js';

export interface ExplainInput {
  classifier: StatementClassifier;
  config: Config;
  sql: string;
  dialect: Dialect;
}

export type Explanation = Record<string, unknown>;

export function explainStatement(input: ExplainInput): Explanation {
  return { dialect: input.dialect, sql: input.sql };
}
