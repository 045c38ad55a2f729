// Fail open when Redis hangs rather than dies (DESIGN promise 4): paused with
// SIGSTOP, or busy in DEBUG SLEEP, for ~2 s in the middle of a read workload
// on two instances. Connections stay open and nothing is answered, so only
// the command timeout protects the clients: a query must cost about one
// command_timeout (not the length of the hang, nor one timeout per store
// operation it makes), no client sees an error, nothing stale is served, and
// hits resume when Redis does. Plus the race a hang opens: A's bump is stuck
// in Redis' socket when A acknowledges its write; B's lookups sent after
// that acknowledgement must not be answered from the old versions. And a
// Redis slow for A alone for a moment (A's own link delayed past the command
// timeout, then fast again; B never notices): a write A acknowledges just
// after must reach B at once, even if A sends nothing more.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, dropTables, endDirect, waitFor } from '../../helpers/db.js';
import { both, bothServing, setupPair, stopStarted, storeErrors, type Setup, type Started } from '../../helpers/outage-workload.js';
import { redisCommand } from '../../helpers/redis.js';
import { SEED, sleep } from '../../helpers/stress.js';

const COMMAND_TIMEOUT_MS = 250;
/** Scheduling slack over one command timeout (two test workers share two cores). */
const SLACK_MS = 200;
const started: Started = { tables: [], servers: [], proxies: [], links: [] };
let ctx: Setup;

beforeAll(async () => {
  ctx = await setupPair(started, 'hang', { commandTimeoutMs: COMMAND_TIMEOUT_MS });
});

afterAll(async () => {
  await stopStarted(started);
  await dropTables(...started.tables);
  await endDirect();
});

async function hang(how: 'SIGSTOP' | 'DEBUG SLEEP'): Promise<void> {
  const { server, a, b, w } = ctx;
  await w.start();
  let window: [number, number] = [0, 0];
  let writeMs: number[] = [];
  try {
    expect(await bothServing(a, b, 20, 5_000), 'both instances were serving hits before the hang').toBe(true);
    const [aHung, bHung] = await both(a, b);
    let sleeping: Promise<unknown> = Promise.resolve();
    const t0 = w.mark(how);
    if (how === 'SIGSTOP') server.pause();
    else sleeping = redisCommand(server.port, ['DEBUG', 'SLEEP', '2'], 10_000).catch(() => {});
    try {
      await sleep(400);
      writeMs = [await w.write(a, 3), await w.write(b, 4)];
      await sleep(how === 'SIGSTOP' ? 1_200 : 900);
    } finally {
      if (how === 'SIGSTOP') server.resume();
      await sleeping;
    }
    window = [t0, w.mark(`the end of the ${how}`)];
    const [aAfter, bAfter] = await both(a, b);
    expect(storeErrors(aAfter) - storeErrors(aHung) + storeErrors(bAfter) - storeErrors(bHung), 'timeouts are counted as store errors').toBeGreaterThan(0);
    expect(await bothServing(a, b, 0, 5_000), 'hits resume on both instances after the hang').toBe(true);
    await sleep(300);
  } finally {
    await w.stop();
  }
  expect(w.lines(), `${w.findings.length} stale reads or client errors (seed ${SEED})`).toEqual([]);
  // Reads that started while Redis hung (and early enough to have met the hang for a whole timeout).
  const during = w.reads.filter((r) => r.start >= window[0] && r.start < window[1] - 300);
  const sorted = during.map((r) => r.ms).sort((x, y) => x - y);
  const slowest = sorted[sorted.length - 1] ?? NaN;
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const over = during.filter((r) => r.ms >= COMMAND_TIMEOUT_MS + SLACK_MS).length;
  console.info(
    `[hang ${how}] ${during.length} reads started during the hang: p50 ${p50.toFixed(1)} ms, max ${slowest.toFixed(1)} ms, ${over} over ${COMMAND_TIMEOUT_MS + SLACK_MS} ms; writes ${writeMs.map((m) => m.toFixed(1)).join(', ')} ms; command_timeout ${COMMAND_TIMEOUT_MS} ms`,
  );
  expect(during.length, 'clients kept getting answers during the hang').toBeGreaterThan(6);
  expect(slowest, `the slowest read started during the hang (command_timeout ${COMMAND_TIMEOUT_MS} ms; ${over} of ${during.length} reads took longer than ${COMMAND_TIMEOUT_MS + SLACK_MS} ms)`).toBeLessThan(
    COMMAND_TIMEOUT_MS + SLACK_MS,
  );
  expect(Math.max(...writeMs), `the slowest write during the hang (command_timeout ${COMMAND_TIMEOUT_MS} ms)`).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS);
  await w.expectFinalState();
}

describe('Redis hangs (paused, not dead)', () => {
  it('SIGSTOP for ~2 s: each client waits about one command_timeout at most, sees no error and no stale row; hits resume', async () => {
    await hang('SIGSTOP');
  }, 30_000);

  it('DEBUG SLEEP 2: the same', async () => {
    await hang('DEBUG SLEEP');
  }, 30_000);

  it('a write A acknowledged during a hang is never hidden from B lookups in flight when Redis resumes (B made no write: only the store can tell it)', async () => {
    const { server, a, b, w } = ctx;
    const row = 2;
    await w.start(8, 'B', [row]);
    try {
      for (let round = 0; round < 3; round += 1) {
        const b0 = await b.stats();
        expect(await waitFor(async () => (await b.stats()).hits - b0.hits > 10, 5_000), `round ${round}: B serves row ${row} from the cache`).toBe(true);
        server.pause();
        w.mark(`round ${round} pause`);
        try {
          await w.write(a, row); // acknowledged once A's bump times out; the bump itself waits in Redis' socket
          await sleep(100); // B's readers now have lookups in flight, sent after the acknowledgement
        } finally {
          server.resume();
          w.mark(`round ${round} resume`);
        }
        await sleep(400);
      }
    } finally {
      await w.stop();
    }
    expect(w.lines(), `${w.findings.length} stale reads or client errors (seed ${SEED})`).toEqual([]);
    await w.expectFinalState();
  }, 30_000);

  it("Redis slow for A alone for a moment (B unaffected): a write A acknowledges right after is never hidden from B, even if A stays idle afterwards", async () => {
    const s = await setupPair(started, 'slowa', { links: true, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    const { a, b, w } = s;
    const linkA = s.linkA!;
    const row = 1;
    const ca = await connectClient(a.url());
    await w.start(8, 'B', [row]);
    try {
      const b0 = await b.stats();
      expect(await waitFor(async () => (await b.stats()).hits - b0.hits > 10, 5_000), `B serves row ${row} from the cache`).toBe(true);
      const a0 = await a.stats();
      // A's way to Redis gets slower than its command timeout for one lookup, then is fine again.
      linkA.setDelay(COMMAND_TIMEOUT_MS + 200);
      w.mark("A's link slowed");
      expect((await ca.query<{ v: number }>(`SELECT v FROM ${w.t} WHERE id = $1`, [row])).rows[0]?.v, "A's read while its store is slow").toBe(w.acked[row]);
      linkA.setDelay(0);
      expect(storeErrors(await a.stats()) - storeErrors(a0), "A's lookup timed out (counted)").toBeGreaterThan(0);
      await sleep(COMMAND_TIMEOUT_MS + 250); // what was held has reached Redis; A's link is as fast as B's
      // Redis is reachable and fast for A now. A writes, gets its acknowledgement, and then sends nothing more.
      // Simple protocol (psql, ORMs that inline literals): one statement, one bump before the acknowledgement.
      const v = w.acked[row]! + 1;
      const r = await ca.query(`UPDATE ${w.t} SET v = ${v} WHERE id = ${row}`);
      expect(r.rowCount).toBe(1);
      w.acked[row] = v;
      w.mark("A's write was acknowledged");
      await sleep(700);
    } finally {
      await w.stop();
      await ca.end().catch(() => {});
    }
    const stale = w.findings.length;
    console.info(`[slow for A] ${w.reads.length} reads on B, ${stale} findings`);
    expect(w.lines(), `${stale} stale reads or client errors on B after A's acknowledged write (seed ${SEED})`).toEqual([]);
    await w.expectFinalState();
  }, 30_000);
});
