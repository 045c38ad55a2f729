// The cross-instance handoff workload of the Redis-store tests (DESIGN
// promise 2 across instances): two proxies share one store; on each "lane"
// (one row of one table of one database) a writer client on instance A sets
// the row to a new value, and once A has acknowledged it a reader client on
// instance B must read exactly that value, at once. Before each write B
// reads the row twice, so B's cache holds the pre-write result when the
// write lands. Background readers on both instances keep sending the same
// statements (same cache keys) and check that no read returns a value older
// than what was acknowledged before the read was sent.
//
// In control mode the writes go straight to the database (a proxy that never
// sees them = a store that never invalidates): the same checks must then
// find stale reads, or they prove nothing.

import pg from 'pg';
import { connectClient, directUrl } from './db.js';
import type { Stats, TestProxy } from './proxy.js';
import { mulberry32, SEED } from './stress.js';

export interface Lane {
  db: string;
  table: string;
  /** The row this lane's writer owns (values only ever grow). */
  id: number;
}

export interface HandoffOptions {
  a: TestProxy;
  b: TestProxy;
  lanes: Lane[];
  /** Total handoffs, split evenly over the lanes. */
  handoffs: number;
  /** Background readers per database on each instance. */
  backgroundPerDb?: number;
  /** Writes straight to the database instead of through A. */
  control?: boolean;
  /** Stop after this many violations (the control stops early). */
  maxViolations?: number;
  label: string;
}

export interface HandoffResult {
  violations: string[];
  handoffs: number;
  bgReads: number;
  fullReads: number;
  a: { hits: number; misses: number; storeErrors: number };
  b: { hits: number; misses: number; storeErrors: number };
  ms: number;
}

type Row = { id: number; v: number };
const readSql = (t: string): string => `SELECT v FROM ${t} WHERE id = $1`;
const fullSql = (t: string): string => `SELECT id, v FROM ${t} ORDER BY id`;
const writeSql = (t: string): string => `UPDATE ${t} SET v = $1 WHERE id = $2`;
const inline = (sql: string, params: unknown[]): string => sql.replace(/\$(\d+)/g, (_m, n: string) => String(params[Number(n) - 1]));

function delta(before: Stats, after: Stats): { hits: number; misses: number; storeErrors: number } {
  const errs = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? 0);
  return { hits: after.hits - before.hits, misses: after.misses - before.misses, storeErrors: errs(after) - errs(before) };
}

/** Run the handoff workload; every client it opens is closed before it returns. */
export async function runHandoffs(o: HandoffOptions): Promise<HandoffResult> {
  const maxViolations = o.maxViolations ?? 10;
  const perLane = Math.max(1, Math.ceil(o.handoffs / o.lanes.length));
  const laneKey = (l: Lane): string => `${l.db}.${l.table}:${l.id}`;
  const acked = new Map<string, number>(o.lanes.map((l) => [laneKey(l), 0]));
  const violations: string[] = [];
  const clients: pg.Client[] = [];
  const pools: pg.Pool[] = [];
  let handoffs = 0;
  let bgReads = 0;
  let fullReads = 0;
  let done = false;
  let lanesDone = false;
  const violate = (msg: string): void => {
    violations.push(`[${o.label}${o.control === true ? ' CONTROL' : ''}] seed=${SEED} ${msg}`);
    if (violations.length >= maxViolations) done = true;
  };
  const open = async (url: string): Promise<pg.Client> => {
    const c = await connectClient(url);
    clients.push(c);
    return c;
  };
  const directPools = new Map<string, pg.Pool>();
  const directPool = (db: string): pg.Pool => {
    let p = directPools.get(db);
    if (p === undefined) {
      p = new pg.Pool({ connectionString: directUrl(db), max: 4 });
      p.on('error', () => {});
      directPools.set(db, p);
      pools.push(p);
    }
    return p;
  };

  const lane = async (l: Lane, index: number): Promise<void> => {
    const rnd = mulberry32(SEED * 7919 + index);
    const a = o.control === true ? null : await open(o.a.url(l.db));
    const b = await open(o.b.url(l.db));
    const key = laneKey(l);
    const trail: string[] = [];
    const note = (s: string): void => {
      trail.push(s);
      if (trail.length > 10) trail.shift();
    };
    const readB = async (): Promise<number | undefined> => {
      const extended = rnd() < 0.5;
      const r = extended ? await b.query<{ v: number }>(readSql(l.table), [l.id]) : await b.query<{ v: number }>(inline(readSql(l.table), [l.id]));
      return r.rows[0]?.v;
    };
    // Start from what the database holds (an earlier case may have written the row).
    let n = (await directPool(l.db).query<{ v: number }>(`SELECT v FROM ${l.table} WHERE id = $1`, [l.id])).rows[0]!.v;
    acked.set(key, Math.max(acked.get(key) ?? 0, n));
    for (let i = 0; i < perLane && !done; i += 1) {
      try {
        // B caches the current value (the second read is normally a hit).
        for (let k = 0; k < 2; k += 1) {
          const pre = await readB();
          note(`B read ${pre} (pre-write ${k + 1})`);
          if (pre !== n) violate(`lane ${key} handoff ${i}: B read ${pre} before the write, expected ${n} (the last acknowledged value)\n    ${trail.join('\n    ')}`);
        }
        n += 1 + Math.floor(rnd() * 3);
        const extended = rnd() < 0.5;
        const params = [n, l.id];
        const r =
          a === null
            ? await directPool(l.db).query(writeSql(l.table), params)
            : extended
              ? await a.query(writeSql(l.table), params)
              : await a.query(inline(writeSql(l.table), params));
        if (r.rowCount !== 1) violate(`lane ${key}: UPDATE affected ${r.rowCount} rows`);
        acked.set(key, n);
        note(`A: UPDATE v=${n} acknowledged`);
        const got = await readB();
        note(`B read ${got} after the ack`);
        handoffs += 1;
        if (got !== n) {
          violate(`lane ${key} handoff ${i}: A's UPDATE v=${n} was acknowledged, then B read v=${got}\n    sequence (oldest first):\n    ${trail.join('\n    ')}`);
        }
        if (i % 10 === 9) {
          // The same rows, read whole: every lane of this table at least at its floor, this lane exact.
          const floors = new Map([...acked]);
          const rows = (await b.query<Row>(fullSql(l.table))).rows;
          fullReads += 1;
          for (const other of o.lanes.filter((x) => x.db === l.db && x.table === l.table)) {
            const row = rows.find((x) => x.id === other.id);
            const floor = floors.get(laneKey(other)) ?? 0;
            if (row === undefined || row.v < floor || (other === l && row.v !== n)) {
              violate(`lane ${key}: B's full read of ${l.table} has row ${other.id} v=${row?.v}, but v=${floor} was acknowledged before it was sent`);
            }
          }
        }
      } catch (err) {
        violate(`lane ${key}: client error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
        return;
      }
    }
  };

  const background = async (p: TestProxy, name: string, db: string, j: number): Promise<void> => {
    const rnd = mulberry32(SEED * 104_729 + j);
    const c = await open(p.url(db));
    const mine = o.lanes.filter((l) => l.db === db);
    while (!done && !lanesDone) {
      const l = mine[Math.floor(rnd() * mine.length)]!;
      const floor = acked.get(laneKey(l)) ?? 0;
      try {
        const r = rnd() < 0.5 ? await c.query<{ v: number }>(readSql(l.table), [l.id]) : await c.query<{ v: number }>(inline(readSql(l.table), [l.id]));
        bgReads += 1;
        const got = r.rows[0]?.v;
        if (got === undefined || got < floor) violate(`background reader ${j} on ${name}: ${laneKey(l)} read v=${got}, but v=${floor} was acknowledged before the read was sent`);
      } catch (err) {
        violate(`background reader ${j} on ${name}: client error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
        return;
      }
    }
  };

  const [beforeA, beforeB] = await Promise.all([o.a.stats(), o.b.stats()]);
  const t0 = performance.now();
  try {
    const dbs = [...new Set(o.lanes.map((l) => l.db))];
    const per = o.backgroundPerDb ?? 2;
    let j = 0;
    const bg: Promise<void>[] = [];
    for (const db of dbs) {
      for (let k = 0; k < per; k += 1) {
        bg.push(background(o.a, 'A', db, j++));
        bg.push(background(o.b, 'B', db, j++));
      }
    }
    await Promise.all(o.lanes.map((l, i) => lane(l, i))).finally(() => {
      lanesDone = true;
    });
    await Promise.all(bg);
  } finally {
    lanesDone = true;
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
  }
  const ms = performance.now() - t0;
  const [afterA, afterB] = await Promise.all([o.a.stats(), o.b.stats()]);
  const result: HandoffResult = { violations, handoffs, bgReads, fullReads, a: delta(beforeA, afterA), b: delta(beforeB, afterB), ms };
  console.info(
    `[${o.label}${o.control === true ? ' CONTROL' : ''}] seed=${SEED} lanes=${o.lanes.length} handoffs=${handoffs} full reads=${fullReads} background reads=${bgReads} ` +
      `A ${JSON.stringify(result.a)} B ${JSON.stringify(result.b)} violations=${violations.length} in ${Math.round(ms)} ms`,
  );
  return result;
}
