// The concurrency workload of the core issue, shared by the plain run
// (test/integration/postgres/concurrency.test.ts) and the run on a schema
// with views and FK cascades (test/integration/dependencies/pg-concurrency.test.ts).
// 16 clients hammer 3 tables through one proxy for ~5 s: point and range
// reads, updates, inserts, deletes, transactions committed and rolled back.
// At every read a client must see at least what it itself wrote and saw
// acknowledged (read-your-writes); at the end every relation read through
// the proxy equals the relation read directly.
//
// With `dependants`, every table also has a view over it, a child table with
// ON DELETE CASCADE and a view over the child: reads go through the views at
// random, and a client that deleted one of its rows must never see that
// row's child again (the cascade's invalidation).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from './db.js';
import { startProxy, type TestProxy } from './proxy.js';

export function concurrencySuite(opts: { dependants: boolean }): void {
const TABLES = opts.dependants ? [uniqueName('cdep_a'), uniqueName('cdep_b'), uniqueName('cdep_c')] : [uniqueName('conc_a'), uniqueName('conc_b'), uniqueName('conc_c')];
const CLIENTS = 16;
const DURATION_MS = Number(process.env['SQLCACHED_CONCURRENCY_MS'] ?? 5_000);
const SHARED = 20; // ids 1..20: updated by everyone, never deleted
const OWN = 40; // client k owns ids (k+1)*1000+1 .. (k+1)*1000+OWN: only k writes them
const SEED = Number(process.env['SQLCACHED_SEED'] ?? Date.now() % 1_000_000);
let proxy: TestProxy;

/** What a client knows from its own acknowledged writes. */
interface Known {
  present: boolean;
  ver: number; // own rows: exact; shared rows: a lower bound
  v: number; // own rows only
  maxVer: number; // highest version this id ever had (re-inserts continue from it)
  childGone?: boolean; // own rows: deleted once, so its cascaded child row is gone for good
}
type Knowledge = Map<string, Known>; // `${table}:${id}`

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  id: number;
  ver: number;
  v: number;
}

class Worker {
  readonly known: Knowledge = new Map();
  readonly violations: string[] = [];
  readonly ops = { reads: 0, writes: 0, commits: 0, rollbacks: 0, deadlocks: 0 };
  private readonly rnd: () => number;

  constructor(
    readonly k: number,
    readonly c: pg.Client,
  ) {
    this.rnd = mulberry32(SEED * 31 + k);
    for (const t of TABLES) for (let i = 1; i <= OWN; i += 1) this.known.set(`${t}:${this.ownId(i)}`, { present: true, ver: 1, v: 0, maxVer: 1 });
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }
  ownId(i: number): number {
    return (this.k + 1) * 1000 + i;
  }
  private isOwn(id: number): boolean {
    return id > SHARED;
  }
  private anyId(): number {
    return this.rnd() < 0.3 ? 1 + Math.floor(this.rnd() * SHARED) : this.ownId(1 + Math.floor(this.rnd() * OWN));
  }

  /** SELECT with parameters (extended) or inlined literals (simple), at
   * random; a third of the time read again at once the same way, so some
   * reads can be hits even while 16 clients keep writing. */
  private async select(sql: string, params: number[], again?: (rows: Row[]) => void): Promise<Row[]> {
    const extended = this.rnd() < 0.5;
    const inlined = sql.replace(/\$(\d+)/g, (_m, n: string) => String(params[Number(n) - 1]));
    const run = async () => (extended ? (await this.c.query<Row>(sql, params)).rows : (await this.c.query<Row>(inlined)).rows);
    const rows = await run();
    if (again !== undefined && this.rnd() < 0.33) {
      again(rows);
      return run();
    }
    return rows;
  }

  private check(t: string, id: number, row: Row | undefined, known: Knowledge, where: string): void {
    const k = known.get(`${t}:${id}`);
    if (k === undefined) return;
    const say = (what: string) => this.violations.push(`client ${this.k} ${where} ${t}:${id}: ${what}`);
    if (this.isOwn(id)) {
      if (k.present && row === undefined) say(`missing, but it inserted it (ver ${k.ver})`);
      else if (!k.present && row !== undefined) say(`present (ver ${row.ver}), but it deleted it`);
      else if (row !== undefined && (row.ver !== k.ver || row.v !== k.v)) say(`read ver ${row.ver} v ${row.v}, wrote ver ${k.ver} v ${k.v}`);
    } else if (row === undefined || row.ver < k.ver) {
      say(`read ver ${row?.ver ?? 'none'}, older than its own write ver ${k.ver}`);
    }
  }

  /** The table itself, or (with dependants) at random the view over it. */
  private source(t: string): string {
    return opts.dependants && this.rnd() < 0.5 ? `${t}_v` : t;
  }

  private async pointRead(known: Knowledge, where: string): Promise<void> {
    const t = this.pick(TABLES);
    const id = this.anyId();
    if (opts.dependants && this.rnd() < 0.25) return this.childRead(t, id, known, where);
    const rows = await this.select(`SELECT id, ver, v FROM ${this.source(t)} WHERE id = $1`, [id], (first) => this.check(t, id, first[0], known, where));
    this.check(t, id, rows[0], known, where);
    this.ops.reads += 1;
  }

  /** The cascaded child of a row, through the view over the child table. */
  private async childRead(t: string, id: number, known: Knowledge, where: string): Promise<void> {
    const check = (rows: Row[]) => {
      const k = known.get(`${t}:${id}`);
      if (!this.isOwn(id) && rows.length !== 1) this.violations.push(`client ${this.k} ${where} ${t}_c:${id}: shared row's child missing`);
      if (this.isOwn(id) && k?.childGone === true && rows.length > 0) this.violations.push(`client ${this.k} ${where} ${t}_c:${id}: child present, but it deleted the parent row`);
    };
    const rows = await this.select(`SELECT id, 0 AS ver, 0 AS v FROM ${t}_cv WHERE id = $1`, [id], check);
    check(rows);
    this.ops.reads += 1;
  }

  private async rangeRead(known: Knowledge, where: string): Promise<void> {
    const t = this.pick(TABLES);
    const [lo, hi] = this.rnd() < 0.3 ? [1, SHARED] : [this.ownId(1), this.ownId(OWN)];
    const rows = await this.select(`SELECT id, ver, v FROM ${this.source(t)} WHERE id BETWEEN $1 AND $2 ORDER BY id`, [lo, hi]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (let id = lo; id <= hi; id += 1) this.check(t, id, byId.get(id), known, where);
    this.ops.reads += 1;
  }

  /** One write; updates `known` (a copy inside a transaction) from what the database acknowledged. */
  private async write(known: Knowledge, t: string, id: number): Promise<void> {
    const key = `${t}:${id}`;
    const k = known.get(key);
    const v = Math.floor(this.rnd() * 1_000_000);
    this.ops.writes += 1;
    if (this.isOwn(id) && k !== undefined && !k.present) {
      const ver = k.maxVer + 1;
      await this.c.query(`INSERT INTO ${t} (id, ver, v, owner) VALUES ($1, $2, $3, $4)`, [id, ver, v, this.k]);
      known.set(key, { present: true, ver, v, maxVer: ver, childGone: k?.childGone === true });
    } else if (this.isOwn(id) && this.rnd() < 0.3) {
      const r = await this.c.query<{ ver: number }>(`DELETE FROM ${t} WHERE id = $1 RETURNING ver`, [id]);
      const ver = r.rows[0]?.ver ?? k?.maxVer ?? 0;
      known.set(key, { present: false, ver, v: 0, maxVer: Math.max(ver, k?.maxVer ?? 0), childGone: k?.childGone === true || r.rows.length > 0 });
    } else {
      const simple = this.rnd() < 0.5;
      const r = simple
        ? await this.c.query<{ ver: number }>(`UPDATE ${t} SET ver = ver + 1, v = ${v} WHERE id = ${id} RETURNING ver`)
        : await this.c.query<{ ver: number }>(`UPDATE ${t} SET ver = ver + 1, v = $1 WHERE id = $2 RETURNING ver`, [v, id]);
      const ver = r.rows[0]?.ver;
      if (ver !== undefined) known.set(key, { present: true, ver, v, maxVer: Math.max(ver, k?.maxVer ?? 0), childGone: k?.childGone === true });
    }
  }

  private async transaction(): Promise<void> {
    const tentative: Knowledge = new Map([...this.known].map(([key, k]) => [key, { ...k }]));
    // Lock order (table, id) fixed so transactions cannot deadlock each other.
    const targets = Array.from({ length: 2 + Math.floor(this.rnd() * 3) }, () => [TABLES.indexOf(this.pick(TABLES)), this.anyId()] as const)
      .sort((x, y) => x[0] - y[0] || x[1] - y[1])
      .filter((x, i, xs) => i === 0 || x[0] !== xs[i - 1]![0] || x[1] !== xs[i - 1]![1]);
    await this.c.query('BEGIN');
    try {
      for (const [ti, id] of targets) {
        await this.write(tentative, TABLES[ti]!, id);
        if (this.rnd() < 0.5) await this.pointRead(tentative, 'inside a transaction');
      }
      if (this.rnd() < 0.3) {
        await this.c.query('ROLLBACK');
        this.ops.rollbacks += 1;
        return;
      }
      await this.c.query('COMMIT');
      for (const [key, k] of tentative) this.known.set(key, k);
      this.ops.commits += 1;
    } catch (err) {
      await this.c.query('ROLLBACK').catch(() => {});
      if ((err as { code?: string }).code === '40P01') this.ops.deadlocks += 1;
      else throw err;
    }
  }

  async run(deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      const dice = this.rnd();
      try {
        if (dice < 0.45) await this.pointRead(this.known, 'point read');
        else if (dice < 0.65) await this.rangeRead(this.known, 'range read');
        else if (dice < 0.9) await this.write(this.known, this.pick(TABLES), this.anyId());
        else await this.transaction();
      } catch (err) {
        this.violations.push(`client ${this.k}: unexpected error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  }
}

beforeAll(async () => {
  for (const t of TABLES) {
    await directQuery(`CREATE TABLE ${t} (id int PRIMARY KEY, ver int NOT NULL, v int NOT NULL, owner int NOT NULL)`);
    await directQuery(`INSERT INTO ${t} SELECT g, 1, 0, -1 FROM generate_series(1, ${SHARED}) g`);
    await directQuery(
      `INSERT INTO ${t} SELECT (k + 1) * 1000 + i, 1, 0, k FROM generate_series(0, ${CLIENTS - 1}) k, generate_series(1, ${OWN}) i`,
    );
    if (opts.dependants) {
      await directQuery(`CREATE VIEW ${t}_v AS SELECT id, ver, v, owner FROM ${t}`);
      await directQuery(`CREATE TABLE ${t}_c (id int PRIMARY KEY REFERENCES ${t} (id) ON DELETE CASCADE); INSERT INTO ${t}_c SELECT id FROM ${t}`);
      await directQuery(`CREATE VIEW ${t}_cv AS SELECT id FROM ${t}_c`);
    }
  }
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.stop();
  if (opts.dependants) await dropTables(...TABLES.map((t) => `${t}_c`));
  await dropTables(...TABLES);
  await endDirect();
});

describe(`16 clients, 3 tables, ~${DURATION_MS} ms of mixed reads and writes (seed ${SEED})`, () => {
  it('every read sees the reader\'s own acknowledged writes, and at the end every table through the proxy equals the database', async () => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connectClient(proxy.url())));
    const workers = clients.map((c, k) => new Worker(k, c));
    const before = await proxy.stats();
    try {
      const deadline = Date.now() + DURATION_MS;
      await Promise.all(workers.map((w) => w.run(deadline)));
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
    const after = await proxy.stats();
    const total = workers.reduce(
      (acc, w) => ({
        reads: acc.reads + w.ops.reads,
        writes: acc.writes + w.ops.writes,
        commits: acc.commits + w.ops.commits,
        rollbacks: acc.rollbacks + w.ops.rollbacks,
      }),
      { reads: 0, writes: 0, commits: 0, rollbacks: 0 },
    );
    console.info(`[concurrency] seed ${SEED}: ${JSON.stringify(total)}, hits ${after.hits - before.hits}, misses ${after.misses - before.misses}`);

    const violations = workers.flatMap((w) => w.violations);
    expect(violations.slice(0, 20), `${violations.length} violations (seed ${SEED})`).toEqual([]);
    expect(total.reads).toBeGreaterThan(100);
    expect(total.commits + total.rollbacks).toBeGreaterThan(5);
    expect(after.hits - before.hits, `the cache was actually serving during the run (bypasses: ${JSON.stringify(after.bypass_reasons)})`).toBeGreaterThan(0);

    const check = await connectClient(proxy.url());
    try {
      if (opts.dependants) {
        for (const t of TABLES) {
          for (const sql of [`SELECT id, ver, v, owner FROM ${t}_v ORDER BY id`, `SELECT id FROM ${t}_cv ORDER BY id`]) {
            expect((await check.query(sql)).rows, `${sql} through the proxy equals the database`).toEqual((await directQuery(sql)).rows);
          }
        }
      }
      for (const t of TABLES) {
        const sql = `SELECT id, ver, v, owner FROM ${t} ORDER BY id`;
        const viaProxy = (await check.query(sql)).rows;
        expect(viaProxy, `${t} through the proxy equals the database`).toEqual((await directQuery(sql)).rows);
        expect((await check.query(sql)).rows, `${t} again (now from cache)`).toEqual(viaProxy);
        for (const w of workers) {
          for (let i = 1; i <= OWN; i += 1) {
            const id = w.ownId(i);
            const k = w.known.get(`${t}:${id}`);
            const row = viaProxy.find((r: Row) => r.id === id) as Row | undefined;
            expect(row === undefined ? null : [row.ver, row.v], `${t}:${id} final state as its owner knows it`).toEqual(
              k?.present ? [k.ver, k.v] : null,
            );
          }
        }
      }
    } finally {
      await check.end();
    }
  });
});

}
