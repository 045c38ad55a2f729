// Classifier: shape every text, parse once per shape, never let the memo
// carry one text's literal-dependent answer over to another.

import { describe, expect, it, vi } from 'vitest';
import type { Classification } from '../../../src/core/types.js';
import { Classifier } from '../../../src/sql/classifier.js';
import * as parser from '../../../src/sql/postgres-parser.js';
import { shapeOf } from '../../../src/sql/shape.js';

vi.mock('../../../src/sql/postgres-parser.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../src/sql/postgres-parser.js')>();
  return { ...actual, classifyPostgres: vi.fn(actual.classifyPostgres) };
});

const parses = () => vi.mocked(parser.classifyPostgres).mock.calls.length;

describe('Classifier', () => {
  it('a second text of the same shape is answered from the memo without parsing again', async () => {
    const c = await Classifier.load();
    const before = parses();
    const a = c.analyse('postgres', 'SELECT * FROM users WHERE id = 1');
    const b = c.analyse('postgres', 'SELECT * FROM users WHERE id = 2');
    const d = c.analyse('postgres', 'SELECT  *  FROM users /* other comment */ WHERE id = 3');
    expect(parses() - before).toBe(1);
    expect(b.classification).toBe(a.classification);
    expect(d.classification).toBe(a.classification);
    expect(a.classification.reads).toEqual(['users']);
    expect(c.memoStats()).toEqual({ size: 1, hits: 2, misses: 1 });
  });

  it('the memo parses the original text, not the shape, and shapes/keys every call', async () => {
    const c = await Classifier.load();
    const r = c.analyse('postgres', "SELECT * FROM t WHERE s = 'x' AND id IN (1, 2)");
    expect(vi.mocked(parser.classifyPostgres).mock.lastCall?.[0]).toBe("SELECT * FROM t WHERE s = 'x' AND id IN (1, 2)");
    expect(r.shaped.shape).toBe('SELECT * FROM t WHERE s = ? AND id IN (?...)');
    expect(r.shaped.keyText).toBe("SELECT * FROM t WHERE s = 'x' AND id IN (1, 2)");
    expect(c.analyse('postgres', 'SELECT * FROM t WHERE s = \'y\' AND id IN (3)').shaped.keyText).toBe(
      "SELECT * FROM t WHERE s = 'y' AND id IN (3)",
    );
  });

  it("a clock literal makes that text uncacheable without poisoning its shape's memo entry", async () => {
    const c = await Classifier.load();
    const fresh = c.analyse('postgres', "SELECT * FROM t WHERE d < '2020-01-01'");
    const clock = c.analyse('postgres', "SELECT * FROM t WHERE d < 'now'");
    const again = c.analyse('postgres', "SELECT * FROM t WHERE d < '2021-01-01'");
    expect(fresh.classification.cacheable).toBe(true);
    expect(clock.shaped.volatileLiteral).toBe(true);
    expect(clock.classification.cacheable).toBe(false);
    expect(clock.classification.reason).toBe('volatile-literal');
    expect(clock.classification.reads).toEqual(['t']);
    expect(again.classification.cacheable).toBe(true);
    expect(again.classification).toBe(fresh.classification);
  });

  it('a clock literal in a statement that is not cacheable anyway keeps its own reason', async () => {
    const c = await Classifier.load();
    const r = c.analyse('postgres', "INSERT INTO t VALUES ('now')");
    expect(r.classification.cacheable).toBe(false);
    expect(r.classification.reason).toBe('not-a-read');
    expect(r.classification.writes).toEqual(['t']);
  });

  it('the memo holds at most memoSize shapes, evicting the least recently used', async () => {
    const c = await Classifier.load({ memoSize: 2 });
    c.analyse('postgres', 'SELECT * FROM a');
    c.analyse('postgres', 'SELECT * FROM b');
    c.analyse('postgres', 'SELECT * FROM a'); // a is now the most recent
    c.analyse('postgres', 'SELECT * FROM c'); // evicts b
    expect(c.memoStats().size).toBe(2);
    const before = parses();
    c.analyse('postgres', 'SELECT * FROM a');
    expect(parses() - before).toBe(0);
    c.analyse('postgres', 'SELECT * FROM b');
    expect(parses() - before).toBe(1);
    expect(c.memoStats().size).toBe(2);
  });

  it('SET values come from each text, never from another text of the same shape', async () => {
    const c = await Classifier.load();
    const utc = c.analyse('postgres', "SET TimeZone = 'UTC'").classification;
    const tokyo = c.analyse('postgres', "SET TimeZone = 'Asia/Tokyo'").classification;
    expect(utc.sessionEffects).toEqual([{ type: 'set', name: 'timezone', value: 'UTC', local: false }]);
    expect(tokyo.sessionEffects).toEqual([{ type: 'set', name: 'timezone', value: 'Asia/Tokyo', local: false }]);
  });

  it('with backslash escapes (standard_conforming_strings off) a write hidden behind \\\' is still seen', async () => {
    const c = await Classifier.load();
    const text = "SELECT '\\'', 1 FROM t; DELETE FROM u; --'";
    const off = c.analyse('postgres', text, { backslashEscapes: true }).classification;
    expect(off.writes).toEqual(['u']);
    expect(off.reason).toBe('multi-statement');
    // With standard strings the server sees one string literal: nothing is written.
    const on = c.analyse('postgres', text).classification;
    expect(on.writes).toEqual([]);
    expect(on.statementCount).toBe(1);
  });

  it('returned classifications are frozen, so a caller cannot corrupt the memo', async () => {
    const c = await Classifier.load();
    const r = c.analyse('postgres', 'SELECT * FROM t');
    expect(Object.isFrozen(r.classification)).toBe(true);
    expect(Object.isFrozen(r.classification.reads)).toBe(true);
    expect(() => (r.classification.reads as string[]).push('x')).toThrow();
  });

  it('a text the parser rejects is not memoised: a valid text of the same shape gets its own parse', async () => {
    const c = await Classifier.load();
    const bad = c.analyse('postgres', 'SELECT interval 1, audit_write() FROM t').classification;
    const good = c.analyse('postgres', "SELECT interval '1 day', audit_write() FROM t").classification;
    expect(bad.reason).toBe('parse-error');
    expect(good.cacheable).toBe(true);
    expect(good.functions).toEqual(['audit_write']);
    expect(c.memoStats().size).toBe(1);
  });

  it('mysql texts are classified too, in a memo of their own (details in mysql-classifier.test.ts)', async () => {
    const c = await Classifier.load();
    c.analyse('postgres', 'SELECT * FROM t WHERE id = 1');
    const my = c.analyse('mysql', 'SELECT * FROM t WHERE id = 1').classification;
    expect(my.cacheable).toBe(true);
    expect(my.reads).toEqual(['t']);
    expect(c.memoStats()).toEqual({ size: 2, hits: 0, misses: 2 });
  });
});

// The memo is keyed by shape, so every text of one shape must classify the
// same (SET values excepted: those are never memoised). Literal values and
// IN-list lengths vary; the parse of each text is compared.
const TEMPLATES = [
  'SELECT * FROM t WHERE a = % AND b IN (%L)',
  'EXPLAIN (ANALYZE %) DELETE FROM t WHERE id = %',
  'SELECT set_config(%, %, false) FROM t',
  'INSERT INTO t VALUES (%, %) ON CONFLICT DO NOTHING',
  'SELECT * FROM t TABLESAMPLE BERNOULLI (%) REPEATABLE (%)',
  'SELECT * FROM t ORDER BY a LIMIT % OFFSET %',
  'COPY t FROM %',
  'SELECT nextval(%)',
  "PREPARE TRANSACTION %",
  'COMMENT ON TABLE t IS %',
  'SELECT * FROM t WHERE d > %::date',
  'CREATE TABLE x (a int DEFAULT %)',
  'VALUES (%), (%)',
  'SELECT * FROM t WHERE a = % FOR UPDATE',
  'SELECT interval % FROM t WHERE x NOT IN (%L)',
  'SET statement_timeout = %',
  'UPDATE t SET a = % WHERE b IN (%L) RETURNING %',
  'SELECT CASE WHEN a > % THEN % ELSE % END FROM t',
  'SELECT * FROM t WHERE a = % %',
];
const LITERALS = ['1', '42.5', "'x'", "'a b'", "E'\\n'", '$$q$$', '1e3', "'2020-01-01'", "B'101'", "X'ff'", "'it''s'"];

function comparable(c: Classification): unknown {
  const effects = c.sessionEffects.map((e) => (e.type === 'set' ? { ...e, value: '<value>' } : e));
  return { ...c, sessionEffects: effects };
}

describe('shape as memo key', () => {
  it('every text of one shape that parses gets the same classification, for 19 templates × random literals', async () => {
    await Classifier.load();
    let seed = 11;
    const pick = <T,>(xs: readonly T[]): T => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return xs[seed % xs.length]!;
    };
    const byShape = new Map<string, { sql: string; c: unknown }>();
    let compared = 0;
    for (let i = 0; i < 600; i++) {
      const sql = pick(TEMPLATES)
        .replace(/%L/g, () => Array.from({ length: 1 + (i % 5) }, () => pick(LITERALS)).join(', '))
        .replace(/%/g, () => pick(LITERALS));
      const shape = shapeOf(sql, 'postgres').shape;
      const parsed = parser.classifyPostgres(sql);
      // `COPY t FROM 1` is rejected where `COPY t FROM 'f'` is not: never memoised, see below.
      if (parsed.reason === 'parse-error') continue;
      const c = comparable(parsed);
      const first = byShape.get(shape);
      if (first === undefined) byShape.set(shape, { sql, c });
      else {
        compared++;
        expect(c, `${first.sql}\n${sql}`).toEqual(first.c);
      }
    }
    expect(compared).toBeGreaterThan(400);
  });
});
