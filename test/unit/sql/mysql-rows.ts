// Table-driven checks of classifyMysql shared by the mysql-*.test.ts files:
// each Row states the whole classification expected of one statement text.

import { describe, expect, it } from 'vitest';
import type { BypassReason, SessionEffect, StatementKind, TableRef } from '../../../src/core/types.js';
import { classifyMysql } from '../../../src/sql/mysql-parser.js';

export interface Row {
  sql: string;
  kind: StatementKind;
  reads?: string[];
  writes?: string[];
  cacheable?: boolean;
  reason?: BypassReason;
  detail?: string;
  writesUnknown?: boolean;
  effects?: SessionEffect[];
  functions?: string[];
  relations?: TableRef[];
  count?: number;
  txn?: boolean;
  /** NO_BACKSLASH_ESCAPES. */
  noEscapes?: boolean;
}

const NONE: SessionEffect = { type: 'none' };
const sorted = (a: readonly string[]) => [...a].sort();

export function check(row: Row): void {
  const c = classifyMysql(row.sql, { backslashEscapes: row.noEscapes !== true });
  expect(c.kind, 'kind').toBe(row.kind);
  expect(sorted(c.reads), 'reads').toEqual(sorted(row.reads ?? []));
  expect(sorted(c.writes), 'writes').toEqual(sorted(row.writes ?? []));
  expect(c.cacheable, 'cacheable').toBe(row.cacheable ?? false);
  expect(c.writesUnknown, 'writesUnknown').toBe(row.writesUnknown ?? false);
  if (row.reason !== undefined) expect(c.reason, 'reason').toBe(row.reason);
  if (row.cacheable === true) expect(c.reason, 'reason').toBeUndefined();
  if (row.detail !== undefined) expect(c.detail, 'detail').toBe(row.detail);
  expect(c.sessionEffects, 'effects').toEqual(row.effects ?? Array.from({ length: row.count ?? 1 }, () => NONE));
  expect(sorted(c.functions), 'functions').toEqual(sorted(row.functions ?? []));
  if (row.relations !== undefined) expect(c.relations, 'relations').toEqual(row.relations);
  expect(c.builtins, 'builtins').toEqual([]);
  expect(c.operators, 'operators').toEqual([]);
  expect(c.statementCount, 'statementCount').toBe(row.count ?? 1);
  expect(c.txnControl, 'txnControl').toBe(row.txn ?? false);
}

export function table(promise: string, rows: Row[]): void {
  describe(promise, () => {
    it.each(rows.map((r) => [r.sql, r] as const))('%s', (_sql, row) => check(row));
  });
}
