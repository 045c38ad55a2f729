// Bounded, deterministic fuzzing of the client side of the MySQL listener.
// A corpus of valid client command streams (text queries, prepared
// statements with long data and cursors, transactions, misc commands) is
// mutated with a seeded PRNG — bit flips, truncation, wrong 3-byte lengths,
// huge declared lengths, wrong sequence ids, duplicated / dropped / swapped
// packets, garbage inserted after the handshake, a mutated handshake
// response, random chunking with small delays — and sent over raw sockets
// after a real greeting.
//
// Invariants: no uncaught exception / unhandled rejection in this process
// (the proxy runs in it); whatever the proxy sends frames as MySQL packets;
// when the mutated stream is cleanly framed and MariaDB itself, sent the same
// bytes plus a sentinel query, answers or closes, the proxy answers or
// closes too (no hung client); every CHECK_EVERY iterations and at the end a
// fresh mysql2 connection gets SELECT 1 and a cached read; at the end no
// connection of the dedicated fuzz user is left in the PROCESSLIST.
//
// Reproduce: FUZZ_SEED=<seed> [FUZZ_ITERATIONS=n] [FUZZ_ONLY=<iteration>] npx vitest run test/integration/mysql/fuzz.test.ts

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { connectMysql, directSql, dropMyTables, endMyDirect } from '../../helpers/mysql.js';
import { rowsOf } from '../../helpers/mysql-checks.js';
import { handshakeResponse, packet } from '../../helpers/mysql-wire.js';
import { Rng } from '../../helpers/fuzz.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';
import { cmd, COM, execute, fieldList, initDb, prepare, query, sendLongData, setOption, stmtClose, stmtFetch, stmtReset } from '../../helpers/mysql-proto.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x3a5e_d0b5) >>> 0;
const ITERATIONS = Number(process.env['FUZZ_ITERATIONS'] ?? 200);
const ONLY = process.env['FUZZ_ONLY'] === undefined ? null : Number(process.env['FUZZ_ONLY']);
const CONCURRENCY = 10;
const CHECK_EVERY = 40;
const IDLE_MS = 120;
const MAX_MS = 1_500;
const SENTINEL_MS = 1_500;
const MY_PORT = 3306;

const T = uniqueName('my_fz');
// The health check reads its own table: mutants of the 'txn' corpus write T, and a
// concurrent write may rightly keep the check's read from ever being a hit.
const HEALTH_T = uniqueName('my_fzh');
const FUZZ_USER = 'sqlcached_fz';
let proxy: TestProxy;

const processFaults: string[] = [];
const onUncaught = (err: unknown): void => {
  processFaults.push(`uncaughtException: ${(err as Error)?.stack ?? String(err)}`);
};
const onUnhandled = (err: unknown): void => {
  processFaults.push(`unhandledRejection: ${(err as Error)?.stack ?? String(err)}`);
};

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${T} VALUES (1, 'v1'), (2, 'v2'), (3, 'v3')`);
  await directSql(`CREATE TABLE ${HEALTH_T} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${HEALTH_T} VALUES (1, 'v1')`);
  for (const host of ['%', '127.0.0.1', 'localhost']) {
    await directSql(`CREATE USER IF NOT EXISTS '${FUZZ_USER}'@'${host}' IDENTIFIED BY ''`);
    await directSql(`GRANT ALL ON test.* TO '${FUZZ_USER}'@'${host}'`);
  }
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
  await proxy?.stop();
  await dropMyTables(T, HEALTH_T);
  for (const host of ['%', '127.0.0.1', 'localhost']) await directSql(`DROP USER IF EXISTS '${FUZZ_USER}'@'${host}'`).catch(() => {});
  await endMyDirect();
});

const READ = `SELECT v FROM ${T} WHERE id = 1`;
const HEALTH_READ = `SELECT v FROM ${HEALTH_T} WHERE id = 1`;
const LAST = 0xffffffff; // MariaDB: the statement prepared last

/** Recorded command streams (after the handshake response), one packet each. */
const CORPUS: { name: string; packets: Buffer[] }[] = [
  { name: 'text', packets: [query('SELECT 1'), query(READ), query(READ), query('SELECT 1; SELECT 2'), query('SELEC broken'), cmd(COM.PING), cmd(COM.QUIT)] },
  {
    name: 'prepared',
    packets: [
      prepare(`SELECT v FROM ${T} WHERE id = ?`),
      execute(LAST, ['1']),
      execute(LAST, ['1']),
      sendLongData(LAST, 0, '2'),
      execute(LAST, [''], 0, [0]),
      stmtReset(LAST),
      execute(LAST, ['3']),
      stmtClose(LAST),
      query(READ),
    ],
  },
  {
    name: 'cursor',
    packets: [prepare(`SELECT id, v FROM ${T} ORDER BY id`), execute(LAST, [], 1), stmtFetch(LAST, 1), stmtFetch(LAST, 10), execute(LAST), query('SELECT 2')],
  },
  {
    name: 'misc',
    packets: [initDb('test'), fieldList(T), cmd(COM.STATISTICS), setOption(true), query(`${READ}; SELECT 3`), setOption(false), initDb('sqlcached_missing_db'), query(READ)],
  },
  { name: 'txn', packets: [query('BEGIN'), query(`UPDATE ${T} SET v = 'v2' WHERE id = 2`), query(READ), query('ROLLBACK'), query(READ), cmd(COM.QUIT)] },
];

interface Mutant {
  iteration: number;
  corpus: string;
  ops: string[];
  hello: Buffer;
  bytes: Buffer;
  chunks: { size: number; delayMs: number }[];
  close: 'end' | 'destroy';
}

const LENGTHS = [0, 1, 3, 0xffffff, 0xfffffe, 0x100000, 65_536] as const;

function mutate(iteration: number, rng: Rng): Mutant {
  const entry = CORPUS[rng.int(CORPUS.length)]!;
  const pk: Buffer[] = entry.packets.map((p) => Buffer.from(p));
  let hello = handshakeResponse(FUZZ_USER, 'test');
  const ops: string[] = [];
  let tail: Buffer | null = null;
  let truncate = false;
  const nOps = 1 + rng.int(3);
  for (let k = 0; k < nOps; k++) {
    const op = rng.int(12);
    const idx = rng.int(pk.length);
    const p = pk[idx]!;
    switch (op) {
      case 0: {
        const flips = 1 + rng.int(6);
        for (let i = 0; i < flips; i++) {
          const at = rng.int(p.length);
          p[at] = p[at]! ^ (1 << rng.int(8));
        }
        ops.push(`bitflip(pkt ${idx}, ${flips})`);
        break;
      }
      case 1: {
        const len = rng.int(3) === 0 ? Math.max(0, p.length - 4 + rng.pick([-2, -1, 1, 2, 100])) : rng.pick(LENGTHS);
        p.writeUIntLE(len, 0, 3);
        ops.push(`length(pkt ${idx}, ${len})`);
        break;
      }
      case 2: {
        const seq = rng.pick([1, 2, 3, 0xff, rng.int(256)]);
        p[3] = seq;
        ops.push(`seq(pkt ${idx}, ${seq})`);
        break;
      }
      case 3: {
        pk.splice(idx, 0, Buffer.from(p));
        ops.push(`duplicate(pkt ${idx})`);
        break;
      }
      case 4: {
        if (pk.length > 1) {
          pk.splice(idx, 1);
          ops.push(`drop(pkt ${idx})`);
        }
        break;
      }
      case 5: {
        const j = rng.int(pk.length);
        [pk[idx], pk[j]] = [pk[j]!, pk[idx]!];
        ops.push(`swap(${idx}, ${j})`);
        break;
      }
      case 6: {
        const g = rng.bytes(1 + rng.int(48));
        pk.splice(idx, 0, g);
        ops.push(`garbage(at ${idx}, ${g.length} bytes)`);
        break;
      }
      case 7: {
        // A well-framed packet with a random command byte and body.
        const body = Buffer.concat([Buffer.from([rng.pick([0x00, 0x05, 0x06, 0x07, 0x08, 0x0a, 0x10, 0x11, 0x12, 0x1d, 0x1e, 0x1f, 0x20, 0x99, 0xfa, 0xfe, 0xff, rng.int(256)])]), rng.bytes(rng.int(24))]);
        pk.splice(idx, 0, packet(0, body));
        ops.push(`command(at ${idx}, 0x${body[0]!.toString(16)}, ${body.length - 1} bytes)`);
        break;
      }
      case 8: {
        // Huge declared length: a 16 MiB piece announced, a little sent.
        const body = rng.bytes(1 + rng.int(200));
        body[0] = COM.QUERY;
        pk.splice(idx, 0, packet(0, body, 0xffffff));
        ops.push(`huge(at ${idx}, sends ${body.length})`);
        break;
      }
      case 9: {
        const at = rng.int(hello.length);
        hello = Buffer.from(hello);
        if (rng.int(2) === 0) hello[at] = hello[at]! ^ (1 << rng.int(8));
        else hello = hello.subarray(0, at);
        ops.push(`hello(${at})`);
        break;
      }
      case 10: {
        tail = rng.bytes(1 + rng.int(64));
        ops.push(`append(${tail.length})`);
        break;
      }
      default:
        truncate = true;
        ops.push('truncate');
    }
  }
  let bytes = Buffer.concat(tail === null ? pk : [...pk, tail]);
  if (truncate && bytes.length > 1) bytes = bytes.subarray(0, rng.int(bytes.length));
  const chunks: Mutant['chunks'] = [];
  const style = rng.int(4);
  let left = bytes.length;
  while (left > 0) {
    const size = style === 0 ? left : style === 1 ? 1 + rng.int(Math.min(left, 3)) : 1 + rng.int(Math.min(left, 64));
    chunks.push({ size: Math.min(size, left), delayMs: style !== 1 && rng.int(3) === 0 ? rng.int(3) : 0 });
    left -= size;
    if (chunks.length > 40 && left > 0) {
      chunks.push({ size: left, delayMs: 0 });
      break;
    }
  }
  return { iteration, corpus: entry.name, ops, hello, bytes, chunks, close: rng.int(2) === 0 ? 'end' : 'destroy' };
}

/** The packets of `b` if it frames exactly (every declared length present, no 16 MiB pieces), else null. */
function frames(b: Buffer): { seq: number; payload: Buffer }[] | null {
  const out: { seq: number; payload: Buffer }[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 4) return null;
    const len = b.readUIntLE(off, 3);
    if (len === 0xffffff || off + 4 + len > b.length) return null;
    out.push({ seq: b[off + 3]!, payload: b.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

interface Outcome {
  received: Buffer;
  loggedIn: boolean;
  closedByServer: boolean;
  /** After a sentinel query: it was answered (some packet came) or the connection closed. */
  sentinel: 'answered' | 'closed' | 'silent' | 'not-sent';
  /** Server packets received before the sentinel (or the end). */
  packetsBefore: number;
}

const SENTINEL = query("SELECT 'fuzz-sentinel'");

/** Greeting, the (maybe mutated) handshake response, then the mutant; optionally a sentinel query after it. */
function run(port: number, m: Mutant, withSentinel: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let total = 0;
    let closed = false;
    let done = false;
    let sentinelFrom = -1;
    let sentinel: Outcome['sentinel'] = 'not-sent';
    let loggedIn = false;
    const waiters: (() => void)[] = [];
    const wake = (): void => {
      for (const w of waiters.splice(0)) w();
    };
    const wait = (ms: number, check: () => boolean): Promise<boolean> =>
      new Promise((res) => {
        if (check() || closed) return res(check());
        const t = setTimeout(() => res(check()), ms);
        const loop = (): void => {
          if (check() || closed) {
            clearTimeout(t);
            res(check());
          } else waiters.push(loop);
        };
        waiters.push(loop);
      });
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      wake();
    });
    const overall = setTimeout(() => finish(), MAX_MS + SENTINEL_MS + 1_500);
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(overall);
      if (!socket.destroyed) {
        if (m.close === 'end') {
          socket.end();
          setTimeout(() => socket.destroy(), 50).unref();
        } else socket.destroy();
      }
      const all = Buffer.concat(chunks);
      resolve({ received: all, loggedIn, closedByServer: closed, sentinel, packetsBefore: countPackets(sentinelFrom < 0 ? all : all.subarray(0, sentinelFrom)) });
    };
    socket.once('connect', async () => {
      if (!(await wait(2_000, () => total >= 4 && total >= 4 + Buffer.concat(chunks).readUIntLE(0, 3)))) return finish();
      const afterGreeting = total;
      socket.write(m.hello);
      await wait(500, () => total > afterGreeting);
      const all = Buffer.concat(chunks);
      loggedIn = all.length > afterGreeting + 4 && all[afterGreeting + 4] === 0x00;
      let off = 0;
      for (const c of m.chunks) {
        if (closed || done) break;
        if (c.delayMs > 0) await new Promise((r) => setTimeout(r, c.delayMs));
        if (closed || done) break;
        socket.write(m.bytes.subarray(off, off + c.size));
        off += c.size;
      }
      // Idle: until nothing new for IDLE_MS (or MAX_MS in all).
      const started = Date.now();
      for (;;) {
        const seen = total;
        await wait(IDLE_MS, () => total !== seen);
        if (closed || total === seen || Date.now() - started > MAX_MS) break;
      }
      if (withSentinel && !closed && !done) {
        sentinelFrom = total;
        socket.write(SENTINEL);
        const answered = await wait(SENTINEL_MS, () => total > sentinelFrom);
        sentinel = answered ? 'answered' : closed ? 'closed' : 'silent';
      }
      finish();
    });
  });
}

/** The server byte stream frames as packets (a trailing partial packet is allowed only if the connection closed mid-way). */
function framingProblem(buf: Buffer): string | null {
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUIntLE(off, 3);
    if (off + 4 + len > buf.length) return null; // cut off: the socket closed or we stopped reading
    off += 4 + len;
  }
  return null;
}

function countPackets(buf: Buffer): number {
  let n = 0;
  let off = 0;
  while (off + 4 <= buf.length && off + 4 + buf.readUIntLE(off, 3) <= buf.length) {
    n++;
    off += 4 + buf.readUIntLE(off, 3);
  }
  return n;
}

function summary(buf: Buffer): string {
  const out: string[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUIntLE(off, 3);
    const p = buf.subarray(off + 4, Math.min(buf.length, off + 4 + len));
    out.push(`${buf[off + 3]}:${p[0] === 0xff ? `ERR ${p.readUInt16LE(1)} ${p.toString('utf8', 9, 60)}` : p.subarray(0, 12).toString('latin1').replace(/[^\x20-\x7e]/g, '.')}`);
    off += 4 + len;
  }
  return out.join(' | ');
}

async function fuzzUserConnections(): Promise<number> {
  const r = await directSql<{ n: number }[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?', [FUZZ_USER]);
  return Number(r[0]!.n);
}

async function expectHealthy(when: string): Promise<void> {
  const c = await connectMysql(proxy.port);
  try {
    expect(await rowsOf(c, 'SELECT 1 AS one'), `SELECT 1 ${when}`).toEqual([{ one: 1 }]);
    expect(await warm(proxy, () => rowsOf(c, HEALTH_READ)), `cached read ${when}`).toEqual([{ v: 'v1' }]);
  } finally {
    await c.end();
  }
}

function describeMutant(m: Mutant, problem: string): string {
  return [
    `FUZZ FAILURE seed=0x${SEED.toString(16)} iteration=${m.iteration} corpus=${m.corpus}`,
    `  problem: ${problem}`,
    `  ops: ${m.ops.join(' + ')}`,
    `  chunks: ${m.chunks.map((c) => `${c.size}${c.delayMs > 0 ? `@${c.delayMs}ms` : ''}`).join(',')} close=${m.close}`,
    `  hello (${m.hello.length}): ${m.hello.toString('hex')}`,
    `  bytes (${m.bytes.length}): ${m.bytes.subarray(0, 400).toString('hex')}${m.bytes.length > 400 ? '…' : ''}`,
    `  reproduce: FUZZ_SEED=${SEED} FUZZ_ONLY=${m.iteration} npx vitest run test/integration/mysql/fuzz.test.ts`,
  ].join('\n');
}

describe('fuzzing the MySQL client protocol', () => {
  it(`seed 0x${SEED.toString(16)}: ${ONLY ?? ITERATIONS} mutated client streams — no crash, answered or closed, no leaked upstream, others served`, async () => {
    const started = Date.now();
    expect(await fuzzUserConnections(), 'no fuzz connections before').toBe(0);

    // The corpus is valid: unmutated, each stream runs to its end through the proxy as against MariaDB.
    for (const entry of CORPUS) {
      const m: Mutant = { iteration: -1, corpus: entry.name, ops: [], hello: handshakeResponse(FUZZ_USER, 'test'), bytes: Buffer.concat(entry.packets), chunks: [], close: 'end' };
      m.chunks = [{ size: m.bytes.length, delayMs: 0 }];
      const direct = await run(MY_PORT, m, false);
      const via = await run(proxy.port, m, false);
      expect(via.loggedIn && direct.loggedIn, `${entry.name}: logged in`).toBe(true);
      expect(via.received.length > 0, `${entry.name}: answered`).toBe(true);
      expect(via.closedByServer, `${entry.name}: closed the same way as MariaDB`).toBe(direct.closedByServer);
    }

    const rng = new Rng(SEED);
    const mutants: Mutant[] = [];
    for (let i = 0; i < ITERATIONS; i++) mutants.push(mutate(i, rng));
    const todo = ONLY === null ? mutants : mutants.filter((m) => m.iteration === ONLY);

    const failures: string[] = [];
    let next = 0;
    let sinceCheck = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const m = todo[next++]!;
        const clean = frames(m.bytes) !== null && frames(m.hello) !== null;
        const [direct, via] = await Promise.all([run(MY_PORT, m, clean), run(proxy.port, m, clean)]);
        const fp = framingProblem(via.received);
        if (fp !== null) failures.push(describeMutant(m, `reply framing: ${fp}`));
        // A cleanly framed stream of commands with sequence id 0 and an intact handshake: MariaDB's
        // answers and the proxy's are the same packets (hits replay them whole), so the proxy must
        // have sent as many before the sentinel — fewer means it left pipelined commands unanswered.
        const plain = clean && m.ops.every((o) => !o.startsWith('hello') && !o.startsWith('seq'));
        if (plain && via.packetsBefore < direct.packetsBefore && !via.closedByServer) {
          failures.push(describeMutant(m, `MariaDB sent ${direct.packetsBefore} packets for the stream, the proxy ${via.packetsBefore} and kept the connection open (pipelined commands left unanswered)`));
        }
        if (clean && direct.sentinel !== 'silent' && direct.sentinel !== 'not-sent' && via.sentinel === 'silent') {
          failures.push(describeMutant(m, `MariaDB ${direct.sentinel} the sentinel query, the proxy neither answered nor closed (hung client)`));
        }
        if (process.env['FUZZ_DEBUG'] !== undefined) console.info(`[fuzz ${m.iteration}] ${m.corpus} ${m.ops.join('+')} direct=${direct.sentinel}/${direct.closedByServer} via=${via.sentinel}/${via.closedByServer}`);
        if (process.env['FUZZ_DEBUG'] === '2') console.info(`  direct: ${summary(direct.received)}\n  via:    ${summary(via.received)}`);
      }
    };
    const checker = async (): Promise<void> => {
      // Every CHECK_EVERY iterations (roughly), a normal client must be served.
      while (next < todo.length) {
        if (next - sinceCheck >= CHECK_EVERY) {
          sinceCheck = next;
          await expectHealthy(`around iteration ${next}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await Promise.all([...Array.from({ length: CONCURRENCY }, worker), checker()]);

    await expectHealthy('after all iterations');
    const leftover = (await waitFor(async () => (await fuzzUserConnections()) === 0, 8_000)) ? 0 : await fuzzUserConnections();
    const leaked = leftover === 0 ? [] : await directSql<unknown[]>('SELECT ID, COMMAND, STATE, TIME, LEFT(INFO, 80) AS info FROM information_schema.PROCESSLIST WHERE USER = ?', [FUZZ_USER]);
    expect.soft(processFaults, 'the process saw no uncaught exception').toEqual([]);
    expect.soft(failures.slice(0, 5).join('\n\n'), `${failures.length} failing iterations`).toBe('');
    expect.soft(leaked, 'fuzz-user connections left on MariaDB after every client went').toEqual([]);
    const sessionsLeft = async (): Promise<number> => {
      const h = (await proxy.stats()) as unknown as { connections?: Record<string, number> };
      return h.connections?.['mysql'] ?? -1;
    };
    await waitFor(async () => (await sessionsLeft()) === 0, 5_000);
    expect.soft(await sessionsLeft(), 'sessions left in the proxy (admin /stats connections)').toBe(0);
    if (process.env['FUZZ_DEBUG'] !== undefined) console.info(`[fuzz] ${todo.length} iterations in ${Date.now() - started} ms`);
  }, 120_000);
});
