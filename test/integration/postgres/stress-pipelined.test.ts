// Bounded stress through the proxy with the extended protocol and
// pipelining (postgres.js pipelines concurrent queries on its connections;
// pg mixes named and unnamed prepared statements). Each worker owns a
// disjoint set of rows in a parent table and its ON DELETE CASCADE child,
// keeps an exact model of them from its own acknowledged writes, and checks
// every read against that model: a read issued after a write was
// acknowledged must reflect it (promise 2). A cross-session case checks the
// same across connections, with background readers racing each write to
// populate the cache with pre-write results.
//
// Each case has a control twin that sends the writes straight to the
// database (behind the proxy's back = a proxy that never invalidates): the
// control must see violations, otherwise the checks prove nothing.
//
// Seeds are fixed (SQLCACHED_SEED overrides); the interleaving is not.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { connectClient, direct, directQuery, directUrl, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type Stats, type TestProxy } from '../../helpers/proxy.js';
import { Channel, type Db, mulberry32, OpLog, plain, type Q, Rollback, SEED, type RowObj } from '../../helpers/stress.js';

const WORKERS = 8;
const PARENTS = 6; // parent rows per worker
const CASE_MS = Number(process.env['SQLCACHED_STRESS_MS'] ?? 3_000);
const CONTROL_MS = 800;
const CASE_TIMEOUT = 8_000;

let proxy: TestProxy;
const created: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  proxy = await startProxy();
});

afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await dropTables(...created);
  await endDirect();
  await proxy?.stop();
});

// ---------------------------------------------------------------- clients

function postgresJsDb(url: string, prepare: boolean, max: number): Db {
  const sql = postgres(url, { max, prepare, onnotice: () => {}, idle_timeout: 0 });
  closers.push(() => sql.end({ timeout: 2 }));
  const wrap =
    (s: postgres.Sql | postgres.TransactionSql): Q =>
    async (text, params) => {
      const r = await s.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare });
      return { rows: plain(r as unknown as RowObj[]), count: r.count ?? null };
    };
  return {
    label: `postgres.js max=${max} prepare=${prepare}`,
    q: wrap(sql),
    tx: async (body) => {
      await sql.begin(async (t) => {
        await body(wrap(t));
      });
    },
  };
}

/** pg Pool: each statement randomly named (server-side prepared, reused per connection) or unnamed. */
function pgPoolDb(url: string, max: number, rnd: () => number): Db {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => {});
  closers.push(() => pool.end());
  const names = new Map<string, string>();
  const nameOf = (text: string): string => {
    let n = names.get(text);
    if (n === undefined) {
      n = `stress_${names.size}`;
      names.set(text, n);
    }
    return n;
  };
  const wrap =
    (c: pg.Pool | pg.PoolClient): Q =>
    async (text, params) => {
      const cfg: pg.QueryConfig = rnd() < 0.5 ? { name: nameOf(text), text, values: params } : { text, values: params };
      const r = await c.query(cfg);
      return { rows: plain(r.rows as RowObj[]), count: r.rowCount ?? null };
    };
  return {
    label: `pg Pool max=${max} named+unnamed`,
    q: wrap(pool),
    tx: async (body) => {
      const c = await pool.connect();
      let chain: Promise<unknown> = Promise.resolve();
      const inTx = wrap(c);
      const serial: Q = (text, params) => {
        const next = chain.then(() => inTx(text, params));
        chain = next.catch(() => {});
        return next;
      };
      try {
        await c.query('BEGIN');
        try {
          await body(serial);
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    },
  };
}

/** Control: writes (and transactions) go straight to the database, reads still through the proxy. */
function writesBehindProxy(reads: Db): Db {
  const d = pgPoolDb(directUrl(), 4, () => 1);
  return { label: `${reads.label} [CONTROL: writes bypass the proxy]`, q: reads.q, tx: d.tx };
}
function directWriteQ(): Q {
  return async (text, params) => {
    const r = await direct().query(text, params);
    return { rows: plain(r.rows as RowObj[]), count: r.rowCount ?? null };
  };
}

function reasonDelta(before: Stats, after: Stats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.bypass_reasons)) if (v - (before.bypass_reasons[k] ?? 0) > 0) out[k] = v - (before.bypass_reasons[k] ?? 0);
  return out;
}

async function statsNow(): Promise<Stats> {
  return proxy.stats();
}

// ------------------------------------------------------- cases 1 and 2

interface Tables {
  p: string;
  c: string;
}

async function makeTables(): Promise<Tables> {
  const p = uniqueName('stress_p');
  const c = uniqueName('stress_c');
  created.push(c, p);
  await directQuery(`CREATE TABLE ${p} (id int PRIMARY KEY, owner int NOT NULL, val int NOT NULL, ver int NOT NULL)`);
  await directQuery(
    `CREATE TABLE ${c} (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES ${p}(id) ON DELETE CASCADE, owner int NOT NULL, val int NOT NULL)`,
  );
  await directQuery(`CREATE INDEX ON ${c} (parent_id)`);
  // worker k: parents (k+1)*1000+1..+PARENTS (val 0, ver 1), two children each with ids (k+1)*100000 + seq
  await directQuery(
    `INSERT INTO ${p} SELECT (k+1)*1000+i, k, 0, 1 FROM generate_series(0, ${WORKERS - 1}) k, generate_series(1, ${PARENTS}) i`,
  );
  await directQuery(
    `INSERT INTO ${c} SELECT (k+1)*100000 + (i-1)*2 + j, (k+1)*1000+i, k, j
       FROM generate_series(0, ${WORKERS - 1}) k, generate_series(1, ${PARENTS}) i, generate_series(1, 2) j`,
  );
  return { p, c };
}

interface PRow {
  val: number;
  ver: number;
}
interface CRow {
  pid: number;
  val: number;
}
interface Model {
  parents: Map<number, PRow>;
  children: Map<number, CRow>;
}
const cloneModel = (m: Model): Model => ({
  parents: new Map([...m.parents].map(([k, v]) => [k, { ...v }])),
  children: new Map([...m.children].map(([k, v]) => [k, { ...v }])),
});

class RowWorker {
  readonly violations: string[] = [];
  readonly ops = { iterations: 0, reads: 0, writes: 0, commits: 0, rollbacks: 0 };
  private model: Model = { parents: new Map(), children: new Map() };
  private nextChild: number;
  private readonly rnd: () => number;
  private readonly log = new OpLog();
  private iter = 0;

  constructor(
    readonly k: number,
    readonly t: Tables,
    readonly db: Db,
    readonly writeQ: Q | null, // control: where non-transactional writes go instead of db.q
    seed: number,
  ) {
    this.rnd = mulberry32(seed * 131 + k);
    for (let i = 1; i <= PARENTS; i += 1) {
      this.model.parents.set(this.pid(i), { val: 0, ver: 1 });
      for (let j = 1; j <= 2; j += 1) this.model.children.set(this.base() + (i - 1) * 2 + j, { pid: this.pid(i), val: j });
    }
    this.nextChild = this.base() + PARENTS * 2 + 1;
  }

  private base(): number {
    return (this.k + 1) * 100000;
  }
  private pid(i: number): number {
    return (this.k + 1) * 1000 + i;
  }
  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  /** The five reads of one batch: [label, sql, params, expected rows]. */
  private reads(m: Model, f: number): [string, string, unknown[], RowObj[]][] {
    const { p, c } = this.t;
    const lo = this.pid(1);
    const hi = this.pid(PARENTS);
    const parentsSorted = [...m.parents.entries()].sort((a, b) => a[0] - b[0]);
    const childrenSorted = [...m.children.entries()].sort((a, b) => a[0] - b[0]);
    const kidsOfF = childrenSorted.filter(([, ch]) => ch.pid === f);
    const pf = m.parents.get(f);
    return [
      ['point', `SELECT id, val, ver FROM ${p} WHERE id = $1`, [f], pf ? [{ id: f, val: pf.val, ver: pf.ver }] : []],
      [
        'range',
        `SELECT id, val, ver FROM ${p} WHERE id BETWEEN $1 AND $2 ORDER BY id`,
        [lo, hi],
        parentsSorted.map(([id, r]) => ({ id, val: r.val, ver: r.ver })),
      ],
      [
        'join',
        `SELECT p.id AS pid, p.ver, c.id AS cid, c.val FROM ${p} p JOIN ${c} c ON c.parent_id = p.id WHERE p.owner = $1 ORDER BY c.id`,
        [this.k],
        childrenSorted.map(([cid, ch]) => ({ pid: ch.pid, ver: m.parents.get(ch.pid)!.ver, cid, val: ch.val })),
      ],
      [
        'agg',
        `SELECT count(*)::int AS n, coalesce(sum(val), 0)::int AS s FROM ${c} WHERE parent_id = $1`,
        [f],
        [{ n: kidsOfF.length, s: kidsOfF.reduce((a, [, ch]) => a + ch.val, 0) }],
      ],
      ['kids', `SELECT id, val FROM ${c} WHERE parent_id = $1 ORDER BY id`, [f], kidsOfF.map(([id, ch]) => ({ id, val: ch.val }))],
    ];
  }

  /** Pipelined batch of five reads; each compared with the model. */
  private async readBatch(q: Q, m: Model, f: number, phase: string): Promise<void> {
    const batch = this.reads(m, f);
    const got = await Promise.all(batch.map(([, sql, params]) => q(sql, params)));
    this.ops.reads += batch.length;
    batch.forEach(([label, sql, params, expected], i) => {
      const rows = got[i]!.rows;
      if (JSON.stringify(rows) !== JSON.stringify(expected)) {
        this.violations.push(
          `[${this.db.label}] seed=${SEED} worker=${this.k} iter=${this.iter} phase=${phase} read=${label}\n` +
            `    sql: ${sql}  params=${JSON.stringify(params)}\n` +
            `    expected (from acknowledged writes): ${JSON.stringify(expected)}\n` +
            `    read through the proxy:              ${JSON.stringify(rows)}\n` +
            `    this worker's last operations (oldest first):\n${this.log.tail()}`,
        );
      }
    });
    this.log.add(`iter ${this.iter} ${phase}: read batch (focus ${f})`);
  }

  /** One write on focus parent `f`, applied to `m` once acknowledged. */
  private async write(q: Q, m: Model, f: number, where: string): Promise<void> {
    const { p, c } = this.t;
    const pf = m.parents.get(f);
    const kids = [...m.children.entries()].filter(([, ch]) => ch.pid === f).sort((a, b) => a[0] - b[0]);
    const v = 1 + this.int(1_000_000);
    const expectCount = (what: string, count: number | null, want: number): void => {
      if (count !== want) this.violations.push(`[${this.db.label}] seed=${SEED} worker=${this.k} iter=${this.iter} ${what}: affected ${count}, expected ${want}`);
    };
    if (pf === undefined) {
      const r = await q(`INSERT INTO ${p} (id, owner, val, ver) VALUES ($1, $2, $3, 1)`, [f, this.k, v]);
      expectCount(`insert parent ${f}`, r.count, 1);
      m.parents.set(f, { val: v, ver: 1 });
      this.log.add(`iter ${this.iter} ${where}: INSERT parent ${f} val=${v} ver=1`);
      return;
    }
    const roll = this.rnd();
    if (roll < 0.35) {
      const r = await q(`UPDATE ${p} SET val = $1, ver = ver + 1 WHERE id = $2`, [v, f]);
      expectCount(`update parent ${f}`, r.count, 1);
      pf.val = v;
      pf.ver += 1;
      this.log.add(`iter ${this.iter} ${where}: UPDATE parent ${f} val=${v} ver=${pf.ver}`);
    } else if (roll < 0.55 || kids.length === 0) {
      const cid = this.nextChild++;
      const cv = 1 + this.int(1000);
      const r = await q(`INSERT INTO ${c} (id, parent_id, owner, val) VALUES ($1, $2, $3, $4)`, [cid, f, this.k, cv]);
      expectCount(`insert child ${cid}`, r.count, 1);
      m.children.set(cid, { pid: f, val: cv });
      this.log.add(`iter ${this.iter} ${where}: INSERT child ${cid} of ${f} val=${cv}`);
    } else if (roll < 0.7) {
      const cv = 1 + this.int(1000);
      const r = await q(`UPDATE ${c} SET val = $1 WHERE parent_id = $2`, [cv, f]);
      expectCount(`update children of ${f}`, r.count, kids.length);
      for (const [, ch] of kids) ch.val = cv;
      this.log.add(`iter ${this.iter} ${where}: UPDATE children of ${f} val=${cv} (${kids.length} rows)`);
    } else if (roll < 0.85) {
      const [cid] = kids[this.int(kids.length)]!;
      const r = await q(`DELETE FROM ${c} WHERE id = $1`, [cid]);
      expectCount(`delete child ${cid}`, r.count, 1);
      m.children.delete(cid);
      this.log.add(`iter ${this.iter} ${where}: DELETE child ${cid}`);
    } else {
      const r = await q(`DELETE FROM ${p} WHERE id = $1`, [f]);
      expectCount(`delete parent ${f}`, r.count, 1);
      m.parents.delete(f);
      for (const [cid] of kids) m.children.delete(cid); // ON DELETE CASCADE
      this.log.add(`iter ${this.iter} ${where}: DELETE parent ${f} (cascades ${kids.length} children)`);
    }
  }

  async run(deadline: number): Promise<void> {
    while (Date.now() < deadline && this.violations.length < 5) {
      this.iter += 1;
      const f = this.pid(1 + this.int(PARENTS));
      await this.readBatch(this.db.q, this.model, f, 'before-write');
      const mode = this.rnd();
      if (mode < 0.3) {
        // read-only iteration: fewer writes overall leave windows in which the cache answers
        await this.readBatch(this.db.q, this.model, f, 'repeat');
      } else if (mode < 0.72) {
        await this.write(this.writeQ ?? this.db.q, this.model, f, 'autocommit');
        this.ops.writes += 1;
      } else {
        const commit = mode < 0.87;
        const m = cloneModel(this.model);
        const n = 1 + this.int(3);
        try {
          await this.db.tx(async (q) => {
            for (let i = 0; i < n; i += 1) await this.write(q, m, f, commit ? 'tx' : 'tx-to-roll-back');
            await this.readBatch(q, m, f, commit ? 'inside-tx' : 'inside-tx-to-roll-back');
            if (!commit) throw new Rollback();
          });
          this.model = m;
          this.ops.commits += 1;
          this.log.add(`iter ${this.iter}: COMMIT acknowledged`);
        } catch (err) {
          if (!(err instanceof Rollback)) throw err;
          this.ops.rollbacks += 1;
          this.log.add(`iter ${this.iter}: ROLLBACK acknowledged (model unchanged)`);
        }
      }
      await this.readBatch(this.db.q, this.model, f, 'after-write');
      this.ops.iterations += 1;
    }
  }

  expectedRows(): { p: RowObj[]; c: RowObj[] } {
    return {
      p: [...this.model.parents].map(([id, r]) => ({ id, owner: this.k, val: r.val, ver: r.ver })),
      c: [...this.model.children].map(([id, ch]) => ({ id, parent_id: ch.pid, owner: this.k, val: ch.val })),
    };
  }
}

interface RowStressResult {
  violations: string[];
  hits: number;
  ops: RowWorker['ops'];
}

/** Run WORKERS row workers for `ms` over fresh tables; returns violations, hits, op counts. */
async function rowStress(makeDb: (k: number) => Db, ms: number, control: boolean): Promise<RowStressResult> {
  const t = await makeTables();
  const before = await statsNow();
  const workers = Array.from({ length: WORKERS }, (_, k) => new RowWorker(k, t, makeDb(k), control ? directWriteQ() : null, SEED));
  const deadline = Date.now() + ms;
  await Promise.all(workers.map((w) => w.run(deadline)));
  const after = await statsNow();
  const ops = { iterations: 0, reads: 0, writes: 0, commits: 0, rollbacks: 0 };
  for (const w of workers) for (const key of Object.keys(ops) as (keyof typeof ops)[]) ops[key] += w.ops[key];
  const violations = workers.flatMap((w) => w.violations);

  if (!control) {
    // At the end, every table through the proxy equals the database and the union of the models.
    const db0 = workers[0]!.db;
    for (const [name, order] of [
      [t.p, 'id'],
      [t.c, 'id'],
    ] as const) {
      const sqlText = `SELECT * FROM ${name} WHERE id > $1 ORDER BY ${order}`;
      const viaProxy = (await db0.q(sqlText, [0])).rows;
      const viaProxyAgain = (await db0.q(sqlText, [0])).rows; // a second read may come from the cache
      const truth = plain((await directQuery(sqlText, [0])).rows as RowObj[]);
      expect(viaProxy, `final ${name} through the proxy equals the database`).toEqual(truth);
      expect(viaProxyAgain, `final ${name} (repeat read) through the proxy equals the database`).toEqual(truth);
      const modelled = workers
        .flatMap((w) => (name === t.p ? w.expectedRows().p : w.expectedRows().c))
        .sort((a, b) => (a['id'] as number) - (b['id'] as number));
      expect(truth, `final ${name} in the database equals what the workers' acknowledged writes imply`).toEqual(modelled);
    }
  }
  console.info(
    `[stress] ${workers[0]!.db.label}${control ? ' CONTROL' : ''}: seed=${SEED} ${JSON.stringify(ops)} hits=${after.hits - before.hits} misses=${after.misses - before.misses} bypasses=${after.bypasses - before.bypasses} invalidations=${after.invalidations - before.invalidations} violations=${violations.length} bypass_reasons=${JSON.stringify(reasonDelta(before, after))}`,
  );
  return { violations, hits: after.hits - before.hits, ops };
}

function assertClean(r: RowStressResult): void {
  expect(r.violations, `stale or wrong reads (first 5 shown):\n${r.violations.slice(0, 5).join('\n\n')}`).toEqual([]);
  expect(r.ops.iterations, 'the workers ran').toBeGreaterThan(WORKERS * 5);
  expect(r.ops.commits + r.ops.rollbacks, 'transactions ran').toBeGreaterThan(0);
  expect(r.hits, 'the proxy answered from its cache (else the test proves nothing)').toBeGreaterThan(0);
}

describe('pipelined extended-protocol stress: every read after an acknowledged write reflects it', () => {
  it(
    'postgres.js max=4 prepare=true, 8 workers',
    async () => {
      const db = postgresJsDb(proxy.url(), true, 4);
      assertClean(await rowStress(() => db, CASE_MS, false));
    },
    CASE_TIMEOUT,
  );

  it(
    'postgres.js max=4 prepare=false, 8 workers',
    async () => {
      const db = postgresJsDb(proxy.url(), false, 4);
      assertClean(await rowStress(() => db, CASE_MS, false));
    },
    CASE_TIMEOUT,
  );

  it(
    'pg Pool max=8, named and unnamed prepared statements, 8 workers',
    async () => {
      const rnd = mulberry32(SEED ^ 0x9e3779b9);
      const db = pgPoolDb(proxy.url(), 8, rnd);
      assertClean(await rowStress(() => db, CASE_MS, false));
    },
    CASE_TIMEOUT,
  );

  it(
    'control: the same checks catch a proxy that never invalidates (writes sent behind its back)',
    async () => {
      const db = writesBehindProxy(postgresJsDb(proxy.url(), true, 4));
      const r = await rowStress(() => db, CONTROL_MS, true);
      expect(r.hits, 'control reads were served from the cache').toBeGreaterThan(0);
      expect(r.violations.length, 'stale reads detected when the proxy cannot see the writes').toBeGreaterThan(0);
      console.info(`[stress] sample control report:\n${r.violations[0]}`);
    },
    CASE_TIMEOUT,
  );
});

// ------------------------------------------------------------- case 3

const PAIRS = 4;
const BACKGROUND = 4;

interface CrossResult {
  violations: string[];
  handoffs: number;
  bgReads: number;
  hits: number;
}

/**
 * Pair i: writer A (own pg client) sets row i to n, and on the
 * acknowledgement signals reader B (another connection) which must read n.
 * B also reads before each write so the cache holds the old value. Background
 * readers on more connections keep issuing the same statement (same cache
 * key), so their pre-write results are in flight while A's write lands; a
 * read they send after A's acknowledgement must be ≥ that value.
 */
async function crossSession(ms: number, control: boolean): Promise<CrossResult> {
  const x = uniqueName('stress_x');
  created.push(x);
  await directQuery(`CREATE TABLE ${x} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${x} SELECT i, 0 FROM generate_series(1, ${PAIRS}) i`);
  const READ = `SELECT v FROM ${x} WHERE id = $1`;
  const WRITE = `UPDATE ${x} SET v = $1 WHERE id = $2`;

  const acked = new Array<number>(PAIRS + 1).fill(0); // per row: last acknowledged value
  const violations: string[] = [];
  let handoffs = 0;
  let bgReads = 0;
  const deadline = Date.now() + ms;
  let done = false;

  const pgClient = async (): Promise<pg.Client> => {
    const c = await connectClient(proxy.url());
    closers.push(() => c.end());
    return c;
  };
  // B's reader: even pairs a named pg prepared statement, odd pairs postgres.js prepared (own connection).
  const readerFor = async (i: number): Promise<(id: number) => Promise<number | undefined>> => {
    if (i % 2 === 0) {
      const c = await pgClient();
      return async (id) => (await c.query<{ v: number }>({ name: 'stress_x_read', text: READ, values: [id] })).rows[0]?.v;
    }
    const sql = postgres(proxy.url(), { max: 1, prepare: true, onnotice: () => {} });
    closers.push(() => sql.end({ timeout: 2 }));
    return async (id) => ((await sql.unsafe(READ, [id], { prepare: true })) as unknown as { v: number }[])[0]?.v;
  };

  const pair = async (i: number): Promise<void> => {
    const rnd = mulberry32(SEED * 7 + i);
    const a = control ? null : await pgClient();
    const readB = await readerFor(i);
    const toB = new Channel<{ n: number; seq: string[] }>();
    const toA = new Channel<void>();
    const trail: string[] = [];
    const note = (s: string): void => {
      trail.push(s);
      if (trail.length > 12) trail.shift();
    };

    const writer = async (): Promise<void> => {
      let n = 0;
      while (!done && Date.now() < deadline) {
        n += 1 + Math.floor(rnd() * 3);
        const named = rnd() < 0.5;
        const r =
          a === null
            ? await direct().query(WRITE, [n, i])
            : named
              ? await a.query({ name: 'stress_x_write', text: WRITE, values: [n, i] })
              : await a.query(WRITE, [n, i]);
        if (r.rowCount !== 1) violations.push(`pair ${i}: UPDATE affected ${r.rowCount}`);
        acked[i] = n;
        note(`A: UPDATE row ${i} v=${n} acknowledged`);
        toB.send({ n, seq: [...trail] });
        await toA.recv();
      }
      toB.send({ n: -1, seq: [] });
    };
    const reader = async (): Promise<void> => {
      let last = 0;
      for (;;) {
        const warm = await readB(i); // before A's next write: cache it
        if (warm !== last) violations.push(`pair ${i}: B read ${warm} before the write, expected ${last} (the last acknowledged value)`);
        note(`B: read row ${i} v=${warm} (pre-write)`);
        toA.send();
        const { n } = await toB.recv();
        if (n < 0) return;
        const got = await readB(i);
        note(`B: read row ${i} v=${got} after A's ack of ${n}`);
        handoffs += 1;
        if (got !== n) {
          violations.push(
            `[cross-session${control ? ' CONTROL' : ''}] seed=${SEED} pair ${i} handoff ${handoffs}: A's UPDATE v=${n} was acknowledged, then B read v=${got}\n` +
              `    sql: ${READ} [${i}]\n    sequence (oldest first):\n${trail.map((s) => `      ${s}`).join('\n')}`,
          );
          if (violations.length > 5) done = true;
        }
        last = n;
      }
    };
    // B goes first (pre-write read, then lets A write).
    await Promise.all([reader(), (async () => (await toA.recv(), writer()))()]);
  };

  const background = async (j: number): Promise<void> => {
    const rnd = mulberry32(SEED * 13 + j);
    const readOne: (id: number) => Promise<number | undefined> =
      j % 2 === 0
        ? await (async () => {
            const c = await pgClient();
            let chain: Promise<unknown> = Promise.resolve(); // pg does not pipeline: queue explicitly
            return (id: number) => {
              const next = chain.then(async () => (await c.query<{ v: number }>({ name: 'stress_x_read', text: READ, values: [id] })).rows[0]?.v);
              chain = next.catch(() => {});
              return next;
            };
          })()
        : (() => {
            const sql = postgres(proxy.url(), { max: 2, prepare: true, onnotice: () => {} });
            closers.push(() => sql.end({ timeout: 2 }));
            return async (id: number) => ((await sql.unsafe(READ, [id], { prepare: true })) as unknown as { v: number }[])[0]?.v;
          })();
    while (!done && Date.now() < deadline) {
      // a pipelined burst over all rows; the floor is what was acknowledged before sending
      const ids = Array.from({ length: 3 }, () => 1 + Math.floor(rnd() * PAIRS));
      const floors = ids.map((id) => acked[id]!);
      const got = await Promise.all(ids.map((id) => readOne(id)));
      bgReads += ids.length;
      ids.forEach((id, k) => {
        const g = got[k];
        if (g === undefined || g < floors[k]!) {
          violations.push(
            `[cross-session${control ? ' CONTROL' : ''}] seed=${SEED} background reader ${j}: row ${id} read v=${g} but v=${floors[k]} had been acknowledged before the read was sent`,
          );
          if (violations.length > 5) done = true;
        }
      });
    }
  };

  const before = await statsNow();
  await Promise.all([...Array.from({ length: PAIRS }, (_, i) => pair(i + 1)), ...Array.from({ length: BACKGROUND }, (_, j) => background(j))]);
  const after = await statsNow();
  if (!control) {
    const viaProxy = (await (await pgClient()).query(`SELECT id, v FROM ${x} WHERE id > $1 ORDER BY id`, [0])).rows;
    const truth = (await directQuery(`SELECT id, v FROM ${x} WHERE id > $1 ORDER BY id`, [0])).rows;
    expect(viaProxy).toEqual(truth);
    expect(truth.map((r) => r.v)).toEqual(acked.slice(1));
  }
  console.info(
    `[stress] cross-session${control ? ' CONTROL' : ''}: seed=${SEED} handoffs=${handoffs} background reads=${bgReads} hits=${after.hits - before.hits} misses=${after.misses - before.misses} violations=${violations.length}`,
  );
  return { violations, handoffs, bgReads, hits: after.hits - before.hits };
}

describe('cross-session: a write acknowledged on one connection is seen at once on another', () => {
  it(
    `${PAIRS} writer/reader pairs plus ${BACKGROUND} pipelined background readers`,
    async () => {
      const r = await crossSession(CASE_MS, false);
      expect(r.violations, `stale reads (first 5):\n${r.violations.slice(0, 5).join('\n\n')}`).toEqual([]);
      expect(r.handoffs, 'many handoffs (typically 1000+; the floor leaves room for a loaded machine)').toBeGreaterThan(200);
      expect(r.hits, 'the proxy answered from its cache').toBeGreaterThan(0);
    },
    CASE_TIMEOUT,
  );

  it(
    'control: the same checks catch a proxy that never invalidates (writes sent behind its back)',
    async () => {
      const r = await crossSession(CONTROL_MS, true);
      expect(r.hits).toBeGreaterThan(0);
      expect(r.violations.length).toBeGreaterThan(0);
      console.info(`[stress] sample control report:\n${r.violations.find((v) => v.includes('handoff')) ?? r.violations[0]}`);
    },
    CASE_TIMEOUT,
  );
});
