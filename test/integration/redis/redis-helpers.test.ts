// The Redis test helpers themselves, checked against the real redis-server
// with ioredis directly (no proxy): the outage and cluster tests are only as
// good as the kill/pause/restart and key clean-up they rely on.

import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { uniqueName } from '../../helpers/db.js';
import { deleteRedisKeys, listRedisKeys, pings, REDIS_URL, startRedisServer, type RedisServer } from '../../helpers/redis.js';

const servers: RedisServer[] = [];
const clients: Redis[] = [];

afterAll(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 0, connectTimeout: 1_000, commandTimeout: 1_000, retryStrategy: () => null });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

describe('startRedisServer', () => {
  it('starts on a free port, dies like a crash on kill(), comes back empty on the same port with restart(), and stop() leaves nothing', async () => {
    const s = await startRedisServer();
    servers.push(s);
    expect(s.url).toBe(`redis://127.0.0.1:${s.port}`);
    expect(s.port).not.toBe(6379);
    await client(s.url).set('k', 'v');
    expect(await s.command('GET', 'k')).toBe('v');
    const pid = s.pid()!;

    await s.kill();
    expect(s.running()).toBe(false);
    expect(await pings(s.port)).toBe(false);
    expect(() => process.kill(pid, 0), 'the killed redis-server is gone').toThrow();

    await s.restart();
    expect(s.running()).toBe(true);
    expect(s.pid()).not.toBe(pid);
    expect(await s.command('GET', 'k'), 'nothing kept on disk').toBeNull();

    const last = s.pid()!;
    await s.stop();
    expect(() => process.kill(last, 0), 'stop() ends the process').toThrow();
    expect(await pings(s.port)).toBe(false);
  });

  it('persist: the data survives kill() and restart() (an outage that keeps the old entries)', async () => {
    const s = await startRedisServer({ persist: true });
    servers.push(s);
    expect(await s.command('SET', 'k', 'before')).toBe('OK');
    await s.kill();
    await s.restart();
    expect(await s.command('GET', 'k')).toBe('before');
  });

  it('pause() stops answering with the connection open; resume() answers what was queued', async () => {
    const s = await startRedisServer();
    servers.push(s);
    const c = client(s.url);
    await c.set('k', '1');
    s.pause();
    try {
      const t0 = Date.now();
      await expect(c.incr('k')).rejects.toThrow(/timed out/i);
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(await pings(s.port, 300)).toBe(false);
    } finally {
      s.resume();
    }
    expect(await pings(s.port)).toBe(true);
    // The INCR that timed out on the client was on the wire: Redis runs it once it is resumed.
    expect(await s.command('GET', 'k')).toBe('2');
  });

  it('DEBUG SLEEP is allowed from loopback (for the slow-store test)', async () => {
    const s = await startRedisServer();
    servers.push(s);
    const t0 = Date.now();
    expect(await s.command('DEBUG', 'SLEEP', '0.2')).toBe('OK');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });
});

describe('deleteRedisKeys', () => {
  it('deletes exactly the keys containing the prefix, on the local Redis', async () => {
    const mine = uniqueName('rh');
    const other = uniqueName('rh');
    const c = client(REDIS_URL);
    await c.mset(`${mine}:a`, 1, `{${mine}}:b`, 2, `${other}:c`, 3);
    expect((await listRedisKeys({ url: REDIS_URL }, mine)).sort()).toEqual([`${mine}:a`, `{${mine}}:b`].sort());
    expect(await deleteRedisKeys({ url: REDIS_URL }, mine)).toBe(2);
    expect(await listRedisKeys({ url: REDIS_URL }, mine)).toEqual([]);
    expect(await c.get(`${other}:c`)).toBe('3');
    await deleteRedisKeys({ url: REDIS_URL }, other);
  });

  it('is a no-op, not an error, against a Redis that is down', async () => {
    const s = await startRedisServer();
    servers.push(s);
    await s.kill();
    const t0 = Date.now();
    expect(await deleteRedisKeys({ url: s.url }, uniqueName('rh'))).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
