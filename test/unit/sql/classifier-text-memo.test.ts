// The classifier's exact-text memo: a text seen before is answered without
// shaping it again, and never with another text's (or escape mode's) answer.

import { describe, expect, it, vi } from 'vitest';
import { Classifier } from '../../../src/sql/classifier.js';
import * as parser from '../../../src/sql/postgres-parser.js';

vi.mock('../../../src/sql/postgres-parser.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../src/sql/postgres-parser.js')>();
  return { ...actual, classifyPostgres: vi.fn(actual.classifyPostgres) };
});

const parses = () => vi.mocked(parser.classifyPostgres).mock.calls.length;

describe('Classifier exact-text memo', () => {
  it('the same text gives the same frozen analysis, shape memo counters as before', async () => {
    const c = await Classifier.load();
    const a = c.analyse('postgres', 'SELECT * FROM t WHERE id = $1');
    const b = c.analyse('postgres', 'SELECT * FROM t WHERE id = $1');
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.shaped)).toBe(true);
    expect(Object.isFrozen(a.shaped.hints)).toBe(true);
    expect(() => ((a.shaped as { keyText: string }).keyText = 'x')).toThrow();
    expect(c.memoStats()).toEqual({ size: 1, hits: 1, misses: 1 });
  });

  it('texts of one shape keep their own key text and hints', async () => {
    const c = await Classifier.load();
    const one = c.analyse('postgres', 'SELECT * FROM t WHERE id = 1');
    const two = c.analyse('postgres', '/* sqlcached:ttl=5s */ SELECT * FROM t WHERE id = 2');
    expect(c.analyse('postgres', 'SELECT * FROM t WHERE id = 1').shaped.keyText).toBe('SELECT * FROM t WHERE id = 1');
    expect(c.analyse('postgres', '/* sqlcached:ttl=5s */ SELECT * FROM t WHERE id = 2')).toBe(two);
    expect(two.shaped.hints.ttlMs).toBe(5000);
    expect(one.shaped.hints.ttlMs).toBeUndefined();
  });

  it("a clock literal's text stays uncacheable when answered from the memo", async () => {
    const c = await Classifier.load();
    const first = c.analyse('postgres', "SELECT * FROM t WHERE d < 'now'");
    const again = c.analyse('postgres', "SELECT * FROM t WHERE d < 'now'");
    expect(again.classification.cacheable).toBe(false);
    expect(again.classification.reason).toBe('volatile-literal');
    expect(again).toBe(first);
    expect(c.analyse('postgres', "SELECT * FROM t WHERE d < '2020-01-01'").classification.cacheable).toBe(true);
  });

  it('the escape mode is part of what the memo is keyed by', async () => {
    const c = await Classifier.load();
    const text = "SELECT '\\'', 1 FROM t; DELETE FROM u; --'";
    expect(c.analyse('postgres', text).classification.writes).toEqual([]);
    expect(c.analyse('postgres', text, { backslashEscapes: true }).classification.writes).toEqual(['u']);
    expect(c.analyse('postgres', text).classification.writes).toEqual([]);
  });

  it('SET values and rejected texts are not remembered: each call parses', async () => {
    const c = await Classifier.load();
    const before = parses();
    c.analyse('postgres', "SET TimeZone = 'UTC'");
    c.analyse('postgres', "SET TimeZone = 'UTC'");
    c.analyse('postgres', 'SELECT interval 1 FROM t');
    c.analyse('postgres', 'SELECT interval 1 FROM t');
    expect(parses() - before).toBe(4);
  });

  it('a text whose shape left the shape memo is classified again (the bound still holds)', async () => {
    const c = await Classifier.load({ memoSize: 1 });
    c.analyse('postgres', 'SELECT * FROM a');
    c.analyse('postgres', 'SELECT * FROM b'); // evicts a's shape
    const before = parses();
    c.analyse('postgres', 'SELECT * FROM a');
    expect(parses() - before).toBe(1);
    expect(c.memoStats().size).toBe(1);
  });
});
