// GET /explain's refusals, without a socket: a missing or empty statement, an
// unknown dialect and a statement over 64 KiB are 400s with a JSON reason;
// a proxy without explain answers 501.

import { describe, expect, it } from 'vitest';
import { explainRoute, MAX_EXPLAIN_SQL_BYTES } from '../../../src/admin/explain-route.js';
import type { AdminDeps, AdminResponse } from '../../../src/admin/route.js';

const calls: Array<[string, string | undefined]> = [];
const deps: AdminDeps = {
  healthy: () => true,
  stats: () => ({}),
  invalidate: async () => ({ invalidated: [] }),
  explain: (sql, dialect) => {
    calls.push([sql, dialect]);
    return { sql, dialect: dialect ?? 'the proxy default' };
  },
};

function get(query: Record<string, string>, d: AdminDeps = deps): AdminResponse {
  const r = explainRoute.handle({ method: 'GET', path: '/explain', query: new URLSearchParams(query), headers: {}, body: Buffer.alloc(0) }, d);
  if (r instanceof Promise) throw new Error('explainRoute answers synchronously');
  return r;
}

describe('GET /explain', () => {
  it('passes the statement and dialect on; without one, the proxy picks its own (as the CLI does)', () => {
    expect(get({ sql: 'SELECT 1' })).toEqual({ status: 200, json: { sql: 'SELECT 1', dialect: 'the proxy default' } });
    expect(get({ sql: 'SELECT 1', dialect: 'mysql' })).toEqual({ status: 200, json: { sql: 'SELECT 1', dialect: 'mysql' } });
  });

  it.each([
    [{}, 'missing sql'],
    [{ sql: '' }, 'missing sql'],
    [{ sql: '  ' }, 'missing sql'],
    [{ sql: 'SELECT 1', dialect: 'oracle' }, 'bad dialect'],
    [{ sql: 'SELECT 1', dialect: '' }, 'bad dialect'],
  ])('refuses %j with 400 "%s"', (query, error) => {
    calls.length = 0;
    const r = get(query);
    expect(r.status).toBe(400);
    expect(r).toMatchObject({ json: { error } });
    expect(calls).toEqual([]);
  });

  it('refuses a statement over 64 KiB (counted in UTF-8 bytes) and accepts one at the limit', () => {
    const at = `SELECT '${'x'.repeat(MAX_EXPLAIN_SQL_BYTES - 9)}'`;
    expect(Buffer.byteLength(at)).toBe(MAX_EXPLAIN_SQL_BYTES);
    expect(get({ sql: at }).status).toBe(200);
    const over = `SELECT '${'é'.repeat(MAX_EXPLAIN_SQL_BYTES / 2)}'`;
    expect(get({ sql: over })).toEqual({
      status: 400,
      json: { error: 'sql too long', limit_bytes: MAX_EXPLAIN_SQL_BYTES, got_bytes: MAX_EXPLAIN_SQL_BYTES + 9 },
    });
  });

  it('answers 501 when the proxy lends no explain', () => {
    const { explain: _, ...without } = deps;
    expect(get({ sql: 'SELECT 1' }, without).status).toBe(501);
  });
});
