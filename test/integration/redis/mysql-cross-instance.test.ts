// Two MySQL listeners (two proxy instances) in front of the same MariaDB,
// sharing the local Redis under one key prefix: a write acknowledged through
// A is read at once through B, text protocol and server-side prepared
// statements, with background readers on both instances; B answers from the
// shared cache between writes. The control sends the writes straight to
// MariaDB: the same checks must then find stale reads.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { connectMysql, directSql, dropMyTables, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { startMysqlProxy, type Stats, type TestProxy } from '../../helpers/proxy.js';
import { mulberry32, SEED } from '../../helpers/stress.js';

const HANDOFFS = Number(process.env['SQLCACHED_REDIS_MYSQL_HANDOFFS'] ?? 1_000);
const TABLES = [uniqueName('rmx_a'), uniqueName('rmx_b')];
const PREFIX = uniqueName('rmx');
const LANES = TABLES.flatMap((t) => [1, 2].map((id) => ({ t, id })));
let a: TestProxy;
let b: TestProxy;

beforeAll(async () => {
  for (const t of TABLES) {
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
    await directSql(`INSERT INTO ${t} SELECT seq, 0 FROM seq_1_to_4`);
  }
  a = await startMysqlProxy({ redis: { keyPrefix: PREFIX } });
  b = await startMysqlProxy({ redis: { keyPrefix: PREFIX } });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await dropMyTables(...TABLES);
  await endMyDirect();
});

const errs = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? 0);

async function handoffs(total: number, control: boolean): Promise<{ violations: string[]; handoffs: number; hitsA: number; hitsB: number; storeErrors: number }> {
  const acked = new Map<string, number>(LANES.map((l) => [`${l.t}:${l.id}`, 0]));
  const violations: string[] = [];
  const conns: MyConnection[] = [];
  const open = async (p: TestProxy | null): Promise<MyConnection> => {
    const c = await connectMysql(p?.port);
    conns.push(c);
    return c;
  };
  let done = false;
  let count = 0;
  const violate = (s: string): void => {
    violations.push(`[mysql cross-instance${control ? ' CONTROL' : ''}] seed=${SEED} ${s}`);
    if (violations.length >= 10) done = true;
  };
  const read = async (c: MyConnection, t: string, id: number, prepared: boolean): Promise<number | undefined> => {
    const [rows] = prepared ? await c.execute(`SELECT v FROM ${t} WHERE id = ?`, [id]) : await c.query(`SELECT v FROM ${t} WHERE id = ${id}`);
    return (rows as { v: number }[])[0]?.v;
  };

  const lane = async (l: { t: string; id: number }, i: number): Promise<void> => {
    const rnd = mulberry32(SEED * 613 + i);
    const wa = await open(control ? null : a);
    const rb = await open(b);
    const key = `${l.t}:${l.id}`;
    // Start from what MariaDB holds (an earlier case may have written the row).
    let n = ((await directSql(`SELECT v FROM ${l.t} WHERE id = ?`, [l.id])) as { v: number }[])[0]!.v;
    acked.set(key, n);
    for (let k = 0; k < Math.ceil(total / LANES.length) && !done; k += 1) {
      try {
        for (let j = 0; j < 2; j += 1) {
          const pre = await read(rb, l.t, l.id, rnd() < 0.5);
          if (pre !== n) violate(`${key} handoff ${k}: B read ${pre} before the write, expected ${n}`);
        }
        n += 1 + Math.floor(rnd() * 3);
        if (rnd() < 0.5) await wa.query(`UPDATE ${l.t} SET v = ${n} WHERE id = ${l.id}`);
        else await wa.execute(`UPDATE ${l.t} SET v = ? WHERE id = ?`, [n, l.id]);
        acked.set(key, n);
        const prepared = rnd() < 0.5;
        const got = await read(rb, l.t, l.id, prepared);
        count += 1;
        if (got !== n) violate(`${key} handoff ${k}: A acknowledged v=${n}, then B read v=${got} (${prepared ? 'prepared' : 'text'})`);
      } catch (err) {
        violate(`${key}: client error ${(err as { errno?: number }).errno ?? ''} ${(err as Error).message}`);
        return;
      }
    }
  };

  let lanesDone = false;
  const background = async (p: TestProxy, name: string, j: number): Promise<void> => {
    const rnd = mulberry32(SEED * 7 + j);
    const c = await open(p);
    while (!done && !lanesDone) {
      const l = LANES[Math.floor(rnd() * LANES.length)]!;
      const floor = acked.get(`${l.t}:${l.id}`)!;
      try {
        const got = await read(c, l.t, l.id, rnd() < 0.5);
        if (got === undefined || got < floor) violate(`background reader ${j} on ${name}: ${l.t}:${l.id} read v=${got}, but v=${floor} was acknowledged before the read was sent`);
      } catch (err) {
        violate(`background reader ${j} on ${name}: client error ${(err as { errno?: number }).errno ?? ''} ${(err as Error).message}`);
        return;
      }
    }
  };

  const [a0, b0] = await Promise.all([a.stats(), b.stats()]);
  try {
    const bg = [background(a, 'A', 0), background(b, 'B', 1), background(a, 'A', 2), background(b, 'B', 3)];
    await Promise.all(LANES.map((l, i) => lane(l, i))).finally(() => {
      lanesDone = true;
    });
    await Promise.all(bg);
  } finally {
    lanesDone = true;
    await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())));
  }
  const [a1, b1] = await Promise.all([a.stats(), b.stats()]);
  const r = { violations, handoffs: count, hitsA: a1.hits - a0.hits, hitsB: b1.hits - b0.hits, storeErrors: errs(a1) - errs(a0) + errs(b1) - errs(b0) };
  console.info(
    `[mysql cross-instance${control ? ' CONTROL' : ''}] seed=${SEED} handoffs=${r.handoffs} hits A ${r.hitsA} B ${r.hitsB} misses A ${a1.misses - a0.misses} B ${b1.misses - b0.misses} store errors ${r.storeErrors} violations=${violations.length}`,
  );
  return r;
}

describe('MySQL: two instances, one Redis', () => {
  it(`${HANDOFFS} write-through-A / read-through-B handoffs (text and prepared) with background readers: always fresh, B served from the shared cache`, async () => {
    const r = await handoffs(HANDOFFS, false);
    expect(r.violations, `stale or failed reads (first 5):\n${r.violations.slice(0, 5).join('\n')}`).toEqual([]);
    expect(r.handoffs).toBeGreaterThanOrEqual(HANDOFFS);
    expect(r.hitsB, "B's reads were served from the shared cache between writes").toBeGreaterThan(0);
    expect(r.storeErrors).toBe(0);
    for (const t of TABLES) {
      const truth = ((await directSql(`SELECT id, v FROM ${t} ORDER BY id`)) as object[]).map((x) => ({ ...x }));
      for (const p of [a, b]) {
        const c = await connectMysql(p.port);
        try {
          for (let k = 0; k < 2; k += 1) {
            const [rows] = await c.query(`SELECT id, v FROM ${t} ORDER BY id`);
            expect((rows as object[]).map((x) => ({ ...x })), `${t} through ${p === a ? 'A' : 'B'} (read ${k + 1})`).toEqual(truth);
          }
        } finally {
          await c.end();
        }
      }
    }
  }, 60_000);

  it('control: writes straight to MariaDB (no instance sees them) are caught as stale by the same checks', async () => {
    const r = await handoffs(100, true);
    expect(r.hitsB).toBeGreaterThan(0);
    expect(r.violations.length).toBeGreaterThan(0);
    console.info(`[mysql cross-instance] sample control report: ${r.violations[0]}`);
  }, 30_000);
});
