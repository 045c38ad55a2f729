// `npm run bench`: every case against the database directly and through
// sqlcached (and the peers and the ceiling server where the case has them),
// alternating, in one run; one table on stdout, the same as JSON, Markdown
// and an SVG chart under bench/results/. The load generators are pgbench and
// sysbench (Debian packages the services script installs); nothing here
// times a loop of its own.
//
//   npm run bench -- --seconds 10 --clients 16 --cases hot,passthrough,expensive,mixed,cold,memory,store,mysql

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startMysqlCeiling } from './ceiling/mysql-ceiling.js';
import { startPgCeiling } from './ceiling/pg-ceiling.js';
import { pgbench, type Measured, type PgMode } from './lib/pgbench.js';
import { table, withRatios, writeReport, type Report, type ResultRow } from './lib/report.js';
import { startSqlcached, type RunningSqlcached } from './lib/sqlcached-process.js';
import { sysbench } from './lib/sysbench.js';
import { startPgBouncer, startPgpool } from './peers.js';

const ALL_CASES = ['hot', 'passthrough', 'expensive', 'mixed', 'cold', 'memory', 'store', 'mysql'] as const;
type CaseName = (typeof ALL_CASES)[number];
const MODES: PgMode[] = ['simple', 'extended', 'prepared'];
const DB = 'sqlcached_bench';
const SCALE = 10; // 1 000 000 accounts, 100 000 per branch (the expensive read)

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env['SECONDS_PER_CELL'] ?? '10' },
    clients: { type: 'string', default: '16' },
    cases: { type: 'string', default: ALL_CASES.join(',') },
    out: { type: 'string', default: 'bench/results' },
  },
});
const seconds = Number(opts.seconds);
const clients = Number(opts.clients);
const cases = new Set(opts.cases.split(',').map((c) => c.trim()) as CaseName[]);
for (const c of cases) if (!ALL_CASES.includes(c)) throw new Error(`unknown case "${c}"; expected some of ${ALL_CASES.join(', ')}`);

const work = mkdtempSync(join(tmpdir(), 'sqlcached-bench-'));
const script = (name: string, text: string): string => {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
};
const HOT_SQL = '\\set aid random(1, 1000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n';
const HOT = script('hot.sql', HOT_SQL);
const EXPENSIVE = script(
  'expensive.sql',
  '\\set bid random(1, 10)\nSELECT b.bid, count(*), sum(a.abalance) FROM pgbench_accounts a JOIN pgbench_branches b USING (bid) WHERE a.bid = :bid GROUP BY b.bid;\n',
);
const MIX_READ = script('mix-read.sql', HOT_SQL);
const MIX_WRITE = script('mix-write.sql', '\\set aid random(1, 1000)\n\\set delta random(-5000, 5000)\nUPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n');
const WIDE = script('wide.sql', `\\set aid random(1, ${100_000 * SCALE})\nSELECT aid, repeat(md5(aid::text), 128) AS pad FROM pgbench_accounts WHERE aid = :aid;\n`);

const rows: ResultRow[] = [];
const facts: Record<string, string | number> = {};
const record = (c: string, mode: string, target: string, m: Measured, note?: string): void => {
  rows.push({ case: c, mode, target, tps: m.tps, p50_ms: m.p50_ms, p99_ms: m.p99_ms, vs_direct: null, vs_ceiling: null, ...(note ? { note } : {}) });
  const failed = m.failed > 0 ? ` (${m.failed} failed)` : '';
  console.error(`  ${c} ${mode} ${target}: ${Math.round(m.tps)} tps, p50 ${m.p50_ms.toFixed(3)} ms, p99 ${m.p99_ms.toFixed(3)} ms${failed}`);
};
const run = (port: number, mode: PgMode, file: string | null, secs = seconds): Promise<Measured> =>
  pgbench({ port, database: DB, mode, clients, seconds: secs, script: file });

/** A run that fails (a peer aborting its clients) is a row with its reason, not the end of the benchmark. */
async function attempt(c: string, mode: string, target: string, go: () => Promise<Measured>): Promise<Measured | null> {
  try {
    return await go();
  } catch (err) {
    const reason = (err as Error).message.replace(/^.* failed: /, '').split(' | ')[0] ?? 'failed';
    console.error(`  ${c} ${mode} ${target}: FAILED ${reason}`);
    rows.push({ case: c, mode, target, tps: NaN, p50_ms: NaN, p99_ms: NaN, vs_direct: null, vs_ceiling: null, note: `failed: ${reason}` });
    return null;
  }
}

async function measure(c: string, mode: string, target: string, go: () => Promise<Measured>): Promise<void> {
  const m = await attempt(c, mode, target, go);
  if (m !== null) record(c, mode, target, m);
}

/** Run every target once per mode; the order flips every other mode so drift spreads evenly. */
async function alternate(c: string, modes: PgMode[], targets: [string, number][], file: string | null, warm: Set<string> = new Set()): Promise<void> {
  for (const [i, mode] of modes.entries()) {
    for (const [name, port] of targets) if (warm.has(name)) await run(port, mode, file, Math.min(3, seconds)).catch(() => null);
    const order = i % 2 === 0 ? targets : [...targets].reverse();
    for (const [name, port] of order) await measure(c, mode, name, () => run(port, mode, file));
  }
}

async function optional<T>(what: string, start: () => Promise<T>): Promise<T | null> {
  try {
    return await start();
  } catch (err) {
    console.error(`  (${what} skipped: ${(err as Error).message})`);
    facts[`${what} skipped`] = (err as Error).message.split('\n')[0] ?? '';
    return null;
  }
}

async function setup(): Promise<void> {
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  console.error(`setting up pgbench scale ${SCALE} in ${DB}…`);
  execFileSync('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-q', '-s', String(SCALE), DB], { stdio: 'ignore' });
  // Loading a million rows leaves dirty buffers and autovacuum work behind:
  // flushed now, and a pause, so the first cells do not measure them.
  const settle = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: DB });
  await settle.connect();
  await settle.query('CHECKPOINT');
  await settle.end();
  await new Promise((resolve) => setTimeout(resolve, 10_000));
}

async function main(): Promise<void> {
  await setup();
  const started: { stop(): Promise<void> }[] = [];
  const keep = <T extends { stop(): Promise<void> } | { close(): Promise<void> }>(x: T): T => {
    started.push('stop' in x ? x : { stop: () => x.close() });
    return x;
  };
  // Peers run detached in their own process groups: an interrupted run must still stop them.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.all(started.map((x) => x.stop().catch(() => {}))).then(() => process.exit(130));
    });
  }
  try {
    const ceiling = keep(await startPgCeiling(0));
    const proxy: RunningSqlcached = keep(await startSqlcached());
    const bouncer = await optional('pgbouncer', async () => keep(await startPgBouncer({ database: DB })));
    const pool = await optional('pgpool', async () => keep(await startPgpool({})));
    const peers: [string, number][] = [...(bouncer ? [['pgbouncer', bouncer.port] as [string, number]] : []), ...(pool ? [['pgpool', pool.port] as [string, number]] : [])];

    if (cases.has('hot')) {
      console.error('case hot: point lookups over a 1 000-row hot set, all hits after a warm-up');
      await alternate('hot', MODES, [['direct', 5432], ['sqlcached', proxy.pg!], ['ceiling', ceiling.port], ...peers], HOT, new Set(['sqlcached', 'pgpool']));
      facts['hot: sqlcached hit ratio'] = Number((await proxy.stats())['hit_ratio']).toFixed(4);
    }
    if (cases.has('passthrough')) {
      console.error('case passthrough: the same with caching off (rule cache: false)');
      const off = keep(await startSqlcached({ rules: '  - { tables: [pgbench_accounts], cache: false }' }));
      await alternate('passthrough', MODES, [['direct', 5432], ['sqlcached', off.pg!], ...(bouncer ? [['pgbouncer', bouncer.port] as [string, number]] : [])], HOT);
    }
    if (cases.has('expensive')) {
      console.error('case expensive: an aggregate join over 100 000 rows, all hits through the caches');
      await alternate('expensive', ['prepared'], [['direct', 5432], ['sqlcached', proxy.pg!], ['ceiling', ceiling.port], ...(pool ? [['pgpool', pool.port] as [string, number]] : [])], EXPENSIVE, new Set(['sqlcached', 'pgpool']));
    }
    if (cases.has('mixed')) await mixed(proxy, pool?.port ?? null);
    if (cases.has('cold')) {
      console.error(`case cold: pgbench -S over all ${100_000 * SCALE} accounts (miss-heavy)`);
      await alternate('cold', ['simple'], [['direct', 5432], ['sqlcached', proxy.pg!]], null);
    }
    if (cases.has('memory')) await memory();
    if (cases.has('store')) await store();
    if (cases.has('mysql')) await mysql();
    // The proxy that served hot, expensive, mixed and cold (default max_memory: 256 MiB).
    facts['sqlcached peak RSS over its cases (MiB)'] = Math.round(proxy.peakRss() / 1048576);
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => {});
  }
  const report: Report = {
    date: new Date().toISOString().slice(0, 10),
    machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(Number(execFileSync('awk', ['/MemTotal/ {print $2}', '/proc/meminfo']).toString()) / 1024 / 1024)} GiB`,
    seconds_per_cell: seconds,
    clients,
    rows: withRatios(rows),
    facts,
  };
  console.log(table(report));
  const files = writeReport(opts.out, report);
  console.log(`written: ${files.json}, ${files.md}, ${files.svg}`);
}

/** 90 % point reads / 10 % updates by primary key over the hot set; then no stale row. */
async function mixed(proxy: RunningSqlcached, pgpoolPort: number | null): Promise<void> {
  console.error('case mixed: 90 % reads / 10 % updates over the hot set');
  const targets: [string, number][] = [['direct', 5432], ['sqlcached', proxy.pg!], ...(pgpoolPort ? [['pgpool', pgpoolPort] as [string, number]] : [])];
  for (const [name, port] of targets) {
    const before = name === 'sqlcached' ? await proxy.stats() : null;
    const m = await attempt('mixed', 'prepared', name, () => pgbenchMixed(port));
    if (m === null) continue;
    let note: string | undefined;
    if (before) {
      const after = await proxy.stats();
      const hits = Number(after['hits']) - Number(before['hits']);
      const misses = Number(after['misses']) - Number(before['misses']);
      note = `hit ratio ${(hits / Math.max(1, hits + misses)).toFixed(3)}`;
      facts['mixed: sqlcached stale reads in 1 000 sampled'] = await staleReads(proxy.pg!);
    }
    record('mixed', 'prepared', name, m, note);
  }
}

function pgbenchMixed(port: number): Promise<Measured> {
  // pgbench picks among -f scripts by weight: @9 reads, @1 writes.
  return pgbench({ port, database: DB, mode: 'prepared', clients, seconds, script: [`${MIX_READ}@9`, `${MIX_WRITE}@1`] });
}

/** Read every hot row through the proxy and directly, right after the mixed run: counts differences. */
async function staleReads(port: number): Promise<number> {
  const via = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: DB });
  const direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: DB });
  await via.connect();
  await direct.connect();
  let stale = 0;
  try {
    for (let aid = 1; aid <= 1000; aid++) {
      const q = { text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1', values: [aid] };
      const [a, b] = [await via.query(q), await direct.query(q)];
      if (a.rows[0]?.abalance !== b.rows[0]?.abalance) stale++;
    }
  } finally {
    await via.end();
    await direct.end();
  }
  return stale;
}

/** Distinct results adding up to ~10 × max_memory: peak RSS against max_memory. */
async function memory(): Promise<void> {
  console.error('case memory: distinct results of 10 × cache.max_memory');
  // ~4 kB per result (pgbench's filler reads back empty, hence md5) over a
  // million keys, and a transaction count rather than a duration: 12 × 16 MiB
  // of results, so more than 10 × max_memory whatever the machine's speed.
  const maxMiB = 16;
  const resultBytes = 4_200;
  const perClient = Math.ceil((12 * maxMiB * 1048576) / resultBytes / clients);
  const p = await startSqlcached({ cache: `  default_ttl: 1h\n  max_memory: ${maxMiB}mb\n  max_entry_size: 1mb` });
  try {
    const m = await pgbench({ port: p.pg!, database: DB, mode: 'simple', clients, seconds, script: WIDE, transactions: perClient });
    const stats = await p.stats();
    const peak = p.peakRss() / 1024 / 1024;
    record('memory', 'simple', 'sqlcached', m, `peak RSS ${peak.toFixed(0)} MiB, max_memory ${maxMiB} MiB`);
    facts['memory: peak RSS − max_memory (MiB)'] = Math.round(peak - maxMiB);
    facts['memory: entries, evictions'] = `${String(stats['entries'])}, ${String(stats['evictions'])}`;
    const received = (stats['queries'] as { bytes: number }[]).reduce((n, q) => n + q.bytes, 0);
    facts['memory: result bytes received (MiB) / max_memory (MiB)'] = `${(received / 1048576).toFixed(0)} / ${maxMiB}`;
  } finally {
    await p.stop();
  }
}

/** The hot set through the memory store and the Redis store, same run. */
async function store(): Promise<void> {
  console.error('case store: memory vs Redis store, all hits');
  const mem = await startSqlcached();
  const red = await startSqlcached({ cache: `  default_ttl: 1h\n  store: redis\n  redis:\n    key_prefix: sqlcached-bench-${process.pid}` });
  try {
    await alternate('store', ['simple', 'prepared'], [['sqlcached', mem.pg!], ['sqlcached-redis', red.pg!]], HOT, new Set(['sqlcached', 'sqlcached-redis']));
  } finally {
    await mem.stop();
    await red.stop();
  }
  for (const mode of ['simple', 'prepared']) {
    const tps = (t: string) => rows.find((r) => r.case === 'store' && r.mode === mode && r.target === t)?.tps ?? NaN;
    facts[`store ${mode}: Redis / memory tps`] = (tps('sqlcached-redis') / tps('sqlcached')).toFixed(2);
  }
}

/** sysbench oltp_point_select on MariaDB, directly, through sqlcached and against the MySQL ceiling. */
async function mysql(): Promise<void> {
  console.error('case mysql: sysbench oltp_point_select, prepared and text');
  const p = await startSqlcached({ pgUpstream: null, mysqlUpstream: 3306 });
  const ceiling = await startMysqlCeiling(0);
  try {
    for (const ps of [true, false]) {
      const mode = ps ? 'prepared' : 'text';
      await sysbench({ port: p.mysql!, threads: clients, seconds: Math.min(3, seconds), prepared: ps }).catch(() => null); // warm
      for (const [name, port] of [['direct', 3306], ['sqlcached', p.mysql!], ['ceiling', ceiling.port]] as [string, number][]) {
        await measure('mysql', mode, name, () => sysbench({ port, threads: clients, seconds, prepared: ps }));
      }
    }
  } finally {
    await p.stop();
    await ceiling.close();
  }
}

await main();
