// pgbench as the load generator (the numbers are pgbench's, never a timing
// loop of ours): one run against one port, tps from its summary, latency
// percentiles from its per-transaction log (-l, sampled).

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type PgMode = 'simple' | 'extended' | 'prepared';

export interface PgbenchRun {
  port: number;
  database: string;
  mode: PgMode;
  clients: number;
  seconds: number;
  /** Custom script files (-f, each may carry pgbench's @weight); null = the built-in -S. */
  script: string | string[] | null;
  /** Transactions per client (-t) instead of a duration (-T seconds). */
  transactions?: number;
}

export interface Measured {
  tps: number;
  p50_ms: number;
  p99_ms: number;
  /** Transactions that failed (pgbench "number of failed transactions"). */
  failed: number;
}

/** Fraction of transactions logged for the percentiles: enough samples, small files. */
const SAMPLING = 0.05;

export async function pgbench(run: PgbenchRun): Promise<Measured> {
  const logDir = mkdtempSync(join(tmpdir(), 'sqlcached-pgbench-'));
  const args = [
    '-h', '127.0.0.1', '-p', String(run.port), '-U', 'postgres', '-n',
    '-c', String(run.clients), '-j', '2', ...(run.transactions === undefined ? ['-T', String(run.seconds)] : ['-t', String(run.transactions)]), '-M', run.mode,
    '-l', '--sampling-rate', String(SAMPLING), '--log-prefix', join(logDir, 'tx'),
    ...(run.script === null ? ['-S'] : [run.script].flat().flatMap((f) => ['-f', f])),
    run.database,
  ];
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile('pgbench', args, { maxBuffer: 16 * 1024 * 1024, timeout: (run.transactions === undefined ? run.seconds + 60 : 600) * 1000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`pgbench ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
        else resolve(stdout);
      });
    });
    const tps = Number(/^tps = ([\d.]+)/m.exec(out)?.[1] ?? NaN);
    const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
    const latencies: number[] = [];
    for (const f of readdirSync(logDir)) {
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag]: time is in µs.
      for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (Number.isFinite(us)) latencies.push(us / 1000);
      }
    }
    latencies.sort((a, b) => a - b);
    return { tps, failed, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99) };
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
