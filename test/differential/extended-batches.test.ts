// Review: extended-protocol batches of unusual shapes, differential against
// the database (same messages on fresh sessions, replies compared), and
// what the cache holds afterwards: a later plain read must get the rows the
// database returns, never a partial or empty result stored by a batch.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { directQuery, dropTables, endDirect, uniqueName } from '../helpers/db.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { B, DP, DS, E, H, P, Q, S, Wire, differential, names, warmWire, type Msg } from '../helpers/transcript.js';

const T = uniqueName('rv_batch');
const ROWS = 10;
let proxy: TestProxy;

const byId = (id: number) => `SELECT v FROM ${T} WHERE id = ${id}`;
const WARM = [`SELECT v FROM ${T} WHERE id = 10`];
const stats = () => proxy.stats();
const rows = (msgs: Msg[]) => msgs.filter((m) => m.name === 'dataRow').map((m) => (m['fields'] as unknown[])[0]);

/** What a fresh proxy session gets for `send` (after the warm-up read). */
async function freshly(send: Buffer[]): Promise<Msg[]> {
  const w = await Wire.open(proxy.port);
  try {
    await w.query(WARM[0]!);
    return await w.send(send, 1, { timeoutMs: 3_000 });
  } finally {
    w.close();
  }
}

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL)`);
  await directQuery(`INSERT INTO ${T} SELECT g, 'v' || g FROM generate_series(1, ${ROWS}) g`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('portals run in steps', () => {
  it('Execute with a row limit then Execute to the end in one batch: the rest is never stored as the whole result', async () => {
    const sql = `SELECT id FROM ${T} ORDER BY id`;
    const { proxy: viaProxy, db } = await differential(proxy.port, [{ send: [P(sql), B(), E('', 3), E('', 0), S()] }], WARM);
    expect(viaProxy).toEqual(db);
    // The same statement, run whole, on fresh sessions: every row, every time.
    for (let i = 0; i < 3; i += 1) {
      const reply = await freshly([P(sql), B(), E(), S()]);
      expect(rows(reply), `read ${i + 1}: all ${ROWS} rows`).toEqual(Array.from({ length: ROWS }, (_, k) => String(k + 1)));
    }
  });

  it('Execute with a row limit, then again on the same portal in later batches inside a transaction: as from the database', async () => {
    const sql = `SELECT id FROM ${T} ORDER BY id`;
    await warmWire(proxy.port, stats, [P(sql), B(), E(), S()]);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: Q('BEGIN') },
        { send: [P(sql), B('', [], 'rv_cur'), E('rv_cur', 3), S()] },
        { send: [E('rv_cur', 3), S()] },
        { send: [DP('rv_cur'), E('rv_cur', 0), S()] },
        { send: [E('rv_cur', 0), S()] },
        { send: Q('COMMIT') },
        { send: [P(sql), B(), E(), S()] },
      ],
      WARM,
    );
    expect(viaProxy).toEqual(db);
  });
});

describe('pipelines', () => {
  it('several Executes before one Sync, an error mid-batch, then more batches: as from the database, then hits are right', async () => {
    const a = byId(1);
    const b = byId(2);
    await warmWire(proxy.port, stats, [P(a), B(), E(), S()]);
    const script = [
      { send: [P(a), B(), E(), P(b), B(), E(), P(a, 'rv_n1'), B('rv_n1'), E(), S()] },
      {
        send: [
          P(a), B(), E(), S(),
          P(`SELECT 1/(id - id) FROM ${T} WHERE id = 3`), B(), E(), P(b), B(), E(), S(), // error: the rest is skipped
          P(b), B(), E(), S(),
        ],
        readies: 3,
      },
      { send: [B('rv_n1'), E(), S()] },
      { send: [P(b), B(), DP(), E(), S(), P(a), DS(''), B(), DP(), E(), S()], readies: 2 },
    ];
    const first = await differential(proxy.port, script, WARM);
    expect(first.proxy).toEqual(first.db);
    const again = await differential(proxy.port, script, WARM); // now from cache where it can be
    expect(again.proxy).toEqual(again.db);
  });

  it('Flush-driven flow (Parse, Describe S, Flush, then Bind/Execute/Sync), miss then hit: as from the database', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = $1`;
    const described = (msgs: Msg[]) => msgs.some((m) => m.name === 'rowDescription' || m.name === 'error');
    const script = [
      { send: [P(sql, 'rv_f1', [23]), DS('rv_f1'), H()], until: described },
      { send: [B('rv_f1', ['2']), E(), S()] },
      { send: [B('rv_f1', ['3']), DP(), E(), S()] },
      { send: [P(sql, '', [23]), DS(''), H()], until: described },
      { send: [B('', ['4']), DP(), E(), S()] },
    ];
    for (let round = 1; round <= 3; round += 1) {
      const { proxy: viaProxy, db } = await differential(proxy.port, script, WARM);
      expect(viaProxy, `round ${round}`).toEqual(db);
    }
  });

  it('an empty query in the extended protocol: EmptyQueryResponse and NoData, as from the database', async () => {
    const { proxy: viaProxy, db } = await differential(proxy.port, [
      { send: [P(''), B(), DP(), E(), S()] },
      { send: [P(''), DS(), S()] },
      { send: [Q('')] },
    ]);
    expect(names(db[0]!)).toContain('emptyQuery');
    expect(viaProxy).toEqual(db);
  });

  it('COPY FROM STDIN through Parse/Bind/Execute loads the rows and invalidates reads of the table', async () => {
    const run = async (port: number): Promise<Msg[][]> => {
      const C = uniqueName('rv_copy');
      await directQuery(`CREATE TABLE ${C} (id int, v text)`);
      const w = await Wire.open(port);
      try {
        const out: Msg[][] = [];
        const count = `SELECT count(*) FROM ${C}`;
        out.push(await w.send([P(count), B(), E(), S()]));
        out.push(await w.send([P(count), B(), E(), S()]));
        // The data after Execute, then Sync (libpq's order).
        out.push(await w.send([P(`COPY ${C} FROM STDIN`), B(), E(), serialize.copyData(Buffer.from('1\ta\n2\tb\n')), serialize.copyDone(), S()]));
        out.push(await w.send([P(count), B(), E(), S()]));
        // Bad data: the database's error, and the session goes on.
        out.push(await w.send([P(`COPY ${C} FROM STDIN`), B(), E(), serialize.copyData(Buffer.from('x\ty\n')), serialize.copyDone(), S()]));
        out.push(await w.send([P(count), B(), E(), S()]));
        return out;
      } finally {
        w.close();
        await dropTables(C);
      }
    };
    const viaProxy = await run(proxy.port);
    const db = await run(Number(process.env['SQLCACHED_TEST_PG_PORT'] ?? 5432));
    expect(viaProxy).toEqual(db);
    expect(rows(viaProxy[3]!)).toEqual(['2']);
  });
});

describe('a simple Query between Parse and Sync', () => {
  it('on a miss: replies as from the database, and the cache never holds an empty result for it', async () => {
    const q = byId(3);
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [{ send: [P(byId(2), 'rv_mid'), Q(q), S()], readies: 2 }],
      WARM,
    );
    expect(viaProxy).toEqual(db);
    for (let i = 0; i < 2; i += 1) {
      const reply = await freshly([Q(q)]);
      expect(names(reply), `later read ${i + 1} of "${q}" through the proxy`).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
      expect(rows(reply)).toEqual(['v3']);
    }
  });

  it('a lone Flush, then simple Queries: each gets its own rows, no hang, and other sessions get their own rows too', async () => {
    const a = byId(5);
    const b = byId(6);
    const script = [
      { send: [H()], readies: 0 }, // valid: nothing to flush, no reply
      { send: Q(a) },
      { send: Q(b) },
      { send: Q(a), timeoutMs: 2_000 },
      { send: Q(b), timeoutMs: 2_000 },
    ];
    const { proxy: viaProxy, db } = await differential(proxy.port, script, WARM);
    expect.soft(viaProxy).toEqual(db);
    // What the cache now holds for each text, read by sessions that never sent a Flush.
    expect(rows(await freshly([Q(a)])), `"${a}" on a fresh session`).toEqual(['v5']);
    expect(rows(await freshly([Q(b)])), `"${b}" on a fresh session`).toEqual(['v6']);
  });

  it('on a hit: its reply comes at once, before the Sync is even sent (no hang), in the database\'s order', async () => {
    const q = byId(4);
    await warmWire(proxy.port, stats, Q(q));
    const { proxy: viaProxy, db } = await differential(
      proxy.port,
      [
        { send: [P(byId(2), 'rv_mid2'), Q(q)], readies: 1, timeoutMs: 2_000 },
        { send: [S()] },
      ],
      WARM,
    );
    expect(names(db[0]!)).toEqual(['parseComplete', 'rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    expect(viaProxy[0], 'the Query is answered without waiting for a Sync').toEqual(db[0]);
    expect(viaProxy).toEqual(db);
  });
});
