// The assertions the MySQL integration tests share: a registry of mysql2
// connections closed in afterAll, "this read is answered from cache now",
// and "after this write, every read equals the database again".

import { expect } from 'vitest';
import { hitsDuring, warm } from './compare.js';
import { connectMysql, directSql, type MyConnection, type MyOptions } from './mysql.js';
import type { TestProxy } from './proxy.js';

export class MyClients {
  private readonly all: MyConnection[] = [];

  /** A mysql2 connection to `port` (the proxy, or MariaDB itself), closed by closeAll. */
  async open(port: number, extra: MyOptions = {}): Promise<MyConnection> {
    const c = await connectMysql(port, extra);
    this.all.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((c) => c.end().catch(() => c.destroy())));
  }
}

/** Rows of a text-protocol query as plain objects (no mysql2 prototypes). */
export async function rowsOf(c: MyConnection, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  const [rows] = await c.query(sql, params);
  return (rows as Record<string, unknown>[]).map((r) => ({ ...r }));
}

/** Rows of a prepared statement (COM_STMT_PREPARE/EXECUTE, binary rows) as plain objects. */
export async function executeRows(c: MyConnection, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const [rows] = await c.execute(sql, params as never[]);
  return (rows as Record<string, unknown>[]).map((r) => ({ ...r }));
}

/** Rows the database itself returns for `sql`. */
export async function truth(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  return ((await directSql(sql, params)) as Record<string, unknown>[]).map((r) => ({ ...r }));
}

/** Read until the proxy answers from its cache (a counted hit) and return that answer. */
export function cachedRows(proxy: TestProxy, c: MyConnection, sql: string): Promise<Record<string, unknown>[]> {
  return warm(proxy, () => rowsOf(c, sql));
}

/**
 * The invalidation assertion: each of `reads` is cached through `readers[0]`
 * (soon a counted hit), then `write` runs through the proxy, and at once every
 * read, through every reader (the writer's own connection and others), equals
 * the database and differs from before.
 *
 * `declaredBypass`: bypass reasons under which the proxy may instead refuse
 * to cache a read (e.g. 'relation-kind' for views): accepted only when the
 * proxy counts that reason for the read, so a silent pass-through still fails.
 */
export async function expectWriteInvalidates(
  proxy: TestProxy,
  readers: MyConnection[],
  reads: string[],
  write: () => Promise<unknown>,
  declaredBypass: string[] = [],
): Promise<void> {
  const before: Record<string, unknown>[][] = [];
  for (const sql of reads) {
    const first = await rowsOf(readers[0]!, sql);
    const r = await hitsDuring(proxy, () => rowsOf(readers[0]!, sql));
    const declared = declaredBypass.filter((reason) => (r.after.bypass_reasons[reason] ?? 0) > (r.before.bypass_reasons[reason] ?? 0));
    if (r.hits === 0 && declared.length > 0) {
      console.info(`[expectWriteInvalidates] not cached, bypass declared (${declared.join(', ')}): ${sql}`);
      expect(r.value).toEqual(first);
    } else {
      const cached = r.hits > 0 ? r.value : await cachedRows(proxy, readers[0]!, sql);
      expect(cached, `the cached answer equals the first: ${sql}`).toEqual(first);
    }
    for (const reader of readers.slice(1)) {
      expect(await rowsOf(reader, sql), `another connection gets the same rows: ${sql}`).toEqual(first);
    }
    before.push(first);
  }
  await write();
  for (const [i, sql] of reads.entries()) {
    const expected = await truth(sql);
    for (const [k, r] of readers.entries()) {
      const after = await rowsOf(r, sql);
      expect(after, `fresh after the write (reader ${k}): ${sql}`).toEqual(expected);
    }
    expect(expected, `the write changed what ${sql} returns (else this test proves nothing)`).not.toEqual(before[i]);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
