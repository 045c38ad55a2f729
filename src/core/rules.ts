// Rules: the YAML `rules:` list (first match wins) plus comment hints →
// whether to cache and for how long. Called for every cacheable statement,
// hits included, so matching is a Set lookup per table read, and the answers
// without a hint are built once (frozen) instead of per call.

import type { RuleConfig } from '../config/schema.js';
import type { Hints } from './types.js';

export interface RuleMatch {
  cache: boolean;
  /** 0 = until invalidated. Meaningless when cache is false (0). */
  ttlMs: number;
  /** `rules[i]` (i = position in the file), `hint`, or null for cache.default_ttl. */
  rule: string | null;
  /** Set only when cache is false: who said so. */
  reason?: 'rule' | 'hint';
}

interface CompiledRule {
  label: string;
  tables: ReadonlySet<string> | null;
  fingerprint: string | null;
  /** The answer when this rule matches and no hint changes it (frozen, shared). */
  answer: RuleMatch;
}

export class Rules {
  private readonly rules: CompiledRule[];
  readonly defaultTtlMs: number;
  /** The answer for "no rule, no hint" (frozen, shared). */
  private readonly byDefault: RuleMatch;

  constructor(rules: RuleConfig[], defaultTtlMs: number) {
    this.defaultTtlMs = defaultTtlMs;
    this.rules = rules.map((r, i) => {
      const label = `rules[${Number.isInteger(r.index) ? r.index : i}]`;
      const answer: RuleMatch = r.cache
        ? { cache: true, ttlMs: r.ttlMs ?? defaultTtlMs, rule: label }
        : { cache: false, ttlMs: 0, rule: label, reason: 'rule' };
      return {
        label,
        tables: r.tables === null ? null : new Set(r.tables),
        fingerprint: r.fingerprint,
        answer: Object.freeze(answer),
      };
    });
    this.byDefault = Object.freeze({ cache: true, ttlMs: defaultTtlMs, rule: null });
  }

  match(shape: string, reads: readonly string[], hints: Hints): RuleMatch {
    if (hints.nocache === true) return { cache: false, ttlMs: 0, rule: 'hint', reason: 'hint' };
    const rule = this.first(shape, reads);
    if (rule !== undefined && !rule.answer.cache) return rule.answer;
    // A hint TTL that is not a duration (negative, NaN) is ignored rather than trusted.
    const ttl = hints.ttlMs;
    if (ttl !== undefined && Number.isFinite(ttl) && ttl >= 0) return { cache: true, ttlMs: ttl, rule: 'hint' };
    return rule === undefined ? this.byDefault : rule.answer;
  }

  private first(shape: string, reads: readonly string[]): CompiledRule | undefined {
    for (const r of this.rules) {
      // A rule with neither condition matches nothing (validation should refuse it).
      if (r.tables === null && r.fingerprint === null) continue;
      if (r.fingerprint !== null && r.fingerprint !== shape) continue;
      if (r.tables !== null && !readsAny(r.tables, reads)) continue;
      return r;
    }
    return undefined;
  }
}

/** A rule naming `users` matches a MySQL read of `app.users` too; `app.users` only that one. */
function readsAny(tables: ReadonlySet<string>, reads: readonly string[]): boolean {
  for (const t of reads) {
    if (tables.has(t)) return true;
    const dot = t.indexOf('.');
    if (dot >= 0 && tables.has(t.slice(dot + 1))) return true;
  }
  return false;
}
