// The admin HTTP contract (DESIGN.md "Admin contract") over a real port:
// startAdmin on port 0 with a small stand-in for the proxy, called with fetch.

import { createServer } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, startAdmin, type AdminDeps } from '../../../src/admin/http-server.js';
import { createLogger } from '../../../src/log.js';

type InvalidateArg = Parameters<AdminDeps['invalidate']>[0];

const state = {
  healthy: true as boolean | Error,
  stats: { hits: 3, misses: 1, hit_ratio: 0.75 } as unknown,
  statsError: null as Error | null,
  invalidateError: null as Error | null,
  invalidateCalls: [] as InvalidateArg[],
};

const deps: AdminDeps = {
  healthy() {
    if (state.healthy instanceof Error) throw state.healthy;
    return state.healthy;
  },
  stats() {
    if (state.statsError) throw state.statsError;
    return state.stats;
  },
  async invalidate(req) {
    state.invalidateCalls.push(req);
    if (state.invalidateError) throw state.invalidateError;
    return { invalidated: req.all ? ['*'] : [`${req.database ?? '*'}.${req.table}`] };
  },
};

let admin: Awaited<ReturnType<typeof startAdmin>>;
let base: string;

beforeAll(async () => {
  admin = await startAdmin({ host: '127.0.0.1', port: 0 }, deps, createLogger('silent', false));
  base = `http://127.0.0.1:${admin.port}`;
});
afterAll(async () => {
  await admin.close();
});
afterEach(() => {
  Object.assign(state, {
    healthy: true,
    stats: { hits: 3, misses: 1, hit_ratio: 0.75 },
    statsError: null,
    invalidateError: null,
    invalidateCalls: [],
  });
});

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/invalidate`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe('GET /health', () => {
  it('answers 200 {"status":"ok"} while the proxy is healthy', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers 503 {"status":"unavailable"} when the proxy is not healthy', async () => {
    state.healthy = false;
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable' });
  });

  it('answers 503 rather than failing when the health check itself throws', async () => {
    state.healthy = new Error('boom');
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable' });
  });

  it('answers HEAD with the status and no body, for load balancers', async () => {
    const res = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});

describe('GET /stats', () => {
  it('returns the stats snapshot as JSON', async () => {
    state.stats = { hits: 10, misses: 2, tables: { users: { hits: 10 } } };
    const res = await fetch(`${base}/stats`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(state.stats);
  });

  it('turns a failing snapshot into a JSON 500 and keeps serving', async () => {
    state.statsError = new Error('snapshot failed');
    const res = await fetch(`${base}/stats`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'internal error', detail: 'snapshot failed' });
    state.statsError = null;
    expect((await fetch(`${base}/stats`)).status).toBe(200);
  });

  it('turns a snapshot JSON cannot hold (a BigInt) into a JSON 500', async () => {
    state.stats = { hits: 1n };
    const res = await fetch(`${base}/stats`);
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: 'internal error' });
  });
});

describe('POST /invalidate', () => {
  it('invalidates one table in every database with {"table":"users"}', async () => {
    const res = await post('{"table":"users"}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: ['*.users'] });
    expect(state.invalidateCalls).toEqual([{ table: 'users' }]);
  });

  it('invalidates one table in one database with {"database":"app","table":"users"}', async () => {
    const res = await post('{"database":"app","table":"users"}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: ['app.users'] });
    expect(state.invalidateCalls).toEqual([{ database: 'app', table: 'users' }]);
  });

  it('invalidates everything with {"all":true}', async () => {
    const res = await post('{"all":true}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: ['*'] });
    expect(state.invalidateCalls).toEqual([{ all: true }]);
  });

  it('accepts a body sent without a JSON content type (curl -d)', async () => {
    const res = await post('{"table":"users"}', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(200);
  });

  const refused: [string, string][] = [
    ['', 'empty body'],
    ['not json', 'the body is not JSON'],
    ['[]', 'the body is not a JSON object'],
    ['{}', 'missing "table"'],
    ['{"database":"app"}', 'missing "table"'],
    ['{"tabel":"users"}', 'unknown key "tabel"'],
    ['{"table":""}', '"table" must be a non-empty string'],
    ['{"table":42}', '"table" must be a non-empty string'],
    ['{"database":"","table":"users"}', '"database" must be a non-empty string'],
    ['{"all":false}', '"all" must be true'],
    ['{"all":true,"table":"users"}', '"all" cannot be combined with "database" or "table"'],
  ];
  it.each(refused)('refuses %j with 400 naming what was expected (%s), invalidating nothing', async (body, detail) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'bad request',
      detail,
      expected: '{"table":"users"}, {"database":"app","table":"users"}, {"pattern":"SELECT * FROM articles%"} or {"all":true}',
    });
    expect(state.invalidateCalls).toEqual([]);
  });

  it('turns a failing invalidation into a JSON 500', async () => {
    state.invalidateError = new Error('store down');
    const res = await post('{"all":true}');
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'internal error', detail: 'store down' });
  });

  it('accepts a body of exactly 64 KiB', async () => {
    const json = '{"table":"users"}';
    const res = await post(json + ' '.repeat(MAX_BODY_BYTES - json.length));
    expect(res.status).toBe(200);
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const res = await post('x'.repeat(MAX_BODY_BYTES + 1));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'payload too large', limit_bytes: MAX_BODY_BYTES });
    expect(state.invalidateCalls).toEqual([]);
  });

  it('answers a large upload (8 MiB) with 413 instead of a reset connection', async () => {
    const res = await post('x'.repeat(8 * 1024 * 1024));
    expect(res.status).toBe(413);
  });

  it('refuses an oversize chunked body (no Content-Length) with 413', async () => {
    const chunk = new Uint8Array(16 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${base}/invalidate`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(state.invalidateCalls).toEqual([]);
  });
});

describe('routing', () => {
  it('answers an unknown path with a JSON 404', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found', path: '/nope' });
  });

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const get = await fetch(`${base}/invalidate`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await get.json()).toEqual({ error: 'method not allowed', allow: ['POST'] });
    const del = await fetch(`${base}/health`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET');
  });

  it('ignores the query string when routing', async () => {
    expect((await fetch(`${base}/health?verbose=1`)).status).toBe(200);
  });

  it('serves a page at / that links /stats and /health', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).toContain('href="/stats"');
    expect(html).toContain('href="/health"');
  });

  it('answers /metrics with 501 until Prometheus metrics exist', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(501);
    expect(await res.json()).toMatchObject({ error: 'not implemented' });
  });
});

describe('startAdmin lifecycle', () => {
  it('refuses an address in use with SQLCACHED_ERR_LISTEN', async () => {
    await expect(startAdmin({ host: '127.0.0.1', port: admin.port }, deps, createLogger('silent', false))).rejects.toMatchObject({
      code: 'SQLCACHED_ERR_LISTEN',
      message: `admin: cannot listen on 127.0.0.1:${admin.port} (EADDRINUSE)`,
    });
  });

  it('close() returns promptly despite keep-alive connections, and the port stops answering', async () => {
    const other = await startAdmin({ host: '127.0.0.1', port: 0 }, deps, createLogger('silent', false));
    expect((await fetch(`http://127.0.0.1:${other.port}/health`)).status).toBe(200);
    const started = Date.now();
    await other.close();
    await other.close(); // idempotent
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(fetch(`http://127.0.0.1:${other.port}/health`)).rejects.toThrow();
  });

  it('listens on the port it reports and accepts IPv6 loopback', async () => {
    const probe = createServer();
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!ipv6) return; // no IPv6 loopback on this machine
    const v6 = await startAdmin({ host: '::1', port: 0 }, deps, createLogger('silent', false));
    try {
      expect(v6.host).toBe('::1');
      expect((await fetch(`http://[::1]:${v6.port}/health`)).status).toBe(200);
    } finally {
      await v6.close();
    }
  });
});
