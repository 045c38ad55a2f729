// Stopping the proxy (SIGTERM in production, stop() here) lets a command in
// flight finish, then tells every MySQL client ERR 1053 "Server shutdown in
// progress", as MariaDB does when it stops, before the listener goes away.

import { afterAll, describe, expect, it } from 'vitest';
import { connectMysql, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { startMysqlProxy } from '../../helpers/proxy.js';

afterAll(async () => {
  await endMyDirect();
});

/** The error code of the next connection error: mysql2 reports an ERR that
 * arrives outside a command as a fatal error whose `code` is the number. */
function nextError(c: MyConnection): Promise<number | string | undefined> {
  return new Promise((resolve) => c.once('error', (e: Error & { errno?: number; code?: number | string }) => resolve(e.errno ?? e.code)));
}

describe('shutdown of a mysql listener', () => {
  it('an idle client hears 1053; a running query finishes first, then its client hears 1053; new connections are refused', async () => {
    const proxy = await startMysqlProxy();
    const idle = await connectMysql(proxy.port);
    const busy = await connectMysql(proxy.port);
    const idleError = nextError(idle);
    const busyError = nextError(busy);
    const running = busy.query('SELECT SLEEP(0.5) AS slept, 42 AS answer');
    await new Promise((r) => setTimeout(r, 100)); // the query is upstream now
    const stopped = proxy.stop();
    expect(await idleError).toBe(1053);
    const [rows] = (await running) as unknown as [{ answer: number }[]];
    expect(rows[0]?.answer).toBe(42);
    expect(await busyError).toBe(1053);
    await stopped;
    await expect(connectMysql(proxy.port)).rejects.toThrow();
  });
});
