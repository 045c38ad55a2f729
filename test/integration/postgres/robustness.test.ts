// Review: no hang, no crash, no leak, bounded memory. Very long statements,
// a NUL inside a Query, clients that vanish with requests in flight, a
// CancelRequest while the cache answers, a 300 MB COPY TO STDOUT read by a
// client that stops reading, and a NOTICE inside a cached result.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsNamed, directQuery, dropTables, endDirect, uniqueName, waitFor } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { frontendMessage, RawClient, sendCancel, startupMessage } from '../../helpers/wire.js';
import { B, CountingReader, E, P, Q, S, Wire, differential, names, warmWire } from '../../helpers/transcript.js';

const T = uniqueName('rv_rob');
const FN = uniqueName('rv_noisy');
let proxy: TestProxy;
const byId = (id: number) => `SELECT v FROM ${T} WHERE id = ${id}`;
const WARM = [`SELECT v FROM ${T} WHERE id = 10`];
const MB = 1024 * 1024;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g FROM generate_series(1, 10) g`);
  await directQuery(`CREATE FUNCTION ${FN}(x text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'noisy %', x; RETURN upper(x); END $$`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await directQuery(`DROP FUNCTION IF EXISTS ${FN}(text)`);
  await dropTables(T);
  await endDirect();
});

/** A fresh session through the proxy answers a read: the proxy is alive. */
async function proxyAnswers(): Promise<void> {
  const w = await Wire.open(proxy.port);
  try {
    const reply = await w.query(byId(1));
    expect(reply.filter((m) => m.name === 'dataRow')).toEqual([{ name: 'dataRow', fields: ['v1'] }]);
  } finally {
    w.close();
  }
}

describe('long statements', () => {
  it('a 1 MB literal, a 150 000-item IN list and 20 000 nested parentheses: as from the database, and the first is cached', async () => {
    const literal = `SELECT v, length('${'x'.repeat(MB)}') AS n FROM ${T} WHERE id = 1`;
    const inList = `SELECT count(*) FROM ${T} WHERE id IN (${Array.from({ length: 150_000 }, (_, i) => i).join(',')})`;
    const nested = `SELECT ${'('.repeat(20_000)}1${')'.repeat(20_000)} FROM ${T}`;
    const script = [
      { send: Q(literal), timeoutMs: 20_000 },
      { send: [P(literal), B(), E(), S()], timeoutMs: 20_000 },
      { send: Q(inList), timeoutMs: 20_000 },
      { send: Q(nested), timeoutMs: 20_000 },
      { send: Q(byId(2)) },
    ];
    const first = await differential(proxy.port, script, WARM);
    expect(first.proxy).toEqual(first.db);
    const hit = await warmWire(proxy.port, () => proxy.stats(), Q(literal));
    expect(hit).toEqual(first.db[0]);
  }, 60_000);

  it('a NUL inside a Query message: 08P01 at once, no hang, and the proxy keeps serving others', async () => {
    // The database answers ERROR 08P01 "invalid message format" and goes on;
    // the proxy may instead close this connection (its policy for malformed
    // messages, see bad-input.test.ts) but must answer and stay up.
    const app = uniqueName('rv_nul');
    const w = await Wire.open(proxy.port, app);
    const reply = await w.send(frontendMessage('Q', Buffer.from('SELECT 1\0SELECT 2\0')), 1, {
      timeoutMs: 3_000,
      until: (msgs) => msgs.some((m) => m.name === 'error'),
    });
    expect(reply.find((m) => m.name === 'error')?.['code']).toBe('08P01');
    w.close();
    expect(await waitFor(async () => (await backendsNamed(app)) === 0, 5_000)).toBe(true);
    await proxyAnswers();
  });
});

describe('clients that go away', () => {
  it.each([
    ['a read waiting for its catalog look-up, then pg_sleep', (t: string) => [Q(`SELECT v FROM ${t} WHERE id = 4`), Q('SELECT pg_sleep(1)')]],
    ['50 pipelined batches of pg_sleep(0.1)', () => Array.from({ length: 50 }, () => Buffer.concat([P('SELECT pg_sleep(0.1)'), B(), E(), S()]))],
    ['a held batch without its Sync', (t: string) => [P(`SELECT v FROM ${t} WHERE id = 4`), B(), E()]],
    ['COPY FROM STDIN started, no data', (t: string) => [Q(`COPY ${t} FROM STDIN`)]],
  ])('%s: the upstream backend is gone soon after the client vanishes', async (_label, messages) => {
    const app = uniqueName('rv_gone');
    const raw = await RawClient.connect(proxy.port);
    await raw.startup({ user: 'postgres', database: 'test', application_name: app });
    raw.write(Buffer.concat(messages(T)));
    await new Promise((resolve) => setTimeout(resolve, 150));
    raw.destroy();
    expect(await waitFor(async () => (await backendsNamed(app)) === 0, 5_000), 'no backend left').toBe(true);
    await proxyAnswers();
  });
});

describe('cancel and notices around cached answers', () => {
  it('a CancelRequest sent while the cache answers cancels nothing, and later statements run to the end', async () => {
    const sql = byId(3);
    await warmWire(proxy.port, () => proxy.stats(), Q(sql));
    const w = await Wire.open(proxy.port);
    try {
      await w.query(WARM[0]!);
      const answer = w.query(sql);
      await sendCancel(proxy.port, w.key.processID, w.key.secretKey);
      expect((await answer).filter((m) => m.name === 'dataRow')).toEqual([{ name: 'dataRow', fields: ['v3'] }]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const slow = await w.query('SELECT pg_sleep(0.3)');
      expect(names(slow), 'the sleep was not cancelled').toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    } finally {
      w.close();
    }
  });

  it('a NOTICE raised inside a cacheable result is sent on every answer, hits included, as the database does', async () => {
    const sql = `SELECT ${FN}(v) AS u FROM ${T} WHERE id = 5`;
    const script = [{ send: Q(sql) }, { send: Q(sql) }, { send: Q(sql) }, { send: [P(sql), B(), E(), S()] }, { send: [P(sql), B(), E(), S()] }];
    const before = (await proxy.stats()).hits;
    const { proxy: viaProxy, db } = await differential(proxy.port, script, WARM);
    expect(db[0]!.map((m) => m.name)).toContain('notice');
    expect(viaProxy).toEqual(db);
    console.info(`[review-robustness] hits during the notice script: ${(await proxy.stats()).hits - before}`);
  });
});

describe('bounded memory', () => {
  const external = () => {
    const m = process.memoryUsage();
    return m.external + m.arrayBuffers;
  };

  it('a 300 MB COPY TO STDOUT to a client that stops reading: proxy memory stays flat, every byte arrives once it reads', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const reader = new CountingReader(socket); // keeps nothing: what grows is the proxy's
    try {
      socket.write(startupMessage({ user: 'postgres', database: 'test', application_name: uniqueName('rv_big') }));
      expect(await reader.until(() => reader.count('Z') >= 1, 5_000)).toBe(true);
      const base = external();
      socket.pause();
      socket.write(Q(`COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 300000) g) TO STDOUT`));
      let peak = base;
      for (let i = 0; i < 15; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        peak = Math.max(peak, external());
      }
      const pausedAt = reader.bytes;
      expect(pausedAt, 'the client really stopped reading').toBeLessThan(50 * MB);
      expect(peak - base, `buffered while the client does not read: ${Math.round((peak - base) / MB)} MiB`).toBeLessThan(48 * MB);
      socket.resume();
      expect(await reader.until(() => reader.count('Z') >= 2, 120_000)).toBe(true);
      expect(reader.count('d')).toBe(300_000);
      expect(reader.count('E')).toBe(0);
      console.info(`[review-robustness] paused reader: +${Math.round((peak - base) / MB)} MiB external while 300 MB waited upstream`);
    } finally {
      socket.destroy();
    }
  }, 180_000);
});
