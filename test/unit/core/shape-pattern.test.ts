// shapePattern: the matcher of POST /invalidate {"pattern"}, and shapeTag,
// the pseudo-table each shape's results are versioned under.

import { describe, expect, it } from 'vitest';
import { shapePattern, shapeTag } from '../../../src/core/query-cache.js';

describe('shapePattern', () => {
  const shape = 'SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?';

  it.each([
    ['SELECT * FROM articles%', true],
    ['%FROM articles%', true],
    ['%LIMIT ?', true],
    ['SELECT%articles%status%LIMIT ?', true],
    [shape, true],
    ['%', true],
    ['select * from articles%', false], // letter case is the statement's own
    ['SELECT * FROM article', false], // anchored: no % at the end
    ['SELECT * FROM authors%', false],
    ['%LIMIT ?%?', false],
    ['SELECT   *\n FROM  articles %', true], // whitespace runs match one space
    ['  SELECT * FROM articles%  ', true], // trimmed
  ])('%j → %s', (pattern, expected) => {
    expect(shapePattern(pattern)(shape)).toBe(expected);
  });

  it('\\% is a percent sign, \\\\ a backslash; parts may not overlap', () => {
    expect(shapePattern('SELECT a \\% ? FROM t')('SELECT a % ? FROM t')).toBe(true);
    expect(shapePattern('SELECT a \\% ? FROM t')('SELECT a x ? FROM t')).toBe(false);
    expect(shapePattern('a\\\\b')('a\\b')).toBe(true);
    expect(shapePattern('ab%ba')('aba')).toBe(false);
    expect(shapePattern('ab%ba')('abba')).toBe(true);
    expect(shapePattern('a%b%c')('a-c-b')).toBe(false);
  });

  it('regular-expression characters are literal', () => {
    expect(shapePattern('SELECT (a+b) FROM t WHERE x IN (?...)')('SELECT (a+b) FROM t WHERE x IN (?...)')).toBe(true);
    expect(shapePattern('SELECT .* FROM t')('SELECT a FROM t')).toBe(false);
  });

  it('stays linear on a long shape and a pattern of many % (no backtracking blow-up)', () => {
    const long = `SELECT ${'a, '.repeat(20_000)}b FROM t`;
    const pattern = `${'%a'.repeat(200)}%z`;
    // A backtracking RegExp takes minutes here, past the test's timeout.
    expect(shapePattern(pattern)(long)).toBe(false);
    expect(shapePattern(`${'%a'.repeat(200)}%b FROM t`)(long)).toBe(true);
  });
});

describe('shapeTag', () => {
  it('is stable per shape, distinct between shapes, and never holds a NUL (the Redis store separates tables with it)', () => {
    expect(shapeTag('SELECT 1')).toBe(shapeTag('SELECT 1'));
    expect(shapeTag('SELECT 1')).not.toBe(shapeTag('SELECT 2'));
    expect(shapeTag('SELECT 1')).not.toContain('\0');
    expect(shapeTag('SELECT 1').startsWith('\u0001s:')).toBe(true);
  });
});
