// Writers and readers hammer two tables through one MySQL listener for a few
// seconds. Every write raises a row's `ver` to a fresh, globally increasing
// number (GREATEST, so a row's ver never goes down); once MariaDB has
// acknowledged it, that number is the row's floor. A read must never return
// a ver below the floor recorded when the read started (DESIGN promise 2),
// nor a ver that was only ever written by a transaction that rolled back.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { connectMysql, directSql, dropMyTables, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { mulberry32 } from '../../helpers/stress.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const TABLES = [uniqueName('myc_a'), uniqueName('myc_b')];
const KEYS = 12; // ids 1..12 in each table
const WRITERS = 4;
const READERS = 6;
const DURATION_MS = Number(process.env['SQLCACHED_CONCURRENCY_MS'] ?? 4_000);
const SEED = Number(process.env['SQLCACHED_SEED'] ?? Date.now() % 1_000_000);
let proxy: TestProxy;

/** What every client knows: the highest acknowledged ver per row, and vers that were only rolled back. */
class Ledger {
  private next = 0;
  readonly acked = new Map<string, number>(); // `${table}:${id}` → floor
  readonly rolledBack = new Set<number>();
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
}

const ledger = new Ledger();
const violations: string[] = [];
const ops = { reads: 0, writes: 0, commits: 0, rollbacks: 0, deadlocks: 0 };

function checkRow(who: string, table: string, id: number, ver: number | undefined, floor: number): void {
  if (ver === undefined) violations.push(`${who} ${table}:${id}: row missing`);
  else if (ver < floor) violations.push(`${who} ${table}:${id}: read ver ${ver}, but ver ${floor} was acknowledged before the read started`);
  else if (ledger.rolledBack.has(ver)) violations.push(`${who} ${table}:${id}: read ver ${ver}, which only a rolled-back transaction wrote`);
}

const isDeadlock = (err: unknown): boolean => [1213, 1205].includes((err as { errno?: number }).errno ?? 0);

class Client {
  private readonly rnd: () => number;
  constructor(
    readonly name: string,
    readonly c: MyConnection,
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

  async pointRead(): Promise<void> {
    const t = this.pick(TABLES);
    const id = this.id();
    const floor = ledger.floor(t, id);
    const prepared = this.rnd() < 0.5;
    const [rows] = prepared ? await this.c.execute(`SELECT ver FROM ${t} WHERE id = ?`, [id]) : await this.c.query(`SELECT ver FROM ${t} WHERE id = ${id}`);
    checkRow(`${this.name} point read (${prepared ? 'prepared' : 'text'})`, t, id, (rows as { ver: number }[])[0]?.ver, floor);
    ops.reads += 1;
  }

  async rangeRead(): Promise<void> {
    const t = this.pick(TABLES);
    const floors = Array.from({ length: KEYS }, (_, k) => ledger.floor(t, k + 1));
    const [rows] = await this.c.query(`SELECT id, ver FROM ${t} ORDER BY id`);
    const byId = new Map((rows as { id: number; ver: number }[]).map((r) => [r.id, r.ver]));
    for (let id = 1; id <= KEYS; id += 1) checkRow(`${this.name} range read`, t, id, byId.get(id), floors[id - 1]!);
    ops.reads += 1;
  }

  /** One autocommit write of a fresh ver; acknowledged → the ledger's floor. */
  async write(): Promise<void> {
    const t = this.pick(TABLES);
    const id = this.id();
    const ver = ledger.fresh();
    const form = this.rnd();
    ops.writes += 1;
    if (form < 0.3) {
      await this.c.query(`UPDATE ${t} SET ver = GREATEST(ver, ${ver}) WHERE id = ${id}`);
      ledger.ack(t, id, ver);
    } else if (form < 0.55) {
      await this.c.execute(`UPDATE ${t} SET ver = GREATEST(ver, ?) WHERE id = ?`, [ver, id]);
      ledger.ack(t, id, ver);
    } else if (form < 0.7) {
      await this.c.query(`INSERT INTO ${t} (id, ver) VALUES (${id}, ${ver}) ON DUPLICATE KEY UPDATE ver = GREATEST(ver, VALUES(ver))`);
      ledger.ack(t, id, ver);
    } else if (form < 0.85) {
      const [a, b] = TABLES as [string, string];
      await this.c.query(`UPDATE ${a} JOIN ${b} ON ${a}.id = ${b}.id SET ${a}.ver = GREATEST(${a}.ver, ${ver}), ${b}.ver = GREATEST(${b}.ver, ${ver}) WHERE ${a}.id = ${id}`);
      ledger.ack(a, id, ver);
      ledger.ack(b, id, ver);
    } else {
      // Write and read back in one COM_QUERY: the SELECT must see the write.
      const [results] = await this.c.query(`UPDATE ${t} SET ver = GREATEST(ver, ${ver}) WHERE id = ${id}; SELECT ver FROM ${t} WHERE id = ${id}`);
      ledger.ack(t, id, ver);
      const rows = (results as unknown as [unknown, { ver: number }[]])[1];
      checkRow(`${this.name} multi-statement read-back`, t, id, rows[0]?.ver, ver);
    }
    // Read-your-writes on the writer's own connection, at once.
    const floor = ledger.floor(t, id);
    const [rows] = await this.c.query(`SELECT ver FROM ${t} WHERE id = ${id}`);
    checkRow(`${this.name} read-your-write`, t, id, (rows as { ver: number }[])[0]?.ver, floor);
  }

  /** BEGIN (or START TRANSACTION, or autocommit = 0), 2–3 writes in (table, id) order, then COMMIT (acknowledged → floors) or ROLLBACK (never visible). */
  async transaction(): Promise<void> {
    const targets = Array.from({ length: 2 + Math.floor(this.rnd() * 2) }, () => [TABLES.indexOf(this.pick(TABLES)), this.id()] as const)
      .sort((x, y) => x[0] - y[0] || x[1] - y[1])
      .filter((x, i, xs) => i === 0 || x[0] !== xs[i - 1]![0] || x[1] !== xs[i - 1]![1]);
    const written: [string, number, number][] = [];
    const opening = this.pick(['BEGIN', 'START TRANSACTION', 'SET autocommit = 0']);
    await this.c.query(opening);
    try {
      for (const [ti, id] of targets) {
        const t = TABLES[ti]!;
        const ver = ledger.fresh();
        const [ok] = await this.c.execute(`UPDATE ${t} SET ver = GREATEST(ver, ?) WHERE id = ?`, [ver, id]);
        written.push([t, id, ver]);
        const [rows] = await this.c.query(`SELECT ver FROM ${t} WHERE id = ${id}`);
        // An UPDATE that changed nothing (a newer ver committed since) leaves
        // InnoDB's snapshot in place: the read may then show an older ver.
        if ((ok as { changedRows?: number }).changedRows === 1) {
          checkRow(`${this.name} read inside its transaction`, t, id, (rows as { ver: number }[])[0]?.ver, ver);
        }
      }
      if (this.rnd() < 0.35) {
        for (const [, , ver] of written) ledger.rolledBack.add(ver);
        await this.c.query('ROLLBACK');
        ops.rollbacks += 1;
        return;
      }
      await this.c.query('COMMIT');
      for (const [t, id, ver] of written) ledger.ack(t, id, ver);
      ops.commits += 1;
    } catch (err) {
      for (const [, , ver] of written) ledger.rolledBack.add(ver);
      await this.c.query('ROLLBACK').catch(() => {});
      if (isDeadlock(err)) ops.deadlocks += 1;
      else throw err;
    } finally {
      if (opening === 'SET autocommit = 0') await this.c.query('SET autocommit = 1');
    }
  }

  async run(deadline: number, role: 'reader' | 'writer'): Promise<void> {
    while (Date.now() < deadline) {
      const dice = this.rnd();
      try {
        if (role === 'reader') await (dice < 0.7 ? this.pointRead() : this.rangeRead());
        else if (dice < 0.6) await this.write();
        else if (dice < 0.8) await this.transaction();
        else await this.pointRead();
      } catch (err) {
        if (isDeadlock(err)) ops.deadlocks += 1;
        else violations.push(`${this.name}: unexpected error ${(err as { errno?: number }).errno ?? ''} ${(err as Error).message}`);
      }
    }
  }
}

beforeAll(async () => {
  for (const t of TABLES) {
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, ver BIGINT NOT NULL) ENGINE=InnoDB`);
    await directSql(`INSERT INTO ${t} SELECT seq, 0 FROM seq_1_to_${KEYS}`);
  }
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(...TABLES);
  await endMyDirect();
});

describe(`${WRITERS} writers and ${READERS} readers, 2 tables, ~${DURATION_MS} ms (seed ${SEED})`, () => {
  it('no read returns a ver older than the last write acknowledged before it started, or a rolled-back one; at the end the proxy equals MariaDB', async () => {
    const conns = await Promise.all(Array.from({ length: WRITERS + READERS }, () => connectMysql(proxy.port, { multipleStatements: true })));
    const before = await proxy.stats();
    try {
      const deadline = Date.now() + DURATION_MS;
      await Promise.all(
        conns.map((c, k) =>
          k < WRITERS ? new Client(`writer ${k}`, c, SEED * 31 + k).run(deadline, 'writer') : new Client(`reader ${k - WRITERS}`, c, SEED * 31 + k).run(deadline, 'reader'),
        ),
      );
    } finally {
      await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())));
    }
    const after = await proxy.stats();
    console.info(`[mysql concurrency] seed ${SEED}: ${JSON.stringify(ops)}, hits ${after.hits - before.hits}, misses ${after.misses - before.misses}`);

    expect(violations.slice(0, 20), `${violations.length} violations (seed ${SEED})`).toEqual([]);
    expect(ops.reads).toBeGreaterThan(100);
    expect(ops.writes).toBeGreaterThan(20);
    expect(ops.commits + ops.rollbacks).toBeGreaterThan(5);
    expect(after.hits - before.hits, 'the cache was actually serving during the run').toBeGreaterThan(0);

    const check = await connectMysql(proxy.port);
    try {
      for (const t of TABLES) {
        const sql = `SELECT id, ver FROM ${t} ORDER BY id`;
        const [viaProxy] = await check.query(sql);
        const plain = (viaProxy as object[]).map((r) => ({ ...r }));
        expect(plain, `${t} through the proxy equals MariaDB`).toEqual(await directSql(sql).then((rows: object[]) => rows.map((r) => ({ ...r }))));
        for (const row of plain as { id: number; ver: number }[]) {
          expect(row.ver, `${t}:${row.id} holds at least its last acknowledged ver`).toBeGreaterThanOrEqual(ledger.floor(t, row.id));
        }
      }
    } finally {
      await check.end();
    }
  });
});
