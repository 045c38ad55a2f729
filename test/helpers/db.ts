// Direct access to the test database, bypassing the proxy: setup, teardown,
// the "truth" to compare proxy answers with, and writes made behind the
// proxy's back (which only the TTL or POST /invalidate may reveal).

import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_HOST = process.env['SQLCACHED_TEST_PG_HOST'] ?? '127.0.0.1';
export const PG_PORT = Number(process.env['SQLCACHED_TEST_PG_PORT'] ?? 5432);
export const PG_DATABASE = 'test';
export const PG_USER = 'postgres';

/** A connection string for host:port (the database itself by default). */
export function pgUrl(
  port: number = PG_PORT,
  db: string = PG_DATABASE,
  user: string = PG_USER,
  password?: string,
  host: string = PG_HOST,
): string {
  const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@${host}:${port}/${encodeURIComponent(db)}`;
}

export const directUrl = (db?: string, user?: string, password?: string): string => pgUrl(PG_PORT, db, user, password);

let sharedPool: pg.Pool | null = null;

/** The per-file pool to the database itself (each vitest file has its own module graph). */
export function direct(): pg.Pool {
  if (sharedPool === null) {
    sharedPool = new pg.Pool({ connectionString: directUrl(), max: 4 });
    sharedPool.on('error', () => {}); // an idle client killed by a test must not crash the worker
  }
  return sharedPool;
}

/** Run one statement directly against the database. */
export async function directQuery<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  return direct().query<R>(text, values);
}

/** Close the per-file direct pool (afterAll). */
export async function endDirect(): Promise<void> {
  const pool = sharedPool;
  sharedPool = null;
  if (pool !== null) await pool.end();
}

/**
 * A connected pg.Client (to the proxy or the database). Its 'error' event is
 * swallowed: a test that kills a connection asserts on the query's rejection,
 * not on an uncaught event that would take the worker down.
 */
export async function connectClient(connectionString: string, extra: Omit<pg.ClientConfig, 'connectionString'> = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, ...extra });
  client.on('error', () => {});
  await client.connect();
  return client;
}

let counter = 0;

/**
 * A lower-case identifier unique to this process and call, safe unquoted in
 * SQL and short enough for NAMEDATALEN (63): test files run in parallel on
 * one database, so every table, schema and role a file creates is named by it.
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  const suffix = `${process.pid.toString(36)}${counter.toString(36)}${randomBytes(3).toString('hex')}`;
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${suffix}`;
  if (name.length > 63) throw new Error(`uniqueName: '${name}' is longer than 63 characters`);
  return name;
}

/** pg type parsers that hand back exactly what the server sent (text, or a Buffer in binary format). */
export const rawTypes: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: unknown) => value) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

/** Poll `check` until it returns true or `timeoutMs` passes; returns the last outcome. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5_000, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Upstream connections (as the database sees them) whose application_name is `name`. */
export async function backendsNamed(name: string): Promise<number> {
  const r = await directQuery<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND application_name = $2',
    [PG_USER, name],
  );
  return r.rows[0]?.n ?? -1;
}

/** Drop the given tables (and what depends on them) if they exist. */
export async function dropTables(...names: string[]): Promise<void> {
  if (names.length > 0) await directQuery(`DROP TABLE IF EXISTS ${names.join(', ')} CASCADE`);
}
