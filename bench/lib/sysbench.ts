// sysbench oltp_point_select as the MariaDB load generator: one run against
// one port, queries per second from its summary, p50/p99 from its latency
// histogram (--histogram), the table prepared once in database sbtest.

import { execFile, execFileSync } from 'node:child_process';
import type { Measured } from './pgbench.js';

export interface SysbenchRun {
  port: number;
  threads: number;
  seconds: number;
  /** Server-side prepared statements (sysbench's default) or text queries (--db-ps-mode=disable). */
  prepared: boolean;
}

const TABLE_SIZE = 10_000;
let prepared = false;

function common(port: number): string[] {
  return ['oltp_point_select', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=root', '--mysql-db=sbtest', '--tables=1', `--table-size=${TABLE_SIZE}`];
}

/** Create sbtest and its table on MariaDB (3306) once per run. */
function prepareOnce(): void {
  if (prepared) return;
  execFileSync('mysql', ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-e', 'CREATE DATABASE IF NOT EXISTS sbtest']);
  try {
    execFileSync('sysbench', [...common(3306), 'cleanup'], { stdio: 'ignore' });
  } catch {
    // Nothing to clean up.
  }
  execFileSync('sysbench', [...common(3306), 'prepare'], { stdio: 'ignore' });
  prepared = true;
}

export async function sysbench(run: SysbenchRun): Promise<Measured> {
  prepareOnce();
  const args = [...common(run.port), `--threads=${run.threads}`, `--time=${run.seconds}`, '--histogram=on', '--report-interval=0', ...(run.prepared ? [] : ['--db-ps-mode=disable']), 'run'];
  const out = await new Promise<string>((resolve, reject) => {
    execFile('sysbench', args, { maxBuffer: 16 * 1024 * 1024, timeout: (run.seconds + 60) * 1000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`sysbench ${args.join(' ')} failed: ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ')}`));
      else resolve(stdout);
    });
  });
  const qps = Number(/queries:\s+\d+\s+\(([\d.]+) per sec\.\)/.exec(out)?.[1] ?? NaN);
  const errors = Number(/ignored errors:\s+(\d+)/.exec(out)?.[1] ?? 0);
  // Histogram lines: "       0.105 |****      12345" (value in ms, then count).
  const buckets: [number, number][] = [];
  for (const m of out.matchAll(/^\s+([\d.]+)\s+\|\**\s+(\d+)$/gm)) buckets.push([Number(m[1]), Number(m[2])]);
  const total = buckets.reduce((n, [, c]) => n + c, 0);
  const at = (q: number): number => {
    let run = 0;
    for (const [v, c] of buckets) {
      run += c;
      if (run >= q * total) return v;
    }
    return NaN;
  };
  return { tps: qps, failed: errors, p50_ms: at(0.5), p99_ms: at(0.99) };
}
