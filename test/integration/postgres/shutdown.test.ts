// Stopping the proxy (SIGTERM in production, stop() here) lets a request in
// flight finish and tells every client 57P01, the way a database server
// shutting down does, before the listener goes away.

import { afterAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, endDirect } from '../../helpers/db.js';
import { startProxy } from '../../helpers/proxy.js';

afterAll(async () => {
  await endDirect();
});

function nextError(c: pg.Client): Promise<Error & { code?: string }> {
  return new Promise((resolve) => c.once('error', resolve));
}

describe('shutdown', () => {
  it('an idle client hears 57P01; a running query finishes first and then its client hears 57P01', async () => {
    const proxy = await startProxy();
    const idle = await connectClient(proxy.url());
    const busy = await connectClient(proxy.url());
    // connectClient swallows 'error' events; listen for the first one ourselves.
    const idleError = nextError(idle);
    const busyError = nextError(busy);
    const running = busy.query('SELECT pg_sleep(0.5) AS slept, 42 AS answer');
    await new Promise((r) => setTimeout(r, 100)); // the query is upstream now
    const stopped = proxy.stop();
    expect((await idleError).code).toBe('57P01');
    const result = await running;
    expect(result.rows[0]?.answer).toBe(42);
    expect((await busyError).code).toBe('57P01');
    await stopped;
    await expect(connectClient(proxy.url())).rejects.toThrow();
  });
});
