// Steering the cache from the admin port, against the real databases:
// POST /invalidate by shape pattern (PostgreSQL and MariaDB), the bearer
// token, POST /reload and reload.watch with clients connected.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { startServer, type RunningServer } from '../../../src/server.js';
import { hitsDuring, warm } from '../../helpers/compare.js';
import { connectClient, directQuery, dropTables, endDirect, pgUrl, uniqueName, waitFor } from '../../helpers/db.js';
import { connectMysql, directSql, dropMyTables, endMyDirect } from '../../helpers/mysql.js';
import { startMysqlProxy, startProxy, type TestProxy } from '../../helpers/proxy.js';

const ARTICLES = uniqueName('st_articles');
const AUTHORS = uniqueName('st_authors');

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${ARTICLES} (id int PRIMARY KEY, title text, status text)`);
  await directQuery(`INSERT INTO ${ARTICLES} VALUES (1, 'one', 'live'), (2, 'two', 'live')`);
  await directQuery(`CREATE TABLE ${AUTHORS} (id int PRIMARY KEY, name text)`);
  await directQuery(`INSERT INTO ${AUTHORS} VALUES (1, 'ann')`);
});

afterAll(async () => {
  await dropTables(ARTICLES, AUTHORS);
  await endDirect();
  await endMyDirect();
});

const post = (proxy: { adminPort: number }, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${proxy.adminPort}${path}`, { method: 'POST', body: JSON.stringify(body), headers });

describe('POST /invalidate {"pattern"} (PostgreSQL)', () => {
  let proxy: TestProxy;
  let c: pg.Client;
  beforeAll(async () => {
    proxy = await startProxy({ defaultTtlMs: 0 });
    c = await connectClient(proxy.url());
  });
  afterAll(async () => {
    await c?.end().catch(() => {});
    await proxy?.stop();
  });

  const byId = `SELECT * FROM ${ARTICLES} WHERE id = 1`;
  const titles = `SELECT title FROM ${ARTICLES} WHERE id = 1`;
  const authors = `SELECT name FROM ${AUTHORS} WHERE id = 1`;
  const rows = async (sql: string) => (await c.query(sql)).rows;

  it('retires exactly the results whose shape matches; a change made behind the proxy is then seen', async () => {
    for (const sql of [byId, titles, authors]) await warm(proxy, () => rows(sql));
    // Behind the proxy's back: the cache cannot know.
    await directQuery(`UPDATE ${ARTICLES} SET title = 'ONE' WHERE id = 1`);
    await directQuery(`UPDATE ${AUTHORS} SET name = 'ANN' WHERE id = 1`);
    expect(await rows(byId)).toEqual([{ id: 1, title: 'one', status: 'live' }]);

    const res = await post(proxy, '/invalidate', { pattern: `SELECT * FROM ${ARTICLES}%` });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: [`SELECT * FROM ${ARTICLES} WHERE id = ?`], shapes: 1 });

    const fresh = await hitsDuring(proxy, () => rows(byId));
    expect(fresh.hits, 'the matching shape is read from the database').toBe(0);
    expect(fresh.value).toEqual([{ id: 1, title: 'ONE', status: 'live' }]);
    // The others still answer from cache (stale by design: nothing told the proxy).
    const other = await hitsDuring(proxy, () => rows(titles));
    expect(other.hits).toBe(1);
    expect(other.value).toEqual([{ title: 'one' }]);
    expect((await hitsDuring(proxy, () => rows(authors))).value).toEqual([{ name: 'ann' }]);
    // And the re-read is cached again.
    expect((await hitsDuring(proxy, () => rows(byId))).hits).toBe(1);
  });

  it('% in the middle, whitespace folded, letter case kept; no match is an empty answer', async () => {
    await warm(proxy, () => rows(titles));
    await directQuery(`UPDATE ${ARTICLES} SET title = 'Uno' WHERE id = 1`);
    const lower = await post(proxy, '/invalidate', { pattern: `select title from ${ARTICLES}%` });
    expect(await lower.json()).toEqual({ invalidated: [], shapes: 0 });
    const res = await post(proxy, '/invalidate', { pattern: `SELECT   title\nFROM %WHERE id = ?` });
    expect(await res.json()).toEqual({ invalidated: [`SELECT title FROM ${ARTICLES} WHERE id = ?`], shapes: 1 });
    expect(await rows(titles)).toEqual([{ title: 'Uno' }]);
  });

  it('prepared statements (extended protocol) are shapes too', async () => {
    const q = { text: `SELECT status FROM ${ARTICLES} WHERE id = $1`, values: [2] };
    await warm(proxy, async () => (await c.query(q)).rows);
    await directQuery(`UPDATE ${ARTICLES} SET status = 'draft' WHERE id = 2`);
    const res = await post(proxy, '/invalidate', { pattern: `SELECT status FROM ${ARTICLES} WHERE id = %` });
    expect((await res.json()) as unknown).toMatchObject({ shapes: 1 });
    expect((await c.query(q)).rows).toEqual([{ status: 'draft' }]);
  });

  it('refuses a bad pattern body with 400 and says why', async () => {
    for (const [body, detail] of [
      [{ pattern: '' }, '"pattern" must be a non-empty string'],
      [{ pattern: 'x%', table: 't' }, '"pattern" cannot be combined with "database", "table" or "all"'],
      [{ pattern: 5 }, '"pattern" must be a non-empty string'],
    ] as const) {
      const res = await post(proxy, '/invalidate', body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toBe(detail);
    }
  });
});

describe('POST /invalidate {"pattern"} (MariaDB)', () => {
  const T = uniqueName('st_my');
  let proxy: TestProxy;
  beforeAll(async () => {
    await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(10))`);
    await directSql(`INSERT INTO ${T} VALUES (1, 'a')`);
    proxy = await startMysqlProxy({ defaultTtlMs: 0 });
  });
  afterAll(async () => {
    await proxy?.stop();
    await dropMyTables(T);
  });

  it('retires the matching results, text and prepared', async () => {
    const c = await connectMysql(proxy.port);
    try {
      const text = async () => ((await c.query(`SELECT v FROM ${T} WHERE id = 1`))[0] as { v: string }[])[0]!.v;
      const prepared = async () => ((await c.execute(`SELECT v FROM ${T} WHERE id = ?`, [1]))[0] as { v: string }[])[0]!.v;
      expect(await warm(proxy, text)).toBe('a');
      expect(await warm(proxy, prepared)).toBe('a');
      await directSql(`UPDATE ${T} SET v = 'b' WHERE id = 1`);
      expect(await text()).toBe('a');
      const res = await post(proxy, '/invalidate', { pattern: `SELECT v FROM ${T} WHERE %` });
      expect(((await res.json()) as { shapes: number }).shapes).toBe(1);
      expect(await text()).toBe('b');
      expect(await prepared()).toBe('b');
    } finally {
      await c.end();
    }
  });
});

describe('admin.token', () => {
  const TOKEN = 'test-admin-token-0123456789';
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startProxy({ adminToken: TOKEN });
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${proxy.adminPort}${path}`, { headers });

  it('every route but /health and / answers 401 without the token, or with a wrong one', async () => {
    for (const path of ['/stats', '/metrics', '/explain?sql=SELECT%201']) {
      const none = await get(path);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="sqlcached"');
      expect(((await none.json()) as { error: string }).error).toBe('unauthorized');
      expect((await get(path, { authorization: `Bearer ${TOKEN}x` })).status, path).toBe(401);
      expect((await get(path, { authorization: TOKEN })).status, path).toBe(401);
    }
    for (const path of ['/invalidate', '/reload']) {
      expect((await post(proxy, path, { all: true })).status, path).toBe(401);
    }
    expect((await get('/health')).status).toBe(200);
    expect((await get('/')).status).toBe(200);
  });

  it('with the token, every route answers', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await get('/stats', auth)).status).toBe(200);
    expect((await get('/metrics', auth)).status).toBe(200);
    expect((await get('/explain?sql=SELECT%201', auth)).status).toBe(200);
    expect((await post(proxy, '/invalidate', { all: true }, { authorization: `bearer ${TOKEN}` })).status).toBe(200);
  });
});

describe('POST /reload and reload.watch, with clients connected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sqlcached-reload-'));
  const file = join(dir, 'sqlcached.yaml');
  const yaml = (rules: string, watch = false) => `listeners:
  - name: pg
    protocol: postgres
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:5432
cache:
  default_ttl: 1h
admin:
  listen: 127.0.0.1:0
reload:
  watch: ${watch}
log:
  level: silent
rules:
${rules}
`;
  let server: RunningServer;
  let c: pg.Client;
  let admin: { adminPort: number };
  const read = `SELECT title FROM ${ARTICLES} WHERE id = 2`;
  const stats = async () => (await (await fetch(`http://127.0.0.1:${admin.adminPort}/stats`)).json()) as { hits: number; bypass_reasons: Record<string, number> };
  const hitOnce = async () => {
    const before = (await stats()).hits;
    await c.query(read);
    return (await stats()).hits - before;
  };

  beforeAll(async () => {
    writeFileSync(file, yaml('  - tables: [nothing_here]\n    ttl: 5s', true));
    server = await startServer(loadConfig(file), { log: pino({ level: 'silent' }) });
    admin = { adminPort: server.admin!.port };
    c = await connectClient(pgUrl(server.listeners[0]!.port, 'test', 'postgres', undefined, '127.0.0.1'));
    for (let i = 0; i < 3; i++) await c.query(read);
  });
  afterAll(async () => {
    await c?.end().catch(() => {});
    await server?.stop();
  });

  it('a valid file applies at once to the open connection; an invalid one is refused with 422 and the old rules stay', async () => {
    expect(await hitOnce()).toBe(1);
    writeFileSync(file, yaml(`  - tables: [${ARTICLES}]\n    cache: false`, true));
    const res = await post(admin, '/reload', {});
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reloaded: true, file, changed: ['rules'], restart_required: [] });
    expect(await hitOnce(), 'the rule cache: false applies on the same connection').toBe(0);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    writeFileSync(file, yaml('  - tables: oops-not-a-list', true));
    const bad = await post(admin, '/reload', {});
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { error: string; detail: string };
    expect(body.error).toBe('config refused');
    expect(body.detail).toBe(`${file}: rules[0].tables: expected a list of table names like [users, orders], got "oops-not-a-list"`);
    expect(await hitOnce(), 'the rules in force before the bad file still apply').toBe(0);
  });

  it('reload.watch: editing the file reloads it within seconds, without a signal', async () => {
    writeFileSync(file, yaml('  - tables: [nothing_here]\n    ttl: 5s', true));
    const reloaded = await waitFor(async () => {
      await c.query(read);
      return (await hitOnce()) === 1;
    }, 8_000, 200);
    expect(reloaded, 'the file change was picked up and caching is back').toBe(true);
  });

  it('a listener change is reported as needing a restart, and the connection stays up', async () => {
    writeFileSync(file, yaml('  - tables: [nothing_here]\n    ttl: 5s', true).replace('listen: 127.0.0.1:0\n    upstream', 'listen: 127.0.0.1:0\n    tls: null\n    upstream').replace('level: silent', 'level: fatal'));
    const res = await post(admin, '/reload', {});
    expect(((await res.json()) as { changed: string[] }).changed).toEqual(['log']);
    writeFileSync(file, yaml('  - tables: [nothing_here]\n    ttl: 5s', true).replace('cache:\n  default_ttl: 1h', 'cache:\n  default_ttl: 1h\n  max_memory: 128mb'));
    const res2 = await post(admin, '/reload', {});
    expect(await res2.json()).toMatchObject({ reloaded: true, changed: ['cache', 'log'], restart_required: ['cache.max_memory'] });
    expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });
});
