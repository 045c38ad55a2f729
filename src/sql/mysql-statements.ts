// MySQL/MariaDB statements other than SELECT/INSERT/UPDATE/DELETE, by their
// leading keywords: transaction control, SET/USE, SHOW and friends, DDL,
// opaque statements (CALL, DO, EXECUTE) and EXPLAIN of a data statement.
// These are exact from the keywords, so node-sql-parser is not asked (it
// rejects SET NAMES, SAVEPOINT, SHOW FULL…).

import type { SessionEffect } from '../core/types.js';
import { NO_EFFECT, type StatementResult, newResult } from './mysql-facts.js';
import { ddl, grant, load, rename, truncate } from './mysql-ddl.js';
import { setOutcome, useEffect } from './mysql-settings.js';
import { unknownCalls } from './mysql-token-scan.js';
import { STRING, type Token, isPunct, wordAt } from './mysql-tokens.js';

/** Classifies a token slice that is a statement of its own (EXPLAIN's and
 * SET STATEMENT's inner statement). */
export type ClassifyTokens = (tokens: readonly Token[]) => StatementResult;

/** Statements that change no table and no session state the key holds. */
const PLAIN_OTHER = new Set([
  'SHOW', 'HELP', 'OPTIMIZE', 'CHECK', 'REPAIR', 'CHECKSUM', 'FLUSH', 'KILL', 'HANDLER', 'LOCK', 'UNLOCK', 'CACHE',
  'RESET', 'PURGE', 'SHUTDOWN', 'INSTALL', 'UNINSTALL', 'SIGNAL', 'RESIGNAL', 'GET', 'BACKUP', 'STOP', 'CHANGE',
  'PREPARE', 'DEALLOCATE',
]);

const TXN = new Set(['COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);

/** Words that start a statement EXPLAIN / DESCRIBE / ANALYZE may wrap. */
const EXPLAINABLE = new Set(['SELECT', 'WITH', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'TABLE', 'VALUES']);
/** EXPLAIN options before the statement: EXTENDED, PARTITIONS, ANALYZE, FORMAT = JSON (or 'JSON'). */
const EXPLAIN_OPTIONS = new Set(['EXTENDED', 'PARTITIONS', 'ANALYZE', 'FORMAT', 'JSON', 'TREE', 'TRADITIONAL']);

/** Null when the first keyword is none of these. */
export function classifyByKeyword(tokens: readonly Token[], escapes: boolean, inner: ClassifyTokens): StatementResult | null {
  const first = wordAt(tokens, 0);
  if (PLAIN_OTHER.has(first)) return newResult('other');
  if (TXN.has(first)) return txn();
  switch (first) {
    case 'SET':
      return set(tokens, escapes, inner);
    case 'USE': {
      const effect = useEffect(tokens);
      const r = newResult('session-set');
      if (effect !== null) r.effect = effect;
      else r.refusal = { reason: 'parse-error', detail: 'USE needs one database name' };
      return r;
    }
    case 'BEGIN':
      // MariaDB's BEGIN NOT ATOMIC … END runs a block we cannot see.
      return wordAt(tokens, 1) === 'NOT' ? opaque('BEGIN NOT ATOMIC') : txn();
    case 'START':
      return wordAt(tokens, 1) === 'TRANSACTION' ? txn() : newResult('other');
    case 'XA': {
      const r = txn();
      // XA COMMIT/ROLLBACK may end a transaction another (gone) session prepared.
      const verb = wordAt(tokens, 1);
      r.writesUnknown = verb === 'COMMIT' || verb === 'ROLLBACK';
      return r;
    }
    case 'CALL':
    case 'EXECUTE':
      return opaque(first);
    case 'DO': {
      // DO expr: a stored function it calls may write, and may SET what the key holds.
      const r = newResult('other');
      r.writesUnknown = true;
      if (unknownCalls(tokens).length > 0) r.effect = mayChangeSettings('DO');
      return r;
    }
    case 'BINLOG': {
      // Replays binary-log events: writes to any table.
      const r = newResult('other');
      r.writesUnknown = true;
      return r;
    }
    case 'EXPLAIN':
    case 'DESCRIBE':
    case 'DESC':
      return explain(tokens, inner);
    case 'ANALYZE': {
      // ANALYZE TABLE t updates statistics; MariaDB's ANALYZE <statement> runs it.
      const next = wordAt(tokens, 1);
      return next === 'TABLE' || next === 'TABLES' || next === 'LOCAL' || next === 'NO_WRITE_TO_BINLOG' ? newResult('other') : explain(tokens, inner);
    }
    case 'CREATE':
    case 'ALTER':
    case 'DROP':
      return ddl(tokens);
    case 'RENAME':
      return rename(tokens);
    case 'GRANT':
    case 'REVOKE':
      return grant(tokens);
    case 'TRUNCATE':
      return truncate(tokens);
    case 'LOAD':
      return load(tokens);
    default:
      return null;
  }
}

function txn(): StatementResult {
  const r = newResult('txn-control');
  r.txnControl = true;
  return r;
}

function mayChangeSettings(what: string): SessionEffect {
  return { type: 'taint', reason: 'session-state', detail: `${what} may change session settings` };
}

/** CALL, EXECUTE, BEGIN NOT ATOMIC: SQL the server runs that we cannot see. A
 * procedure can write anything and SET what the key holds, for good. */
function opaque(what: string): StatementResult {
  const r = newResult('other');
  r.writesUnknown = true;
  r.effect = mayChangeSettings(what);
  return r;
}

function set(tokens: readonly Token[], escapes: boolean, inner: ClassifyTokens): StatementResult {
  if (wordAt(tokens, 1) === 'STATEMENT') return setStatement(tokens, inner);
  const r = newResult('session-set');
  const outcome = setOutcome(tokens, escapes);
  r.effect = outcome.effect;
  r.writesUnknown = outcome.writesUnknown;
  return r;
}

/** SET STATEMENT var = value [, …] FOR statement (MariaDB): the statement
 * runs under settings the key does not hold, so it is never cached; the
 * settings end with it. */
function setStatement(tokens: readonly Token[], inner: ClassifyTokens): StatementResult {
  let depth = 0;
  for (let i = 2; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) depth--;
    else if (depth === 0 && wordAt(tokens, i) === 'FOR' && i + 1 < tokens.length) {
      const r = inner(tokens.slice(i + 1));
      r.refusal ??= { reason: 'session-state', detail: 'SET STATEMENT' };
      r.writesUnknown ||= unknownCalls(tokens.slice(2, i)).length > 0;
      return r;
    }
  }
  const r = newResult('session-set');
  r.refusal = { reason: 'parse-error', detail: 'SET STATEMENT without FOR' };
  return r;
}

/** EXPLAIN [options] statement: nothing cacheable. MySQL's EXPLAIN ANALYZE
 * and MariaDB's ANALYZE statement run it, so its writes count (always: at
 * worst an extra invalidation). EXPLAIN t / DESCRIBE t describe a table. */
function explain(tokens: readonly Token[], inner: ClassifyTokens): StatementResult {
  for (let i = 1; i < tokens.length; i++) {
    const w = wordAt(tokens, i);
    if (EXPLAINABLE.has(w) || isPunct(tokens[i], '(')) {
      const r = inner(tokens.slice(i));
      r.kind = 'other';
      r.effect = NO_EFFECT;
      return r;
    }
    if (!EXPLAIN_OPTIONS.has(w) && !isPunct(tokens[i], '=') && tokens[i]?.type !== STRING) break;
  }
  return newResult('other');
}
