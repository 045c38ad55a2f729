// What is known of a statement the parser rejected (or that the keyword-led
// scan does not know): never cached; a read only when its first keyword
// says so and every call in it is a known builtin; anything else may have
// written tables we cannot name.

import type { StatementResult } from './mysql-facts.js';
import { addTable, newResult } from './mysql-facts.js';
import { scanTokens, unknownCalls } from './mysql-token-scan.js';
import { PUNCT, type Token, isPunct, qualifiedNameAt, wordAt } from './mysql-tokens.js';

/** First keywords of statements that cannot write a table. */
const READ_ONLY_FIRST_WORDS = new Set([
  'SELECT', 'WITH', 'SHOW', 'DESC', 'DESCRIBE', 'EXPLAIN', 'HELP', 'SET', 'USE', 'BEGIN', 'START', 'COMMIT',
  'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'XA', 'LOCK', 'UNLOCK',
]);

const VERBS = new Set(['SELECT', 'TABLE', 'VALUES', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE']);
const WRITE_MODIFIERS = new Set(['LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE', 'QUICK', 'INTO']);

/** SELECT / WITH / INSERT / REPLACE / UPDATE / DELETE / TABLE / VALUES / ( … the parser refused. */
export function rejectedData(tokens: readonly Token[], message: string): StatementResult {
  const at = mainVerb(tokens);
  const verb = wordAt(tokens, at);
  const write = verb === 'INSERT' || verb === 'REPLACE' || verb === 'UPDATE' || verb === 'DELETE';
  const r = newResult(write ? 'write' : 'read');
  r.refusal = { reason: 'parse-error', detail: message };
  scanTokens(tokens, r.facts);
  if (write) {
    r.writesUnknown = true;
    const target = verb === 'DELETE' ? topLevelWord(tokens, at + 1, 'FROM') + 1 : skipModifiers(tokens, at + 1);
    const q = target <= 0 ? null : qualifiedNameAt(tokens, target);
    if (q !== null) addTable(r.facts, q.db, q.name, 'write');
  } else {
    // A call we cannot vouch for may be a stored function that writes.
    r.writesUnknown = unknownCalls(tokens).length > 0;
  }
  return r;
}

/** A statement no rule here knows (or one left unterminated). */
export function unknownStatement(tokens: readonly Token[], message: string): StatementResult {
  const r = newResult('other');
  r.refusal = { reason: 'parse-error', detail: message };
  r.writesUnknown = !READ_ONLY_FIRST_WORDS.has(wordAt(tokens, 0));
  return r;
}

/** Where the statement's own verb stands: after WITH's CTEs (their bodies
 * are parenthesised, so it is the first top-level verb) or at 0. */
function mainVerb(tokens: readonly Token[]): number {
  if (wordAt(tokens, 0) !== 'WITH') return 0;
  let depth = 0;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === PUNCT) {
      if (t.value === '(') depth++;
      else if (t.value === ')') depth--;
    } else if (depth === 0 && VERBS.has(wordAt(tokens, i))) {
      return i;
    }
  }
  return 0;
}

function skipModifiers(tokens: readonly Token[], i: number): number {
  let j = i;
  while (WRITE_MODIFIERS.has(wordAt(tokens, j))) j++;
  return j;
}

function topLevelWord(tokens: readonly Token[], from: number, word: string): number {
  let depth = 0;
  for (let i = from; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) depth--;
    else if (depth === 0 && wordAt(tokens, i) === word) return i;
  }
  return -1;
}
