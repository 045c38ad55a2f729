// What "the same as the database" means in assertions: the parts of a pg
// result or error a client can observe, in a plain object vitest can diff.

import type pg from 'pg';
import { expect } from 'vitest';
import { direct } from './db.js';
import type { Stats, TestProxy } from './proxy.js';

export interface ResultShape {
  command: string | null;
  rowCount: number | null;
  fields: { name: string; dataTypeID: number; tableID: number; columnID: number; format: string }[];
  rows: unknown[];
}

function one(r: pg.QueryResult): ResultShape {
  return {
    command: r.command ?? null,
    rowCount: r.rowCount ?? null,
    fields: (r.fields ?? []).map((f) => ({
      name: f.name,
      dataTypeID: f.dataTypeID,
      tableID: f.tableID,
      columnID: f.columnID,
      format: String(f.format),
    })),
    rows: r.rows,
  };
}

/** A pg result, or the array pg returns for a multi-statement simple query. */
export function resultShape(r: pg.QueryResult | pg.QueryResult[]): ResultShape | ResultShape[] {
  return Array.isArray(r) ? r.map(one) : one(r);
}

const ERROR_FIELDS = [
  'code',
  'severity',
  'message',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'routine',
] as const;

/** The fields of an ErrorResponse (pg DatabaseError) a client can see; `file`/`line` left out on purpose: same server. */
export function errorShape(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { notAnError: String(err) };
  const out: Record<string, unknown> = {};
  for (const f of ERROR_FIELDS) out[f] = (err as Record<string, unknown>)[f];
  return out;
}

/** The rejection of `p` (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the statement to fail, but it succeeded');
}

/** Run `fn` and report how many cache hits the proxy counted meanwhile. */
export async function hitsDuring<T>(proxy: TestProxy, fn: () => Promise<T>): Promise<{ value: T; hits: number; before: Stats; after: Stats }> {
  const before = await proxy.stats();
  const value = await fn();
  const after = await proxy.stats();
  return { value, hits: after.hits - before.hits, before, after };
}

/** What a read returns, as compared before and after a write: column names and rows. */
export interface Seen {
  fields: string[];
  rows: unknown[];
}

export async function readVia(c: pg.ClientBase | pg.Pool, sql: string): Promise<Seen> {
  const r = await c.query(sql);
  return { fields: r.fields.map((f) => f.name), rows: r.rows };
}

/**
 * The core invalidation assertion: each of `reads` is cached through `c`
 * (soon a counted hit), then `write` runs through the proxy, and at once
 * every read equals the database again and differs from before.
 *
 * `declaredBypass`: bypass reasons under which the proxy may instead refuse
 * to cache a read (e.g. 'relation-kind' for views): accepted only when the
 * proxy counts that reason on every read, so a pass-through still fails.
 */
export async function expectWriteInvalidates(
  proxy: TestProxy,
  c: pg.ClientBase,
  reads: string[],
  write: () => Promise<unknown>,
  declaredBypass: string[] = [],
): Promise<void> {
  const before: Seen[] = [];
  for (const sql of reads) {
    const first = await readVia(c, sql);
    const r = await hitsDuring(proxy, () => readVia(c, sql));
    const declared = declaredBypass.filter((reason) => (r.after.bypass_reasons[reason] ?? 0) > (r.before.bypass_reasons[reason] ?? 0));
    if (r.hits === 0 && declared.length > 0) {
      console.info(`[expectWriteInvalidates] not cached, bypass declared (${declared.join(', ')}): ${sql}`);
      expect(r.value).toEqual(first);
    } else {
      const cached = r.hits > 0 ? r.value : await warm(proxy, () => readVia(c, sql));
      expect(cached, `the cached answer equals the first: ${sql}`).toEqual(first);
    }
    before.push(first);
  }
  await write();
  for (const [i, sql] of reads.entries()) {
    const after = await readVia(c, sql);
    expect(after, `fresh after the write: ${sql}`).toEqual(await readVia(direct(), sql));
    expect(after, `the write changed what ${sql} returns`).not.toEqual(before[i]);
  }
}

/**
 * Read until the proxy answers from its cache (a counted hit), at most
 * `tries` times, and return that answer. The first read of a relation the
 * proxy has not looked up in the catalog yet may be passed through
 * ('unknown-relation'), so "the second read is a hit" is not a promise;
 * "a read soon becomes a hit" is.
 */
export async function warm<T>(proxy: TestProxy, read: () => Promise<T>, tries = 4): Promise<T> {
  const seen: string[] = [];
  for (let i = 0; i < tries; i += 1) {
    const r = await hitsDuring(proxy, read);
    if (r.hits > 0) return r.value;
    seen.push(`read ${i + 1}: misses +${r.after.misses - r.before.misses}, bypasses +${r.after.bypasses - r.before.bypasses}`);
  }
  const reasons = JSON.stringify((await proxy.stats()).bypass_reasons);
  return expect.fail(`never answered from cache after ${tries} reads (${seen.join('; ')}; bypass reasons so far ${reasons})`);
}
