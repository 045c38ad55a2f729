// The concurrent read/write consistency test of the core, run with
// `cache.store: redis` and two instances sharing it: writers through A and
// through B, readers through both. Every write raises a row's `ver` to a
// fresh, globally increasing number (GREATEST, so a row's ver never goes
// down); once PostgreSQL has acknowledged it — through either instance —
// that number is the row's floor. A read must never return a ver below the
// floor recorded when it was sent (DESIGN promise 2 across instances), nor a
// ver only a rolled-back transaction wrote.
//
// The control runs the same checks while the writes go straight to
// PostgreSQL behind both proxies (default TTL 60 s): it must find stale
// reads, or the checks prove nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { connectClient, directQuery, directUrl, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type Stats, type TestProxy } from '../../helpers/proxy.js';
import { mulberry32 } from '../../helpers/stress.js';

const KEYS = 12;
const WRITERS_PER_INSTANCE = 2;
const READERS_PER_INSTANCE = 3;
const DURATION_MS = Number(process.env['SQLCACHED_CONCURRENCY_MS'] ?? 4_000);
const CONTROL_MS = 1_000;
const SEED = Number(process.env['SQLCACHED_SEED'] ?? Date.now() % 1_000_000);
const PREFIX = uniqueName('rcons');
const created: string[] = [];
let a: TestProxy;
let b: TestProxy;

beforeAll(async () => {
  a = await startProxy({ redis: { keyPrefix: PREFIX }, defaultTtlMs: 60_000 });
  b = await startProxy({ redis: { keyPrefix: PREFIX }, defaultTtlMs: 60_000 });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await dropTables(...created);
  await endDirect();
});

/** What every client knows: the highest acknowledged ver per row, and vers only rolled-back transactions wrote. */
class Ledger {
  private next = 0;
  readonly acked = new Map<string, number>();
  readonly rolledBack = new Set<number>();
  readonly violations: string[] = [];
  readonly ops = { reads: 0, crossReads: 0, writes: 0, commits: 0, rollbacks: 0, deadlocks: 0 };
  fresh(): number {
    this.next += 1;
    return this.next;
  }
  ack(table: string, id: number, ver: number): void {
    const key = `${table}:${id}`;
    if ((this.acked.get(key) ?? 0) < ver) this.acked.set(key, ver);
  }
  floor(table: string, id: number): number {
    return this.acked.get(`${table}:${id}`) ?? 0;
  }
  check(who: string, table: string, id: number, ver: number | undefined, floor: number): void {
    if (ver === undefined) this.violations.push(`${who} ${table}:${id}: row missing`);
    else if (ver < floor) this.violations.push(`${who} ${table}:${id}: read ver ${ver}, but ver ${floor} was acknowledged before the read was sent`);
    else if (this.rolledBack.has(ver)) this.violations.push(`${who} ${table}:${id}: read ver ${ver}, which only a rolled-back transaction wrote`);
  }
}

const isDeadlock = (err: unknown): boolean => ['40P01', '40001'].includes((err as { code?: string }).code ?? '');

class Client {
  private readonly rnd: () => number;
  constructor(
    readonly name: string,
    readonly c: pg.Client,
    /** A client on the other instance: a writer reads its write back there at once. */
    readonly other: pg.Client | null,
    readonly tables: string[],
    readonly ledger: Ledger,
    /** Control: where writes go instead of `c` (straight to PostgreSQL). */
    readonly writeVia: pg.Pool | null,
    seed: number,
  ) {
    this.rnd = mulberry32(seed);
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }
  private id(): number {
    return 1 + Math.floor(this.rnd() * KEYS);
  }
  private async select(c: pg.Client, sql: string, params: number[]): Promise<{ id?: number; ver: number }[]> {
    if (this.rnd() < 0.5) return (await c.query(sql, params)).rows;
    return (await c.query(sql.replace(/\$(\d+)/g, (_m, n: string) => String(params[Number(n) - 1])))).rows;
  }

  async pointRead(c: pg.Client = this.c, who = `${this.name} point read`): Promise<void> {
    const t = this.pick(this.tables);
    const id = this.id();
    const floor = this.ledger.floor(t, id);
    const rows = await this.select(c, `SELECT ver FROM ${t} WHERE id = $1`, [id]);
    this.ledger.check(who, t, id, rows[0]?.ver, floor);
    this.ledger.ops.reads += 1;
  }

  async rangeRead(): Promise<void> {
    const t = this.pick(this.tables);
    const floors = Array.from({ length: KEYS }, (_, k) => this.ledger.floor(t, k + 1));
    const rows = await this.select(this.c, `SELECT id, ver FROM ${t} WHERE id BETWEEN $1 AND $2 ORDER BY id`, [1, KEYS]);
    const byId = new Map(rows.map((r) => [r.id!, r.ver]));
    for (let id = 1; id <= KEYS; id += 1) this.ledger.check(`${this.name} range read`, t, id, byId.get(id), floors[id - 1]!);
    this.ledger.ops.reads += 1;
  }

  /** One autocommit write of a fresh ver; acknowledged → the ledger's floor; then read back here and on the other instance. */
  async write(): Promise<void> {
    const t = this.pick(this.tables);
    const ta = t;
    const tb = this.tables[(this.tables.indexOf(t) + 1) % this.tables.length]!;
    const id = this.id();
    const ver = this.ledger.fresh();
    const form = this.rnd();
    const w = this.writeVia ?? this.c;
    this.ledger.ops.writes += 1;
    if (form < 0.3) {
      await w.query(`UPDATE ${t} SET ver = GREATEST(ver, ${ver}) WHERE id = ${id}`);
      this.ledger.ack(t, id, ver);
    } else if (form < 0.6) {
      await w.query(`UPDATE ${t} SET ver = GREATEST(ver, $1) WHERE id = $2`, [ver, id]);
      this.ledger.ack(t, id, ver);
    } else if (form < 0.8) {
      await w.query(`INSERT INTO ${t} (id, ver) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET ver = GREATEST(${t}.ver, EXCLUDED.ver)`, [id, ver]);
      this.ledger.ack(t, id, ver);
    } else {
      // One statement writing both tables (a data-modifying CTE).
      await w.query(
        `WITH x AS (UPDATE ${ta} SET ver = GREATEST(ver, $1) WHERE id = $2 RETURNING id) UPDATE ${tb} SET ver = GREATEST(ver, $1) WHERE id = $2`,
        [ver, id],
      );
      this.ledger.ack(ta, id, ver);
      this.ledger.ack(tb, id, ver);
    }
    // Read-your-write on the writer's own connection, and at once on the other instance.
    const floor = this.ledger.floor(t, id);
    const mine = (await this.c.query<{ ver: number }>(`SELECT ver FROM ${t} WHERE id = ${id}`)).rows[0]?.ver;
    this.ledger.check(`${this.name} read-your-write`, t, id, mine, floor);
    if (this.other !== null) {
      const there = (await this.other.query<{ ver: number }>(`SELECT ver FROM ${t} WHERE id = $1`, [id])).rows[0]?.ver;
      this.ledger.check(`${this.name} read on the other instance right after its write`, t, id, there, floor);
      this.ledger.ops.crossReads += 1;
    }
  }

  /** BEGIN, 2–3 writes in (table, id) order, then COMMIT (acknowledged → floors) or ROLLBACK (never visible). */
  async transaction(): Promise<void> {
    const targets = Array.from({ length: 2 + Math.floor(this.rnd() * 2) }, () => [this.tables.indexOf(this.pick(this.tables)), this.id()] as const)
      .sort((x, y) => x[0] - y[0] || x[1] - y[1])
      .filter((x, i, xs) => i === 0 || x[0] !== xs[i - 1]![0] || x[1] !== xs[i - 1]![1]);
    const written: [string, number, number][] = [];
    const c = this.c;
    await c.query('BEGIN');
    try {
      for (const [ti, id] of targets) {
        const t = this.tables[ti]!;
        const ver = this.ledger.fresh();
        await c.query(`UPDATE ${t} SET ver = GREATEST(ver, $1) WHERE id = $2`, [ver, id]);
        written.push([t, id, ver]);
        const seen = (await c.query<{ ver: number }>(`SELECT ver FROM ${t} WHERE id = ${id}`)).rows[0]?.ver;
        if (seen === undefined || seen < ver) this.ledger.violations.push(`${this.name} inside its transaction ${t}:${id}: read ver ${seen}, wrote ${ver}`);
      }
      if (this.rnd() < 0.35) {
        for (const [, , ver] of written) this.ledger.rolledBack.add(ver);
        await c.query('ROLLBACK');
        this.ledger.ops.rollbacks += 1;
        return;
      }
      await c.query('COMMIT');
      for (const [t, id, ver] of written) this.ledger.ack(t, id, ver);
      this.ledger.ops.commits += 1;
    } catch (err) {
      for (const [, , ver] of written) this.ledger.rolledBack.add(ver);
      await c.query('ROLLBACK').catch(() => {});
      if (isDeadlock(err)) this.ledger.ops.deadlocks += 1;
      else throw err;
    }
  }

  async run(deadline: number, role: 'reader' | 'writer'): Promise<void> {
    while (Date.now() < deadline) {
      const dice = this.rnd();
      try {
        if (role === 'reader') await (dice < 0.7 ? this.pointRead() : this.rangeRead());
        else if (dice < 0.6 || this.writeVia !== null) await this.write();
        else if (dice < 0.8) await this.transaction();
        else await this.pointRead();
        // Writers pause a little so the cache has windows in which it answers (else every read is a miss and proves little).
        if (role === 'writer') await new Promise((resolve) => setTimeout(resolve, Math.floor(this.rnd() * 6)));
      } catch (err) {
        if (isDeadlock(err)) this.ledger.ops.deadlocks += 1;
        else this.ledger.violations.push(`${this.name}: unexpected error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  }
}

interface RunResult {
  ledger: Ledger;
  tables: string[];
  hits: { a: number; b: number };
  storeErrors: number;
}

async function run(ms: number, control: boolean): Promise<RunResult> {
  const tables = [uniqueName('rcons_a'), uniqueName('rcons_b'), uniqueName('rcons_c'), uniqueName('rcons_d')];
  created.push(...tables);
  for (const t of tables) {
    await directQuery(`CREATE TABLE ${t} (id int PRIMARY KEY, ver bigint NOT NULL)`);
    await directQuery(`INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, ${KEYS}) g`);
  }
  const ledger = new Ledger();
  const conns: pg.Client[] = [];
  const open = async (p: TestProxy): Promise<pg.Client> => {
    const c = await connectClient(p.url());
    conns.push(c);
    return c;
  };
  const pool = control ? new pg.Pool({ connectionString: directUrl(), max: 4 }) : null;
  pool?.on('error', () => {});
  const workers: Promise<void>[] = [];
  const before: [Stats, Stats] = [await a.stats(), await b.stats()];
  try {
    const clients: [Client, 'reader' | 'writer'][] = [];
    let k = 0;
    for (const [p, q, name] of [
      [a, b, 'A'],
      [b, a, 'B'],
    ] as const) {
      for (let i = 0; i < WRITERS_PER_INSTANCE; i += 1) {
        clients.push([new Client(`writer ${name}${i}`, await open(p), await open(q), tables, ledger, pool, SEED * 31 + k++), 'writer']);
      }
      for (let i = 0; i < READERS_PER_INSTANCE; i += 1) {
        clients.push([new Client(`reader ${name}${i}`, await open(p), null, tables, ledger, pool, SEED * 31 + k++), 'reader']);
      }
    }
    const deadline = Date.now() + ms;
    for (const [c, role] of clients) workers.push(c.run(deadline, role));
    await Promise.all(workers);
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => {})));
    await pool?.end();
  }
  const after: [Stats, Stats] = [await a.stats(), await b.stats()];
  const errs = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? 0);
  const r: RunResult = {
    ledger,
    tables,
    hits: { a: after[0].hits - before[0].hits, b: after[1].hits - before[1].hits },
    storeErrors: errs(after[0]) - errs(before[0]) + errs(after[1]) - errs(before[1]),
  };
  console.info(
    `[redis consistency${control ? ' CONTROL' : ''}] seed ${SEED}: ${JSON.stringify(ledger.ops)}, hits A ${r.hits.a} B ${r.hits.b}, ` +
      `misses A ${after[0].misses - before[0].misses} B ${after[1].misses - before[1].misses}, store errors ${r.storeErrors}, violations ${ledger.violations.length}`,
  );
  return r;
}

describe(`store: redis, two instances, ${WRITERS_PER_INSTANCE * 2} writers and ${READERS_PER_INSTANCE * 2} readers over both, ~${DURATION_MS} ms (seed ${SEED})`, () => {
  it('no read, through either instance, returns a ver older than the last write acknowledged (through either instance) before it was sent, or a rolled-back one; at the end both instances equal PostgreSQL', async () => {
    const { ledger, tables, hits, storeErrors } = await run(DURATION_MS, false);
    expect(ledger.violations.slice(0, 20), `${ledger.violations.length} violations (seed ${SEED})`).toEqual([]);
    expect(ledger.ops.reads).toBeGreaterThan(200);
    expect(ledger.ops.writes).toBeGreaterThan(50);
    expect(ledger.ops.crossReads).toBeGreaterThan(50);
    expect(ledger.ops.commits + ledger.ops.rollbacks).toBeGreaterThan(5);
    expect(hits.a, 'A served from the shared cache during the run').toBeGreaterThan(0);
    expect(hits.b, 'B served from the shared cache during the run').toBeGreaterThan(0);
    expect(storeErrors, 'Redis was up: no store errors').toBe(0);

    for (const p of [a, b]) {
      const check = await connectClient(p.url());
      try {
        for (const t of tables) {
          const sql = `SELECT id, ver FROM ${t} ORDER BY id`;
          const truth = (await directQuery(sql)).rows;
          expect((await check.query(sql)).rows, `${t} through ${p === a ? 'A' : 'B'} equals PostgreSQL`).toEqual(truth);
          expect((await check.query(sql)).rows, `${t} through ${p === a ? 'A' : 'B'} again (cache)`).toEqual(truth);
          for (const row of truth as { id: number; ver: string }[]) {
            expect(Number(row.ver), `${t}:${row.id} holds at least its last acknowledged ver`).toBeGreaterThanOrEqual(ledger.floor(t, row.id));
          }
        }
      } finally {
        await check.end();
      }
    }
  }, 30_000);

  it('control: the same checker flags stale reads when the writes go straight to PostgreSQL behind both proxies (TTL 60 s)', async () => {
    const { ledger, hits } = await run(CONTROL_MS, true);
    expect(hits.a + hits.b, 'the control read from the cache').toBeGreaterThan(0);
    expect(ledger.violations.length, 'the checker detects stale reads').toBeGreaterThan(0);
    expect(ledger.violations.every((v) => !v.includes('unexpected error')), ledger.violations.find((v) => v.includes('unexpected error'))).toBe(true);
    console.info(`[redis consistency] sample control report: ${ledger.violations[0]}`);
  }, 30_000);
});
