// Hostile and broken clients over raw sockets: each gets an ErrorResponse
// with SQLSTATE 08P01 (protocol_violation) and a closed socket, leaks no
// upstream connection, and leaves the proxy serving everyone else. And when
// the database is down, clients get 08006 and the proxy keeps running.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { backendsNamed, connectClient, dropTables, endDirect, directQuery, uniqueName, waitFor } from '../../helpers/db.js';
import { rejection, warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { frontendMessage, RawClient } from '../../helpers/wire.js';

const T = uniqueName('bad_t');
let proxy: TestProxy;

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text); INSERT INTO ${T} VALUES (1, 'ok')`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

/** A fresh session that reached ReadyForQuery through trust auth, tagged with a unique application_name. */
async function readySession(): Promise<{ raw: RawClient; app: string }> {
  const app = uniqueName('bad_app');
  const raw = await RawClient.connect(proxy.port);
  await raw.startup({ user: 'postgres', database: 'test', application_name: app });
  expect(await backendsNamed(app)).toBe(1);
  return { raw, app };
}

/** Everyone else is still served, from the cache too, and `app` left no upstream connection behind. */
async function expectProxyHealthy(app: string | null): Promise<void> {
  const c = await connectClient(proxy.url());
  try {
    const sql = `SELECT v FROM ${T} WHERE id = 1`;
    expect((await c.query(sql)).rows).toEqual([{ v: 'ok' }]);
    expect((await warm(proxy, () => c.query(sql))).rows, 'and from the cache').toEqual([{ v: 'ok' }]);
  } finally {
    await c.end();
  }
  if (app !== null) {
    const gone = await waitFor(async () => (await backendsNamed(app)) === 0, 5_000);
    expect(gone, `no upstream connection left for application_name ${app}`).toBe(true);
  }
}

/** The client got a protocol-violation ErrorResponse and the proxy closed the socket. */
async function expectProtocolViolation(raw: RawClient): Promise<void> {
  expect(await raw.waitClosed(5_000), 'the proxy closed the socket').toBe(true);
  const codes = raw.errors().map((e) => e.code);
  expect(codes, 'an ErrorResponse with SQLSTATE 08P01').toContain('08P01');
}

describe('malformed input from a client', () => {
  it('garbage bytes instead of a startup packet: 08P01 and closed', async () => {
    const raw = await RawClient.connect(proxy.port);
    raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: sqlcached\r\n\r\n'));
    await expectProtocolViolation(raw);
    await expectProxyHealthy(null);
  });

  it('a startup packet that claims more bytes than any startup may have: 08P01 and closed', async () => {
    const raw = await RawClient.connect(proxy.port);
    const b = Buffer.alloc(8);
    b.writeInt32BE(0x7fffffff, 0);
    b.writeInt32BE(196608, 4);
    raw.write(b);
    await expectProtocolViolation(raw);
    await expectProxyHealthy(null);
  });

  it('a truncated message, then the client closes: the session is torn down, upstream included', async () => {
    const { raw, app } = await readySession();
    raw.write(frontendMessage('Q', Buffer.from('SELEC'), 100)); // claims 96 body bytes, sends 5
    raw.socket.end();
    expect(await raw.waitClosed(5_000)).toBe(true);
    // The client has half-closed: an ErrorResponse is allowed but must be a protocol violation.
    for (const e of raw.errors()) expect(e.code).toBe('08P01');
    await expectProxyHealthy(app);
  });

  it('a message with an oversize length (0x7fffffff): 08P01 and closed, without waiting for 2 GiB', async () => {
    const { raw, app } = await readySession();
    raw.write(frontendMessage('Q', Buffer.alloc(0), 0x7fffffff));
    await expectProtocolViolation(raw);
    await expectProxyHealthy(app);
  });

  it('a message with a negative / too-small length (3): 08P01 and closed', async () => {
    const { raw, app } = await readySession();
    raw.write(frontendMessage('Q', Buffer.alloc(0), 3));
    await expectProtocolViolation(raw);
    await expectProxyHealthy(app);
  });

  it('a message with an unknown type byte: 08P01 and closed', async () => {
    const { raw, app } = await readySession();
    raw.write(frontendMessage('y', Buffer.from([0, 0, 0, 0])));
    await expectProtocolViolation(raw);
    await expectProxyHealthy(app);
  });

  it('a Bind whose parameters run past the end of the message: 08P01', async () => {
    const { raw, app } = await readySession();
    const bind = Buffer.concat([
      Buffer.from('\0\0'), // portal "", statement ""
      Buffer.from([0, 0]), // no parameter format codes
      Buffer.from([0, 3]), // three parameters…
      Buffer.from([0, 0, 0, 1]),
      Buffer.from('1'), // …but only the first one is there
    ]);
    raw.write(
      Buffer.concat([
        serialize.parse({ text: 'SELECT $1::int + $2::int + $3::int', types: [23, 23, 23] }),
        frontendMessage('B', bind),
        serialize.execute(),
        serialize.sync(),
      ]),
    );
    // The database itself reports this as an ERROR and goes on after Sync; the
    // proxy may do the same or close the connection. Either way: 08P01, no leak.
    expect(await raw.until(() => raw.count('error') > 0 && (raw.closed || raw.count('readyForQuery') >= 2), 5_000)).toBe(true);
    expect(raw.errors().map((e) => e.code)).toContain('08P01');
    if (!raw.closed) {
      const reply = await raw.request(serialize.query(`SELECT v FROM ${T} WHERE id = 1`));
      expect(reply.includes(Buffer.from('ok')), 'the session goes on after Sync').toBe(true);
      raw.destroy();
    }
    await expectProxyHealthy(app);
  });

  it('a client that vanishes mid-query (socket destroyed during pg_sleep) leaves no upstream connection', async () => {
    const { raw, app } = await readySession();
    raw.write(serialize.query('SELECT pg_sleep(2)'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    raw.destroy();
    await expectProxyHealthy(app);
  });
});

describe('the database is down', () => {
  let down: TestProxy;

  beforeAll(async () => {
    // A port that was just free: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    down = await startProxy({ upstreamPort: port });
  });

  afterAll(async () => {
    await down?.stop();
  });

  it('a client gets ErrorResponse 08006, and so does the next attempt: the proxy keeps running', async () => {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const err = await rejection(connectClient(down.url()));
      expect(err.code, `attempt ${attempt + 1}`).toBe('08006');
    }
    const raw = await RawClient.connect(down.port);
    raw.write(serialize.startup({ user: 'postgres', database: 'test' }));
    expect(await raw.waitClosed(5_000)).toBe(true);
    expect(raw.errors().map((e) => e.code)).toEqual(['08006']);
    expect(typeof (await down.stats()).hits, 'the admin port still answers').toBe('number');
  });
});
