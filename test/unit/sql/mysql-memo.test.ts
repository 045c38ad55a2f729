// Classifier.analyse('mysql', …): shape every text, parse each shape once,
// never carry one text's literal-dependent answer over to another, and never
// throw, whatever bytes a client sends.

import { describe, expect, it, vi } from 'vitest';
import type { Classification } from '../../../src/core/types.js';
import { Classifier } from '../../../src/sql/classifier.js';
import * as parser from '../../../src/sql/mysql-parser.js';
import { newFacts } from '../../../src/sql/mysql-facts.js';
import { namedTables } from '../../../src/sql/mysql-token-scan.js';
import { statementsOf } from '../../../src/sql/mysql-tokens.js';
import { walkStatement } from '../../../src/sql/mysql-walk.js';
import { shapeOf } from '../../../src/sql/shape.js';

vi.mock('../../../src/sql/mysql-parser.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../src/sql/mysql-parser.js')>();
  return { ...actual, classifyMysql: vi.fn(actual.classifyMysql) };
});

const parses = () => vi.mocked(parser.classifyMysql).mock.calls.length;

describe('the MySQL memo', () => {
  it('a second text of the same shape is answered from the memo without parsing again', async () => {
    const c = await Classifier.load();
    const before = parses();
    const a = c.analyse('mysql', 'SELECT * FROM `users` WHERE `id` = 1');
    const b = c.analyse('mysql', "SELECT * FROM `users` WHERE `id` = 'x'");
    const d = c.analyse('mysql', 'SELECT  * FROM `users` # a comment\n WHERE `id` = 3');
    expect(parses() - before).toBe(1);
    expect(b.classification).toBe(a.classification);
    expect(d.classification).toBe(a.classification);
    expect(a.classification.reads).toEqual(['users']);
    expect(c.memoStats()).toEqual({ size: 1, hits: 2, misses: 1 });
    expect(Object.isFrozen(a.classification.reads)).toBe(true);
  });

  it('parses the original text, and defaults to backslash escapes on', async () => {
    const c = await Classifier.load();
    const sql = "SELECT * FROM t WHERE s = 'x\\'y' AND id IN (1, 2)";
    const r = c.analyse('mysql', sql);
    expect(vi.mocked(parser.classifyMysql).mock.lastCall).toEqual([sql, { backslashEscapes: true }]);
    expect(r.shaped.shape).toBe('SELECT * FROM t WHERE s = ? AND id IN (?...)');
    expect(r.shaped.keyText).toBe(sql);
  });

  it('NO_BACKSLASH_ESCAPES texts get their own memo: a shape alone does not say how strings were lexed', async () => {
    const c = await Classifier.load();
    const sql = "SELECT 'a\\' FROM t WHERE x = ' UNION SELECT * FROM secret -- '";
    const escaped = c.analyse('mysql', sql).classification;
    const plain = c.analyse('mysql', sql, { backslashEscapes: false }).classification;
    expect(escaped.reads).toEqual(['secret']);
    expect(plain.reads).toEqual(['t']);
    expect(c.analyse('mysql', sql, { backslashEscapes: false }).classification).toBe(plain);
    expect(c.analyse('mysql', sql, { backslashEscapes: true }).classification).toBe(escaped);
    expect(c.memoStats()).toEqual({ size: 2, hits: 2, misses: 2 });
  });

  it('SET values come from each text, never from another text of the same shape', async () => {
    const c = await Classifier.load();
    const utc = c.analyse('mysql', "SET time_zone = 'UTC'").classification;
    const tokyo = c.analyse('mysql', "SET time_zone = 'Asia/Tokyo'").classification;
    expect(utc.sessionEffects).toEqual([{ type: 'set', name: 'time_zone', value: 'UTC', local: false }]);
    expect(tokyo.sessionEffects).toEqual([{ type: 'set', name: 'time_zone', value: 'Asia/Tokyo', local: false }]);
    // A SET whose value is not a literal does not depend on the text: memoised.
    const before = parses();
    c.analyse('mysql', "SET sql_mode = CONCAT(@@sql_mode, ',A')");
    c.analyse('mysql', "SET sql_mode = CONCAT(@@sql_mode, ',B')");
    expect(parses() - before).toBe(1);
  });

  it('a text the parser rejects is not memoised: a valid text of the same shape gets its own parse', async () => {
    const c = await Classifier.load();
    const bad = c.analyse('mysql', "SELECT audit(a) FROM t LIMIT 'x'").classification;
    const good = c.analyse('mysql', 'SELECT audit(a) FROM t LIMIT 5').classification;
    expect(bad.reason).toBe('parse-error');
    expect(good.cacheable).toBe(true);
    expect(good.functions).toEqual(['audit']);
    expect(c.memoStats().size).toBe(1);
  });

  it('USE is memoised by its shape, which holds the database name', async () => {
    const c = await Classifier.load();
    expect(c.analyse('mysql', 'USE a').classification.sessionEffects).toEqual([{ type: 'use', database: 'a' }]);
    expect(c.analyse('mysql', 'USE `B`').classification.sessionEffects).toEqual([{ type: 'use', database: 'B' }]);
  });
});

// Every text of one shape must classify the same (SET values excepted).
const TEMPLATES = [
  'SELECT * FROM t WHERE a = % AND b IN (%L)',
  'SELECT * FROM t WHERE a = % LIMIT %, %',
  'SELECT * FROM t WHERE d > DATE_ADD(%, INTERVAL % DAY) ORDER BY a LIMIT %',
  'SELECT UNIX_TIMESTAMP(%) FROM t WHERE x NOT IN (%L)',
  'INSERT INTO t (a, b) VALUES (%, %), (%, %) ON DUPLICATE KEY UPDATE b = %',
  'UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = % WHERE t2.b IN (%L)',
  'DELETE FROM t WHERE a = % ORDER BY id LIMIT %',
  'SELECT CASE WHEN a > % THEN % ELSE % END FROM t FOR UPDATE',
  'SELECT JSON_EXTRACT(a, %) FROM t WHERE b = _utf8mb4% AND c LIKE % ESCAPE %',
  'SELECT * FROM t WHERE a = % %',
  'LOAD DATA INFILE % INTO TABLE t',
  "SELECT GET_LOCK(%, %)",
  'SELECT a FROM t INTO OUTFILE %',
];
const LITERALS = ['1', '42.5', "'x'", "'a b'", "'it''s'", "'x\\'y'", '"dq"', '1e3', "'2020-01-01'", "b'101'", "X'ff'", '0x1F', "N'n'"];

function comparable(c: Classification): unknown {
  const effects = c.sessionEffects.map((e) => (e.type === 'set' ? { ...e, value: '<value>' } : e));
  return { ...c, sessionEffects: effects };
}

describe('shape as memo key', () => {
  it('every text of one shape that parses gets the same classification, for 13 templates × random literals', () => {
    let seed = 7;
    const pick = <T,>(xs: readonly T[]): T => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return xs[seed % xs.length]!;
    };
    const byShape = new Map<string, { sql: string; c: unknown }>();
    let compared = 0;
    for (let i = 0; i < 500; i++) {
      const sql = pick(TEMPLATES)
        .replace(/%L/g, () => Array.from({ length: 1 + (i % 5) }, () => pick(LITERALS)).join(', '))
        .replace(/%/g, () => pick(LITERALS));
      const shape = shapeOf(sql, 'mysql').shape;
      const got = parser.classifyMysql(sql);
      if (got.reason === 'parse-error') continue;
      const c = comparable(got);
      const first = byShape.get(shape);
      if (first === undefined) byShape.set(shape, { sql, c });
      else {
        compared++;
        expect(c, `${first.sql}\n${sql}`).toEqual(first.c);
      }
    }
    expect(compared).toBeGreaterThan(300);
  });
});

describe('analyse never throws', () => {
  it('random bytes come back as a classification that is never cacheable', async () => {
    const c = await Classifier.load();
    const alphabet = "abcXYZ_09 \t\n'\"`()[],;.*=<>!-+/#@?\\$\u0000\u00e9\u4e2d\ud83d\ude00";
    let seed = 3;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      let sql = '';
      const len = rnd(120);
      for (let j = 0; j < len; j++) sql += alphabet[rnd(alphabet.length)];
      // Only a few of these are cacheable SQL by chance; none may throw.
      const a = c.analyse('mysql', sql);
      expect(a.classification.statementCount).toBeGreaterThanOrEqual(0);
      if (a.classification.kind !== 'read') expect(a.classification.cacheable).toBe(false);
    }
  });

  it('unterminated quotes, comments and garbage are parse errors', async () => {
    const c = await Classifier.load();
    for (const sql of ["SELECT 'abc", 'SELECT "abc', 'SELECT `abc', 'SELECT 1 /* abc', '\u0000\u0001\u0002', ')))(((', '@@@', "'; DROP TABLE t; --"]) {
      const r = c.analyse('mysql', sql).classification;
      expect(r.reason, sql).toBe('parse-error');
      expect(r.cacheable, sql).toBe(false);
    }
    expect(c.analyse('mysql', "')); DELETE FROM t; --").classification.writesUnknown).toBe(true);
  });

  it('very long texts are classified (literal lists collapse before the parser sees them)', async () => {
    const c = await Classifier.load();
    const inList = `SELECT * FROM t WHERE id IN (${Array.from({ length: 50_000 }, (_, i) => i).join(', ')})`;
    expect(c.analyse('mysql', inList).classification).toMatchObject({ kind: 'read', reads: ['t'], cacheable: true });
    const rows = `INSERT INTO t (a, b) VALUES ${Array.from({ length: 20_000 }, (_, i) => `(${i}, 'v${i}')`).join(', ')}`;
    expect(c.analyse('mysql', rows).classification).toMatchObject({ kind: 'write', writes: ['t'], writesUnknown: false });
    const junk = 'x'.repeat(1_000_000);
    expect(c.analyse('mysql', junk).classification).toMatchObject({ reason: 'parse-error', detail: `not understood: ${'x'.repeat(40)}` });
    const deep = `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)} FROM t`;
    expect(c.analyse('mysql', deep).classification.cacheable).toBe(false);
  });
});

describe('shaping (the hot path, run on every statement, memo hits included)', () => {
  it('is linear in the number of parenthesised rows: a 40,000-row INSERT shapes in well under a second', () => {
    // Reading back into the built shape made this quadratic (~2.5 s here).
    const rows = `INSERT INTO t (a, b) VALUES ${Array.from({ length: 40_000 }, (_, i) => `(${i}, 'v${i}')`).join(', ')}`;
    const started = performance.now();
    const shaped = shapeOf(rows, 'mysql');
    expect(performance.now() - started).toBeLessThan(500);
    expect(shaped.shape.startsWith('INSERT INTO t (a, b) VALUES (?, ?), (?, ?)')).toBe(true);
  });

  it('still folds IN lists after comments, and only after the word IN', () => {
    expect(shapeOf('SELECT * FROM t WHERE a IN /* c */ (1, 2) AND b in\n(3)', 'mysql').shape).toBe(
      'SELECT * FROM t WHERE a IN (?...) AND b in (?...)',
    );
    expect(shapeOf('SELECT min(1, 2), `in`(3, 4), join (5, 6)', 'mysql').shape).toBe('SELECT min(?, ?), `in`(?, ?), join (?, ?)');
  });
});

describe('the token check on the parser', () => {
  const names = (sql: string) => namedTables(statementsOf(sql, true)[0]!.tokens).map((q) => (q.db === null ? q.name : `${q.db}.${q.name}`));

  it("names what follows a query's FROM or a JOIN, not EXTRACT's or TRIM's FROM", () => {
    expect(names('SELECT EXTRACT(YEAR FROM d), TRIM(LEADING x FROM y) FROM t JOIN db.u ON 1 STRAIGHT_JOIN v')).toEqual(['t', 'db.u', 'v']);
    expect(names('SELECT * FROM a WHERE x IN (SELECT y FROM b) AND z = (SELECT SUBSTRING(s FROM 2) FROM c)')).toEqual(['a', 'b', 'c']);
    expect(names('SELECT 1 FROM DUAL JOIN LATERAL (SELECT 1) x JOIN JSON_TABLE(?) j')).toEqual([]);
    // DELETE FROM a USING t1 AS a: `a` is a target, maybe an alias.
    expect(names('DELETE FROM a USING t1 AS a JOIN t2 USING (id)')).toEqual(['t2']);
    expect(names('DELETE FROM t WHERE id IN (SELECT id FROM u JOIN v USING (id))')).toEqual(['t', 'u', 'v']);
  });
});

describe('the tree walk', () => {
  it("counts a table node-sql-parser lists that the walk did not see, but never a CTE's name", () => {
    const f = newFacts();
    const ast = { type: 'select', with: [{ name: { value: 'c' }, stmt: { ast: { type: 'select' } } }], odd: { hidden: 'x' } };
    walkStatement(ast, f, ['select::null::c', 'select::db::Hidden', 'update::null::w']);
    expect([...f.reads]).toEqual(['db.hidden']);
    expect([...f.writes]).toEqual(['w']);
  });
});
