// Hand-built classifier output and sessions for the core unit tests: what
// src/sql would return, written out so each test states its input.

import type { Analysis, Classification, SessionView, ShapedStatement, TableRef } from '../../../src/core/types.js';
import type { RelationInfo } from '../../../src/core/catalog.js';

export function classification(over: Partial<Classification> = {}): Classification {
  const reads = over.reads ?? ['users'];
  return {
    kind: 'read',
    reads,
    writes: [],
    relations: reads.map((name): TableRef => ({ schema: null, name })),
    writesUnknown: false,
    cacheable: true,
    functions: [],
    builtins: [],
    operators: [],
    sessionEffects: [{ type: 'none' }],
    statementCount: 1,
    txnControl: false,
    ...over,
  };
}

export function analysis(over: Partial<Classification> = {}, shaped: Partial<ShapedStatement> = {}): Analysis {
  return {
    shaped: {
      shape: 'SELECT * FROM users WHERE id = ?',
      keyText: 'SELECT * FROM users WHERE id = 1',
      hints: {},
      volatileLiteral: false,
      ...shaped,
    },
    classification: classification(over),
  };
}

export function write(tables: string[], over: Partial<Classification> = {}): Analysis {
  return analysis(
    {
      kind: 'write',
      reads: [],
      writes: tables,
      relations: tables.map((name) => ({ schema: null, name })),
      cacheable: false,
      reason: 'not-a-read',
      ...over,
    },
    { shape: `UPDATE ${tables.join(', ')} SET x = ?`, keyText: `UPDATE ${tables.join(', ')} SET x = 1` },
  );
}

export const SCOPE = '127.0.0.1:5432\0app\0"$user", public';

export function session(over: Partial<SessionView> = {}): SessionView {
  return {
    dialect: 'postgres',
    upstream: '127.0.0.1:5432',
    database: 'app',
    user: 'alice',
    contextKey: 'TimeZone=UTC',
    catalogScope: SCOPE,
    taint: null,
    inTransaction: false,
    ...over,
  };
}

export function table(name: string, over: Partial<RelationInfo> = {}): [TableRef, RelationInfo] {
  return [{ schema: null, name }, { name, cacheable: true, alsoInvalidates: [], invalidatesAll: false, ...over }];
}
