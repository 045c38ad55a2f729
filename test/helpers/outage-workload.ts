// The read workload of the Redis outage and slow-store tests: readers on two
// proxy instances (sharing one Redis) read a few rows over and over, simple
// and extended protocol; writes go through a chosen instance. Every read is
// checked against its floor — the value acknowledged for that row before the
// read was sent — and every client error is recorded. Each finding carries
// its start time, so a test can tell which phase (outage, recovery…) it
// belongs to.

import type pg from 'pg';
import { expect } from 'vitest';
import { connectClient, directQuery, uniqueName } from './db.js';
import { startProxy, type Stats, type TestProxy } from './proxy.js';
import { startRedisLink, startRedisServer, type RedisLink, type RedisServer } from './redis.js';
import { mulberry32, SEED, sleep } from './stress.js';

export const ROWS = 4;

export interface Read {
  who: string;
  id: number;
  start: number;
  ms: number;
}

export interface Finding {
  who: string;
  kind: 'stale' | 'error';
  /** performance.now() when the read (or write) was sent. */
  start: number;
  msg: string;
}

export const storeErrors = (s: Stats): number => Number((s as unknown as { store_errors?: number }).store_errors ?? NaN);

export async function both(a: TestProxy, b: TestProxy): Promise<[Stats, Stats]> {
  return Promise.all([a.stats(), b.stats()]);
}

export class Workload {
  readonly acked = new Array<number>(ROWS + 1).fill(0);
  readonly findings: Finding[] = [];
  readonly reads: Read[] = [];
  private readonly clients: pg.Client[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private lastMark: [string, number] = ['start', performance.now()];

  constructor(
    readonly t: string,
    readonly a: TestProxy,
    readonly b: TestProxy,
  ) {}

  /** Name a moment (kill, restart…): findings say how long after the last one they happened. */
  mark(label: string): number {
    this.lastMark = [label, performance.now()];
    return this.lastMark[1];
  }

  private when(start: number): string {
    return `${Math.round(start - this.lastMark[1])} ms after ${this.lastMark[0]}`;
  }

  /** Findings as lines, for an assertion message. */
  lines(findings: Finding[] = this.findings): string[] {
    const all = findings.map((f) => `${f.who}: ${f.msg}`);
    return all.length <= 10 ? all : [...all.slice(0, 5), `… ${all.length - 10} more …`, ...all.slice(-5)];
  }

  private async reader(c: pg.Client, who: string, seed: number, ids: number[]): Promise<void> {
    const rnd = mulberry32(seed);
    while (this.running) {
      const id = ids[Math.floor(rnd() * ids.length)]!;
      const floor = this.acked[id]!;
      const start = performance.now();
      try {
        const sql = `SELECT v FROM ${this.t} WHERE id = $1`;
        const r = rnd() < 0.5 ? await c.query<{ v: number }>(sql, [id]) : await c.query<{ v: number }>(sql.replace('$1', String(id)));
        const ms = performance.now() - start;
        this.reads.push({ who, id, start, ms });
        const v = r.rows[0]?.v;
        if (v === undefined || v < floor) {
          this.findings.push({ who, kind: 'stale', start, msg: `${this.when(start)}: row ${id} read v=${v}, but v=${floor} was acknowledged before the read was sent` });
        }
      } catch (err) {
        this.findings.push({ who, kind: 'error', start, msg: `${this.when(start)}: client error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}` });
        await sleep(20);
      }
    }
  }

  /** Readers on both instances (or only on `only`), over all rows (or `ids`). */
  async start(perInstance = 3, only?: 'A' | 'B', ids: number[] = Array.from({ length: ROWS }, (_, i) => i + 1)): Promise<void> {
    this.running = true;
    let k = 0;
    for (const [p, name] of [
      [this.a, 'A'],
      [this.b, 'B'],
    ] as const) {
      if (only !== undefined && only !== name) continue;
      for (let i = 0; i < perInstance; i += 1) {
        const c = await connectClient(p.url());
        this.clients.push(c);
        this.loops.push(this.reader(c, `reader ${name}${i}`, SEED * 37 + k++, ids));
      }
    }
  }

  /** UPDATE through `p` (its own connection), the row's value raised, then read back there at once; returns the write's latency. */
  async write(p: TestProxy, id: number): Promise<number> {
    const name = p === this.a ? 'A' : 'B';
    const c = await connectClient(p.url());
    this.clients.push(c);
    const v = this.acked[id]! + 1 + Math.floor(Math.random() * 5);
    const start = performance.now();
    const r = await c.query(`UPDATE ${this.t} SET v = $1 WHERE id = $2`, [v, id]);
    const ms = performance.now() - start;
    expect(r.rowCount).toBe(1);
    this.acked[id] = v;
    const backAt = performance.now();
    const back = (await c.query<{ v: number }>(`SELECT v FROM ${this.t} WHERE id = $1`, [id])).rows[0]?.v;
    if (back !== v) this.findings.push({ who: `writer on ${name}`, kind: 'stale', start: backAt, msg: `${this.when(backAt)}: wrote v=${v} to row ${id}, read back v=${back}` });
    return ms;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    await Promise.all(this.clients.splice(0).map((c) => c.end().catch(() => {})));
  }

  /** Every row, read twice through each instance, equals the database. */
  async expectFinalState(): Promise<void> {
    const truth = (await directQuery(`SELECT id, v FROM ${this.t} ORDER BY id`)).rows;
    expect(truth.map((r) => r.v)).toEqual(this.acked.slice(1));
    for (const p of [this.a, this.b]) {
      const c = await connectClient(p.url());
      try {
        for (const row of truth as { id: number; v: number }[]) {
          for (let k = 0; k < 2; k += 1) {
            const got = (await c.query<{ v: number }>(`SELECT v FROM ${this.t} WHERE id = $1`, [row.id])).rows[0]?.v;
            expect(got, `row ${row.id} through ${p === this.a ? 'A' : 'B'} (read ${k + 1})`).toBe(row.v);
          }
        }
      } finally {
        await c.end();
      }
    }
  }
}

export interface Setup {
  server: RedisServer;
  a: TestProxy;
  b: TestProxy;
  /** With `links`: A's and B's own way to Redis, each of which the test can cut. */
  linkA: RedisLink | null;
  linkB: RedisLink | null;
  w: Workload;
}

/** Registry of what a test file started, for its afterAll. */
export interface Started {
  tables: string[];
  servers: RedisServer[];
  proxies: TestProxy[];
  links: RedisLink[];
}

/** A table of ROWS rows (v = 0), an extra redis-server, and two instances A and B sharing it under one key prefix. */
export async function setupPair(
  started: Started,
  label: string,
  opts: { persist?: boolean; links?: boolean; commandTimeoutMs: number },
): Promise<Setup> {
  const t = uniqueName(`ro_${label}`);
  started.tables.push(t);
  await directQuery(`CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${t} SELECT g, 0 FROM generate_series(1, ${ROWS}) g`);
  const server = await startRedisServer({ persist: opts.persist === true });
  started.servers.push(server);
  const linkA = opts.links === true ? await startRedisLink(server.port) : null;
  const linkB = opts.links === true ? await startRedisLink(server.port) : null;
  for (const l of [linkA, linkB]) if (l !== null) started.links.push(l);
  const keyPrefix = uniqueName('ro');
  const a = await startProxy({ redis: { url: linkA?.url ?? server.url, keyPrefix, commandTimeoutMs: opts.commandTimeoutMs } });
  const b = await startProxy({ redis: { url: linkB?.url ?? server.url, keyPrefix, commandTimeoutMs: opts.commandTimeoutMs } });
  started.proxies.push(a, b);
  return { server, a, b, linkA, linkB, w: new Workload(t, a, b) };
}

/** Stop what a file started (afterAll): proxies, links, servers. Tables are the caller's (dropTables). */
export async function stopStarted(started: Started): Promise<void> {
  for (const p of started.proxies.splice(0)) await p.stop().catch(() => {});
  await Promise.all(started.links.splice(0).map((l) => l.stop()));
  await Promise.all(started.servers.splice(0).map((s) => s.stop()));
}

/** Wait until both instances have served more than `n` hits since now. */
export async function bothServing(a: TestProxy, b: TestProxy, n: number, timeoutMs: number): Promise<boolean> {
  const [a0, b0] = await both(a, b);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [a1, b1] = await both(a, b);
    if (a1.hits - a0.hits > n && b1.hits - b0.hits > n) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}
