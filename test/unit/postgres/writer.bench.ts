// 1M encodeParse calls: our MessageWriter against pg-protocol's serialize.parse.
// `npx vitest bench --run test/unit/postgres`; results are quoted in writer.ts.
import { serialize } from 'pg-protocol';
import { bench, describe } from 'vitest';
import { encodeParse } from '../../../src/postgres/writer.js';

const SQL = 'SELECT * FROM users WHERE id = $1 AND org = $2';
const TYPES = [23, 23];
const CALLS = 1_000_000;

describe('1M Parse messages', () => {
  bench('writer.ts encodeParse', () => {
    for (let i = 0; i < CALLS; i++) encodeParse('', SQL, TYPES);
  }, { iterations: 5, time: 0 });
  bench('pg-protocol serialize.parse', () => {
    for (let i = 0; i < CALLS; i++) serialize.parse({ name: '', text: SQL, types: TYPES });
  }, { iterations: 5, time: 0 });
});
