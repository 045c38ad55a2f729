// Rules: first match wins; hints beat rules; labels say who set the TTL.

import { describe, expect, it } from 'vitest';
import type { RuleConfig } from '../../../src/config/schema.js';
import { Rules } from '../../../src/core/rules.js';

function rule(index: number, over: Partial<RuleConfig>): RuleConfig {
  return { index, tables: null, fingerprint: null, cache: true, ttlMs: null, ...over };
}

const SHAPE = 'SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?';

const rules = new Rules(
  [
    rule(0, { tables: ['sessions', 'audit_log'], cache: false }),
    rule(1, { tables: ['countries', 'currencies'], ttlMs: 3_600_000 }),
    rule(2, { fingerprint: SHAPE, ttlMs: 300_000 }),
    rule(3, { tables: ['articles'], ttlMs: 10_000 }),
    rule(4, { tables: ['tags'], fingerprint: 'SELECT * FROM tags', ttlMs: 1 }),
    rule(5, { tables: ['plain'] }),
  ],
  60_000,
);

describe('Rules', () => {
  it('no rule and no hint: cache with the default TTL, rule null', () => {
    expect(rules.match('SELECT * FROM users', ['users'], {})).toEqual({ cache: true, ttlMs: 60_000, rule: null });
  });

  it('a tables rule matches when the statement reads ANY listed table', () => {
    expect(rules.match('q', ['users', 'audit_log'], {})).toEqual({
      cache: false,
      ttlMs: 0,
      rule: 'rules[0]',
      reason: 'rule',
    });
    expect(rules.match('q', ['currencies'], {})).toMatchObject({ cache: true, ttlMs: 3_600_000, rule: 'rules[1]' });
  });

  it('table names compare case-sensitively against the normalised names', () => {
    expect(rules.match('q', ['Sessions'], {})).toMatchObject({ cache: true, rule: null });
  });

  it('the first matching rule wins over a later one', () => {
    expect(rules.match(SHAPE, ['articles'], {})).toMatchObject({ ttlMs: 300_000, rule: 'rules[2]' });
    expect(rules.match('SELECT * FROM articles', ['articles'], {})).toMatchObject({ ttlMs: 10_000, rule: 'rules[3]' });
    expect(rules.match(SHAPE, ['articles', 'sessions'], {})).toMatchObject({ cache: false, rule: 'rules[0]' });
  });

  it('a fingerprint rule needs the exact shape', () => {
    expect(rules.match(`${SHAPE} `, ['other'], {})).toMatchObject({ rule: null });
    expect(rules.match(SHAPE.toLowerCase(), ['other'], {})).toMatchObject({ rule: null });
  });

  it('a rule with tables and fingerprint must match both', () => {
    expect(rules.match('SELECT * FROM tags', ['tags'], {})).toMatchObject({ ttlMs: 1, rule: 'rules[4]' });
    expect(rules.match('SELECT id FROM tags', ['tags'], {})).toMatchObject({ rule: null });
    expect(rules.match('SELECT * FROM tags', ['other'], {})).toMatchObject({ rule: null });
  });

  it('a rule without ttl uses the default TTL', () => {
    expect(rules.match('q', ['plain'], {})).toEqual({ cache: true, ttlMs: 60_000, rule: 'rules[5]' });
  });

  it('a nocache hint wins before any rule', () => {
    const m = rules.match('q', ['countries'], { nocache: true });
    expect(m).toEqual({ cache: false, ttlMs: 0, rule: 'hint', reason: 'hint' });
    expect(rules.match('q', ['sessions'], { nocache: true, ttlMs: 5 }).reason).toBe('hint');
  });

  it('a ttl hint overrides the rule and the default TTL, but not a cache: false rule', () => {
    expect(rules.match('q', ['countries'], { ttlMs: 30_000 })).toEqual({ cache: true, ttlMs: 30_000, rule: 'hint' });
    expect(rules.match('q', ['users'], { ttlMs: 0 })).toEqual({ cache: true, ttlMs: 0, rule: 'hint' });
    expect(rules.match('q', ['sessions'], { ttlMs: 30_000 })).toMatchObject({ cache: false, rule: 'rules[0]' });
  });

  it('a hint TTL that is not a duration is ignored, never read as "forever"', () => {
    expect(rules.match('q', ['countries'], { ttlMs: -1 })).toMatchObject({ ttlMs: 3_600_000, rule: 'rules[1]' });
    expect(rules.match('q', ['users'], { ttlMs: Number.NaN })).toMatchObject({ ttlMs: 60_000, rule: null });
  });

  it('the label is the rule position in the file, not in the list', () => {
    const r = new Rules([rule(7, { tables: ['t'], ttlMs: 5 })], 0);
    expect(r.match('q', ['t'], {}).rule).toBe('rules[7]');
  });

  it('shared answers cannot be changed by a caller', () => {
    const m = rules.match('q', ['users'], {});
    expect(() => {
      (m as { ttlMs: number }).ttlMs = 1;
    }).toThrow(TypeError);
    expect(rules.match('q', ['users'], {}).ttlMs).toBe(60_000);
  });
});
