// Hostile and broken MySQL clients over raw sockets: garbage before the
// handshake response, wrong and huge packet lengths, truncated packets,
// unknown commands. Each gets an ERR packet where the protocol allows one
// (or a closed socket), leaks no upstream connection, and leaves the proxy
// serving everyone else. And when MariaDB is down, clients get an ERR like
// the client library's own 2003 "Can't connect" and the proxy keeps running.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { connectMysql, directSql, dropMyTables, endMyDirect, myRejection, mysqlCli, processExists } from '../../helpers/mysql.js';
import { rowsOf } from '../../helpers/mysql-checks.js';
import { comQuery, decodeErr, packet, RawMysql, type ServerPacket } from '../../helpers/mysql-wire.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_bad');
let proxy: TestProxy;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${T} VALUES (1, 'ok')`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

/** Everyone else is still served, from the cache too. */
async function expectProxyHealthy(): Promise<void> {
  const c = await connectMysql(proxy.port);
  try {
    const sql = `SELECT v FROM ${T} WHERE id = 1`;
    expect(await rowsOf(c, sql)).toEqual([{ v: 'ok' }]);
    expect(await warm(proxy, () => rowsOf(c, sql)), 'and from the cache').toEqual([{ v: 'ok' }]);
  } finally {
    await c.end();
  }
}

/** The first column of the first row of a text result (a length-encoded string < 251 bytes). */
function firstValue(packets: ServerPacket[]): string {
  const row = packets.filter((p) => p.payload[0] !== 0xfe)[2]; // column count, column definition, row
  if (row === undefined) throw new Error(`no row in ${JSON.stringify(packets.map((p) => decodeErr(p.payload) ?? p.payload[0]))}`);
  return row.payload.subarray(1, 1 + row.payload[0]!).toString('utf8');
}

/** A raw session logged in as root on `test`, and the id MariaDB knows its upstream connection by. */
async function loggedIn(): Promise<{ raw: RawMysql; upstream: number }> {
  const raw = await RawMysql.connect(proxy.port);
  await raw.login('root', 'test');
  const upstream = Number(firstValue(await raw.query('SELECT CONNECTION_ID()')));
  expect(await processExists(upstream)).toBe(true);
  return { raw, upstream };
}

async function expectUpstreamGone(id: number): Promise<void> {
  expect(await waitFor(async () => !(await processExists(id)), 5_000), `MariaDB connection ${id} is gone`).toBe(true);
}

/** Every packet after `from` is an ERR (nothing else may answer garbage). */
function onlyErrors(raw: RawMysql, from: number): void {
  for (const p of raw.packets.slice(from)) expect(decodeErr(p.payload), `a non-ERR answer: ${p.payload.subarray(0, 16).toString('hex')}`).not.toBeNull();
}

describe('before the handshake response', () => {
  it('garbage (an HTTP request) instead of a handshake response: closed (ERR allowed), and the proxy serves others', async () => {
    const raw = await RawMysql.connect(proxy.port);
    await raw.greeting();
    raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: sqlcached\r\n\r\n'));
    expect(await raw.waitClosed(5_000), 'the proxy closed the socket').toBe(true);
    onlyErrors(raw, 1);
    await expectProxyHealthy();
  });

  it('a well-framed handshake response full of garbage: ERR 1043 Bad handshake (as MariaDB) and closed', async () => {
    const raw = await RawMysql.connect(proxy.port);
    await raw.greeting();
    raw.write(packet(1, Buffer.from([1, 2, 3, 4, 5, 6])));
    expect(await raw.waitClosed(5_000)).toBe(true);
    onlyErrors(raw, 1);
    expect(raw.errors().map((e) => e.code)).toEqual([1043]);
    await expectProxyHealthy();
  });

  it('a handshake response that declares 16 MiB and sends 100 bytes: other clients are served meanwhile; closing it frees everything', async () => {
    const raw = await RawMysql.connect(proxy.port);
    await raw.greeting();
    raw.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 1]), Buffer.alloc(100, 7)]));
    await expectProxyHealthy();
    onlyErrors(raw, 1);
    raw.destroy();
    await expectProxyHealthy();
  });

  it('a client that connects and leaves without a word, fifty times at once', async () => {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const raw = await RawMysql.connect(proxy.port);
        raw.destroy();
      }),
    );
    await expectProxyHealthy();
  });

  it('a client that closes right after the greeting, fifty times at once', async () => {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const raw = await RawMysql.connect(proxy.port);
        await raw.greeting();
        raw.socket.end();
      }),
    );
    await expectProxyHealthy();
  });
});

describe('after login', () => {
  it('a COM_QUERY whose header claims fewer bytes than follow: ERR packets or a close, no upstream left behind', async () => {
    const { raw, upstream } = await loggedIn();
    const from = raw.packets.length;
    raw.write(comQuery('SELECT 1', 3)); // 'SE' as the query, then 'LECT 1' read as a header
    expect(await raw.until(() => raw.errors().length > 0, 5_000), 'an ERR (MariaDB: 1064, then 1156 out of order)').toBe(true);
    onlyErrors(raw, from);
    raw.destroy();
    await expectUpstreamGone(upstream);
    await expectProxyHealthy();
  });

  it('a truncated packet, then the client closes: the session is torn down, upstream included', async () => {
    const { raw, upstream } = await loggedIn();
    raw.write(Buffer.concat([Buffer.from([100, 0, 0, 0]), Buffer.from([3]), Buffer.from('SELEC')])); // claims 100 bytes, sends 6
    raw.socket.end();
    expect(await raw.waitClosed(5_000)).toBe(true);
    await expectUpstreamGone(upstream);
    await expectProxyHealthy();
  });

  it('a packet that declares 16 MiB and sends 1 KiB: others are served meanwhile; when the client goes, so does its upstream', async () => {
    const { raw, upstream } = await loggedIn();
    const from = raw.packets.length;
    raw.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0]), Buffer.from([3]), Buffer.alloc(1024, 0x20)]));
    await expectProxyHealthy();
    onlyErrors(raw, from);
    raw.destroy();
    await expectUpstreamGone(upstream);
  });

  it('an unknown command byte: ERR 1047 (08S01) as from MariaDB, and the session goes on', async () => {
    const { raw, upstream } = await loggedIn();
    for (const payload of [Buffer.from([0x7f]), Buffer.alloc(0)]) {
      const from = raw.packets.length;
      raw.write(packet(0, payload));
      expect(await raw.until(() => raw.packets.length > from, 5_000), 'an answer').toBe(true);
      const err = decodeErr(raw.packets[from]!.payload);
      expect(err).toMatchObject({ code: 1047, sqlState: '08S01' });
    }
    expect(raw.closed).toBe(false);
    expect(firstValue(await raw.query(`SELECT v FROM ${T} WHERE id = 1`)), 'the session goes on').toBe('ok');
    raw.destroy();
    await expectUpstreamGone(upstream);
  });

  it('a command with a wrong sequence id: an ERR or a correct answer, never a crash', async () => {
    const { raw, upstream } = await loggedIn();
    const from = raw.packets.length;
    raw.write(packet(5, Buffer.concat([Buffer.from([3]), Buffer.from('SELECT 1')])));
    await raw.until(() => raw.packets.length > from, 2_000);
    const first = raw.packets[from];
    if (first !== undefined && decodeErr(first.payload) === null) expect(raw.packets.length - from, 'a whole result set').toBeGreaterThanOrEqual(3);
    raw.destroy();
    await expectUpstreamGone(upstream);
    await expectProxyHealthy();
  });
});

describe('MariaDB is down', () => {
  let down: TestProxy;

  beforeAll(async () => {
    // A port that was just free: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    down = await startMysqlProxy({ upstreamPort: port });
  });

  afterAll(async () => {
    await down?.stop();
  });

  // The promise is the message (the text of the client libraries' own 2003
  // CR_CONN_HOST_ERROR), not the number: libmariadb refuses an ERR packet whose
  // code is in the client range 2000-2999 as "Received malformed packet".
  it('mysql2 gets an ERR whose message is "Can\'t connect to … server on …", and so does the next attempt: the proxy keeps running', async () => {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const err = await myRejection(connectMysql(down.port));
      expect(err.message, `attempt ${attempt + 1} (errno ${err.errno})`).toMatch(/^Can't connect to (MySQL |MariaDB )?server on '[^']+'/);
      expect(err.errno, 'an error number from the ERR packet, not a socket error').toBeGreaterThan(0);
    }
    expect(typeof (await down.stats()).hits, 'the admin port still answers').toBe('number');
  });

  // Before the handshake no capabilities are agreed, so a server's first-packet
  // ERR (1040 too many connections, 1130 host not allowed) carries no SQLSTATE
  // marker; clients then report HY000.
  it('on the wire: the first packet is that ERR (sequence id 0), then the socket closes', async () => {
    const raw = await RawMysql.connect(down.port);
    expect(await raw.waitClosed(5_000)).toBe(true);
    expect(raw.packets).toHaveLength(1);
    expect(raw.packets[0]!.seq).toBe(0);
    const err = decodeErr(raw.packets[0]!.payload);
    expect(err?.message).toMatch(/^Can't connect to /);
    expect([null, 'HY000']).toContain(err?.sqlState);
  });

  it('the mariadb CLI shows the "Can\'t connect" message and exits non-zero', async () => {
    const r = await mysqlCli(down.port, [], 'SELECT 1;');
    expect(r.code).not.toBe(0);
    expect(r.stderr, 'libmariadb must accept the ERR packet and print its text').toMatch(/Can't connect to/);
  });
});
