// Comment hints: `/* sqlcached:ttl=30s */`, `/* sqlcached:nocache */`,
// `-- sqlcached:ttl=5m,nocache`. Read by the scanner from comment bodies;
// anything it does not understand is ignored, never an error.

import type { Hints } from '../core/types.js';

const PREFIX = 'sqlcached:';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** True when a comment body (between the delimiters) may hold a hint: a
 * cheap test the scanner runs on every comment. */
export function mayHoldHint(sql: string, from: number, to: number): boolean {
  let i = from;
  while (i < to && sql.charCodeAt(i) <= 32) i++;
  return to - i >= PREFIX.length && sql.startsWith(PREFIX, i);
}

/** Merges the hints found in `body` into `into`. */
export function readHints(body: string, into: Hints): void {
  const text = body.trim();
  if (!text.startsWith(PREFIX)) return;
  for (const raw of text.slice(PREFIX.length).split(',')) {
    const item = raw.trim().toLowerCase();
    if (item === 'nocache') {
      into.nocache = true;
    } else if (item.startsWith('ttl=')) {
      const ms = parseDuration(item.slice(4));
      if (ms !== undefined) into.ttlMs = ms;
    }
  }
}

/** "30s", "1.5h", "250ms" → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (m === null) return undefined;
  const unit = UNIT_MS[m[2] ?? ''];
  if (unit === undefined) return undefined;
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isFinite(ms) ? ms : undefined;
}
