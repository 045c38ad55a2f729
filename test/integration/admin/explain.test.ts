// GET /explain on a running proxy's admin port, explainStatement() and the
// `sqlcached explain` command (in-process and as the built CLI) give one
// answer: what a user reads in any of them is what the proxy does.

import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainStatement } from '../../../src/core/explain.js';
import type { Dialect } from '../../../src/core/types.js';
import { main } from '../../../src/main.js';
import { Classifier } from '../../../src/sql/classifier.js';
import { startProxy, type ProxyOverrides, type TestProxy } from '../../helpers/proxy.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js'); // built once per run by test/global-setup.ts
const run = promisify(execFile);

const RULES: ProxyOverrides['rules'] = [
  { tables: ['sessions', 'audit_log'], cache: false },
  { tables: ['countries'], ttlMs: 3_600_000 },
  { fingerprint: 'SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?', ttlMs: 300_000 },
];
// The same rules and default TTL as the proxy's config, as a user writes them.
const YAML = `
listeners:
  - name: pg
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:5432
cache:
  default_ttl: 60s
rules:
  - tables: [sessions, audit_log]
    cache: false
  - tables: [countries]
    ttl: 1h
  - fingerprint: "SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?"
    ttl: 5m
admin:
  listen: 127.0.0.1:0
`;

const STATEMENTS: Array<[Dialect, string]> = [
  ['postgres', 'SELECT * FROM users WHERE id = 1'],
  ['postgres', 'SELECT code FROM countries WHERE id = 3'],
  ['postgres', "SELECT * FROM articles WHERE status = 'live' ORDER BY published_at DESC LIMIT 10"],
  ['postgres', 'SELECT * FROM sessions WHERE id = 1'],
  ['postgres', 'SELECT slugify(name) FROM users'],
  ['postgres', "UPDATE users SET name = 'é' WHERE id = 1"],
  ['postgres', 'SELEC 1'],
  ['mysql', 'SELECT * FROM countries'],
  ['mysql', 'SELECT SQL_NO_CACHE * FROM users'],
  ['mysql', 'SELECT LAST_INSERT_ID()'],
  ['mysql', 'CALL p()'],
  ['mysql', '/* sqlcached:ttl=5s */ SELECT * FROM users'],
];

let proxy: TestProxy;
let classifier: Classifier;
let configFile: string;

beforeAll(async () => {
  proxy = await startProxy({ rules: RULES });
  classifier = await Classifier.load();
  configFile = join(mkdtempSync(join(tmpdir(), 'sqlcached-explain-')), 'explain.yaml');
  writeFileSync(configFile, YAML);
});
afterAll(async () => {
  await proxy?.stop();
});

const explainUrl = (query: Record<string, string>) => `http://127.0.0.1:${proxy.adminPort}/explain?${new URLSearchParams(query)}`;

/** main(argv) with its output captured. */
async function inProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } });
  return { code, stdout, stderr };
}

/** The built CLI, run the way users run it. */
async function child(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...argv], { cwd: ROOT, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('GET /explain, explainStatement and `sqlcached explain --json` agree', () => {
  it.each(STATEMENTS)('%s: %s', async (dialect, sql) => {
    const res = await fetch(explainUrl({ sql, dialect }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual(explainStatement({ classifier, config: proxy.config, sql, dialect }));

    const cli = await inProcess(['explain', sql, '--dialect', dialect, '--config', configFile, '--json']);
    expect(cli).toEqual({ code: 0, stdout: body, stderr: '' });
  });

  it('the built command prints the same bytes as the admin port', async () => {
    const sql = 'SELECT code FROM countries WHERE id = 3';
    const body = await (await fetch(explainUrl({ sql }))).text();
    expect(JSON.parse(body)).toMatchObject({ dialect: 'postgres', cacheable: true, rule: 'rules[1]', ttl_ms: 3_600_000, ttl: '1h' });
    expect(await child(['explain', sql, '--config', configFile, '--json'])).toEqual({ code: 0, stdout: body, stderr: '' });
  });

  it('the built command prints aligned, readable lines by default', async () => {
    const { code, stdout, stderr } = await child(['explain', 'SELECT * FROM sessions WHERE id = 1', '--config', configFile]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.trimEnd().split('\n');
    const row = (key: string, value: string) => `${`${key}:`.padEnd(18)}${value}`;
    expect(lines).toEqual([
      row('dialect', 'postgres'),
      row('sql', 'SELECT * FROM sessions WHERE id = 1'),
      row('fingerprint', 'SELECT * FROM sessions WHERE id = ?'),
      row('kind', 'read'),
      row('statements', '1'),
      row('reads', 'sessions'),
      row('writes', '(none)'),
      row('cacheable', 'no'),
      row('reason', 'rule (rules[0])'),
      row('rule', 'rules[0]'),
      row('invalidates', '(none)'),
      row('dependency graph', 'none: every relation is taken for a plain table (GET /explain?database=… uses the live graph of that database)'),
    ]);
  });

  it('with a config of mysql listeners only, the dialect is mysql unless --dialect says otherwise', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sqlcached-explain-')), 'mysql.yaml');
    writeFileSync(file, 'listeners:\n  - name: my\n    protocol: mysql\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:3306\n');
    const sql = 'SELECT SQL_NO_CACHE * FROM users';
    const my = JSON.parse((await inProcess(['explain', sql, '--config', file, '--json'])).stdout) as Record<string, unknown>;
    expect(my).toMatchObject({ dialect: 'mysql', cacheable: false, reason: 'hint', detail: 'SQL_NO_CACHE' });
    const pg = JSON.parse((await inProcess(['explain', sql, '--config', file, '--json', '--dialect', 'postgres'])).stdout) as Record<string, unknown>;
    expect(pg).toMatchObject({ dialect: 'postgres', reason: 'parse-error' });
  });
});

describe('GET /explain refusals', () => {
  it.each([
    [{}, 'missing sql'],
    [{ sql: '' }, 'missing sql'],
    [{ sql: 'SELECT 1', dialect: 'oracle' }, 'bad dialect'],
  ])('%j → 400 %s', async (query, error) => {
    const res = await fetch(explainUrl(query));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error });
  });

  it('POST is not allowed', async () => {
    const res = await fetch(explainUrl({ sql: 'SELECT 1' }), { method: 'POST' });
    expect(res.status).toBe(405);
  });
});

describe('`sqlcached explain` usage errors', () => {
  it.each([
    [['explain'], 'explain needs a statement'],
    [['explain', 'SELECT 1', 'SELECT 2'], 'explain takes one statement'],
    [['explain', 'SELECT 1', '--dialect', 'oracle'], '--dialect must be postgres or mysql'],
    [['explain', 'SELECT 1', '--bogus'], "Unknown option '--bogus'"],
  ])('%j exits 2 saying %s', async (argv, message) => {
    const r = await inProcess(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Try 'sqlcached explain --help'.");
  });

  it('a bad config prints its ConfigError message and exits 2', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'sqlcached-explain-')), 'bad.yaml');
    writeFileSync(bad, 'cache:\n  max_memory: lots\n');
    expect(await inProcess(['explain', 'SELECT 1', '--config', bad])).toEqual({
      code: 2,
      stdout: '',
      stderr: `${bad}: cache.max_memory: expected a size like "256mb", got "lots"\n`,
    });
  });

  it('--help prints the command usage and exits 0', async () => {
    const r = await inProcess(['explain', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: sqlcached explain "<sql>"/);
  });
});
