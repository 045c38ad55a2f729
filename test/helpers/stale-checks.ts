// Helpers for the wrong-row tests (functions-and-operators, session-leaks, write-side-effects, invalidation-coverage):
// a registry of clients closed in afterAll, and the two assertions every
// such test makes: "this read is answered from cache now" and "after that,
// the proxy answers exactly what the database answers".

import type pg from 'pg';
import { expect } from 'vitest';
import { connectClient, directUrl, rawTypes } from './db.js';
import { warm } from './compare.js';
import type { TestProxy } from './proxy.js';

export class Clients {
  private readonly all: pg.Client[] = [];

  async open(url: string, extra: Omit<pg.ClientConfig, 'connectionString'> = {}): Promise<pg.Client> {
    const c = await connectClient(url, extra);
    this.all.push(c);
    return c;
  }

  /** A client straight to the database, with the same startup options. */
  direct(extra: Omit<pg.ClientConfig, 'connectionString'> = {}, db?: string, user?: string): Promise<pg.Client> {
    return this.open(directUrl(db, user), extra);
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((c) => c.end().catch(() => {})));
  }
}

/** Column names and rows as the server sent them (text, no parsing). */
export async function rows(c: pg.ClientBase, sql: string, values?: unknown[]): Promise<{ fields: string[]; rows: unknown[] }> {
  const r = await c.query({ text: sql, values, types: rawTypes });
  return { fields: r.fields.map((f) => f.name), rows: r.rows };
}

/**
 * Read through the proxy until it is a counted hit and return that answer.
 * When the proxy declines to cache the statement at all (a bypass every
 * time), that is a correct answer too: the read is returned as it came, and
 * the test's comparison with the database still decides.
 */
export async function cached(proxy: TestProxy, c: pg.ClientBase, sql: string, values?: unknown[]): Promise<{ fields: string[]; rows: unknown[] }> {
  try {
    return await warm(proxy, () => rows(c, sql, values));
  } catch (err) {
    if (!/never answered from cache/.test(String(err))) throw err;
    console.info(`[stale-checks] not cached (the proxy bypasses it): ${sql}`);
    return rows(c, sql, values);
  }
}

/** The proxy's answer equals the database's answer for the same statement. */
export async function expectSameAsDatabase(
  viaProxy: pg.ClientBase,
  viaDatabase: pg.ClientBase,
  sql: string,
  message: string,
  values?: unknown[],
): Promise<void> {
  const truth = await rows(viaDatabase, sql, values);
  const got = await rows(viaProxy, sql, values);
  expect(got, `${message}\n  SQL: ${sql}\n  database: ${JSON.stringify(truth.rows)}\n  proxy:    ${JSON.stringify(got.rows)}`).toEqual(truth);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
