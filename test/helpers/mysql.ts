// Direct access to the test MariaDB, bypassing the proxy (setup, teardown,
// the "truth" to compare proxy answers with, writes behind the proxy's back),
// mysql2 connections to any port, and the real `mariadb` command-line client.

import { spawn } from 'node:child_process';
import mysql from 'mysql2/promise';
import type { FieldPacket, QueryError } from 'mysql2';
import { expect } from 'vitest';

export const MY_HOST = process.env['SQLCACHED_TEST_MYSQL_HOST'] ?? '127.0.0.1';
export const MY_PORT = Number(process.env['SQLCACHED_TEST_MYSQL_PORT'] ?? 3306);
export const MY_DATABASE = 'test';
export const MY_USER = 'root';
/** Created by scripts/mariadb-test-users.sh. */
export const MY_DB1 = 'sqlcached_db1';
export const MY_DB2 = 'sqlcached_db2';
export const PW_USER = 'sqlcached_pw'; // mysql_native_password, all on test, db1, db2
export const RO_USER = 'sqlcached_ro'; // SELECT on test.* only
export const ED_USER = 'sqlcached_ed'; // ed25519 (auth switch), when the plugin loads
export const TEST_PASSWORD = 'secret';

export type MyConnection = mysql.Connection;
export type MyOptions = mysql.ConnectionOptions;

/**
 * Options that hand back values as the server spelled them, so two answers
 * compare exactly: dates, DECIMAL, BIGINT and JSON as strings.
 */
export const RAW_VALUES: MyOptions = {
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  jsonStrings: true,
  decimalNumbers: false,
};

/** mysql2 options for host:port (the database itself by default), root on `test`. */
export function myOptions(port: number = MY_PORT, extra: MyOptions = {}): MyOptions {
  return { host: '127.0.0.1', port, user: MY_USER, password: '', database: MY_DATABASE, connectTimeout: 10_000, ...extra };
}

/**
 * A connected mysql2/promise connection. Its 'error' event is swallowed: a
 * test that kills a connection asserts on the rejection, not on an uncaught
 * event that would take the worker down.
 */
export async function connectMysql(port: number = MY_PORT, extra: MyOptions = {}): Promise<MyConnection> {
  const c = await mysql.createConnection(myOptions(port, extra));
  c.on('error', () => {});
  return c;
}

let sharedPool: mysql.Pool | null = null;

/** The per-file pool straight to MariaDB (root, database `test`, several statements allowed). */
export function myDirect(): mysql.Pool {
  if (sharedPool === null) {
    sharedPool = mysql.createPool({ ...myOptions(MY_PORT), connectionLimit: 4, multipleStatements: true });
    sharedPool.on('connection', (c) => c.on('error', () => {}));
  }
  return sharedPool;
}

/** Run one statement (or several, `;`-separated) directly against MariaDB; resolves to the rows/result. */
export async function directSql<T = any>(sql: string, params?: unknown[]): Promise<T> {
  const [r] = await myDirect().query(sql, params);
  return r as T;
}

/** Close the per-file direct pool (afterAll). */
export async function endMyDirect(): Promise<void> {
  const pool = sharedPool;
  sharedPool = null;
  if (pool !== null) await pool.end();
}

/** Drop the given tables (`name` or `db.name`) if they exist. */
export async function dropMyTables(...names: string[]): Promise<void> {
  if (names.length > 0) await directSql(`DROP TABLE IF EXISTS ${names.join(', ')}`);
}

/** Connections the database has open right now with this id (0 or 1). */
export async function processExists(id: number): Promise<boolean> {
  const rows = await directSql<{ n: number }[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
  return Number(rows[0]?.n) === 1;
}

/**
 * The id of the last query the database ran on connection `id` (MariaDB's
 * PROCESSLIST.QUERY_ID). It moves only when that connection sends the
 * server a statement: the sound way to tell that a cache hit never reached it.
 */
export async function lastQueryId(id: number): Promise<number> {
  const rows = await directSql<{ q: number }[]>('SELECT QUERY_ID AS q FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
  if (rows[0] === undefined) throw new Error(`lastQueryId: no connection ${id}`);
  return Number(rows[0].q);
}

/** A mysql2 column definition as a client sees it: every field of the ColumnDefinition packet. */
export interface FieldShape {
  catalog: string;
  db: string | undefined;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  characterSet: number | undefined;
  columnLength: number | undefined;
  columnType: number | undefined;
  flags: number | string[];
  decimals: number;
}

export function fieldShape(fields: FieldPacket[] | undefined): FieldShape[] {
  return (fields ?? []).map((f) => ({
    catalog: f.catalog,
    db: f.db ?? f.schema,
    table: f.table,
    orgTable: f.orgTable,
    name: f.name,
    orgName: f.orgName,
    characterSet: f.characterSet,
    columnLength: f.columnLength,
    columnType: f.columnType ?? f.type,
    flags: f.flags,
    decimals: f.decimals,
  }));
}

/** What a client sees of a query answer: rows (or OK header) and column metadata, result set by result set. */
export interface AnswerShape {
  result: unknown;
  fields: FieldShape[] | FieldShape[][];
}

/** `query` or `execute` answer → plain object vitest can diff (rows copied off their prototypes). */
export function answerShape([result, fields]: [unknown, FieldPacket[] | FieldPacket[][] | undefined]): AnswerShape {
  const plain = (r: unknown): unknown =>
    Array.isArray(r) ? r.map((x) => (typeof x === 'object' && x !== null && !Buffer.isBuffer(x) ? plain(x) : x)) : typeof r === 'object' && r !== null && !Buffer.isBuffer(r) ? { ...r } : r;
  const multi = Array.isArray(fields) && fields.length > 0 && Array.isArray(fields[0]);
  return {
    result: plain(result),
    fields: multi ? (fields as (FieldPacket[] | undefined)[]).map((f) => fieldShape(f)) : fieldShape(fields as FieldPacket[] | undefined),
  };
}

/** The parts of an ERR packet a client sees (mysql2 QueryError). */
export function myErrorShape(err: unknown): { errno?: number; code?: string; sqlState?: string; sqlMessage?: string } {
  if (typeof err !== 'object' || err === null) return { sqlMessage: `not an error: ${String(err)}` };
  const e = err as Partial<QueryError> & { sqlMessage?: string };
  return { errno: e.errno, code: e.code, sqlState: e.sqlState, sqlMessage: e.sqlMessage };
}

/** The rejection of `p` (fails the test if it resolves). */
export async function myRejection(p: Promise<unknown>): Promise<QueryError & { sqlMessage?: string }> {
  try {
    await p;
  } catch (err) {
    return err as QueryError & { sqlMessage?: string };
  }
  return expect.fail('expected the statement to fail, but it succeeded');
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  user?: string;
  password?: string;
  /** Database to connect to; `null` for none. Default `test`. */
  db?: string | null;
  timeoutMs?: number;
}

/**
 * `mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P PORT -u user [-pPW] [db] ARGS`, with `sql`
 * fed on stdin (batch mode: tab-separated, `--skip-column-names` if asked in ARGS).
 * Always asynchronous: the proxy under test runs in this very process, so a
 * spawnSync would block the event loop that has to answer the client.
 * Resolves with the exit code and both streams; never rejects on a SQL error.
 */
export function mysqlCli(port: number, args: string[], sql: string, opts: CliOptions = {}): Promise<CliResult> {
  const bin = process.env['SQLCACHED_TEST_MYSQL_CLI'] ?? 'mariadb';
  const db = opts.db === undefined ? MY_DATABASE : opts.db;
  const full = [
    '--no-defaults', // no ~/.my.cnf, no [client] socket or user: only what is written here
    '--protocol=TCP',
    '-h',
    '127.0.0.1',
    '-P',
    String(port),
    '-u',
    opts.user ?? MY_USER,
    ...(opts.password !== undefined && opts.password !== '' ? [`-p${opts.password}`] : []),
    '--connect-timeout=10',
    ...args,
    ...(db === null ? [] : [db]),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['MYSQL_HOST', 'MYSQL_TCP_PORT', 'MYSQL_PWD', 'MYSQL_UNIX_PORT', 'MARIADB_HOST']) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, full, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the client may exit before reading all of stdin
    child.stdin.end(sql);
  });
}

/** mysqlCli that must succeed; returns stdout without the trailing newline. */
export async function mysqlCliOk(port: number, args: string[], sql: string, opts: CliOptions = {}): Promise<string> {
  const r = await mysqlCli(port, args, sql, opts);
  if (r.code !== 0) throw new Error(`${process.env['SQLCACHED_TEST_MYSQL_CLI'] ?? 'mariadb'} exited ${String(r.code)}: ${r.stderr.trim()}\n${r.stdout}`);
  return r.stdout.replace(/\n$/, '');
}

/** Whether the ed25519 login user exists (scripts/mariadb-test-users.sh creates it when the plugin loads). */
export async function ed25519UserExists(): Promise<boolean> {
  const rows = await directSql<{ n: number }[]>(
    "SELECT COUNT(*) AS n FROM mysql.global_priv WHERE user = ? AND JSON_VALUE(priv, '$.plugin') = 'ed25519'",
    [ED_USER],
  );
  return Number(rows[0]?.n) > 0;
}
