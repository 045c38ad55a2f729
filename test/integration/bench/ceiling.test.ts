// The ceiling servers (bench/ceiling/) carry the real load generators the
// benchmark points at them: pgbench in all three query modes and psql for the
// PostgreSQL one; mysql2 (text and prepared) and sysbench, where installed,
// for the MySQL one. No database is involved: both answer on their own.

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMysqlCeiling } from '../../../bench/ceiling/mysql-ceiling.js';
import { startPgCeiling } from '../../../bench/ceiling/pg-ceiling.js';
import type { CeilingServer } from '../../../bench/ceiling/ceiling-listener.js';
import { connectMysql } from '../../helpers/mysql.js';
import { psql } from '../../helpers/psql.js';

const sysbenchInstalled = ((): boolean => {
  try {
    execFileSync('which', ['sysbench'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Run a load generator asynchronously (the server under test shares this event loop); resolves with stdout even on failure. */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

let pgCeiling: CeilingServer;
let myCeiling: CeilingServer;
let dir: string;

beforeAll(async () => {
  pgCeiling = await startPgCeiling(0);
  myCeiling = await startMysqlCeiling(0);
  dir = mkdtempSync(join(tmpdir(), 'sqlcached-ceiling-'));
});

afterAll(async () => {
  await pgCeiling?.close();
  await myCeiling?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL ceiling', () => {
  const pgbench = (mode: string, script: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    run('pgbench', ['-n', ...script, '-M', mode, '-c', '4', '-j', '2', '-T', '2', '-h', '127.0.0.1', '-p', String(pgCeiling.port), '-U', 'postgres', 'sqlcached_bench']);

  const expectClean = (r: { code: number; stdout: string; stderr: string }): void => {
    expect(r.code, r.stderr).toBe(0);
    expect(Number(/^tps = ([\d.]+)/m.exec(r.stdout)?.[1])).toBeGreaterThan(0);
    expect(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1]).toBe('0');
  };

  it.each(['simple', 'extended', 'prepared'])('pgbench -S -M %s runs against it with no failed transaction', async (mode) => {
    expectClean(await pgbench(mode, ['-S']));
  });

  it('pgbench runs a custom script against it (the hot case bench/run.ts uses)', async () => {
    const script = join(dir, 'hot.sql');
    writeFileSync(script, '\\set aid random(1, 1000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n');
    expectClean(await run('pgbench', ['-n', '-f', script, '-M', 'prepared', '-c', '2', '-j', '1', '-T', '1', '-h', '127.0.0.1', '-p', String(pgCeiling.port), '-U', 'postgres', 'sqlcached_bench']));
  });

  it('psql gets the one row for SELECT 1, and a command tag for anything else', async () => {
    const r = await psql(pgCeiling.port, ['SELECT 1', 'BEGIN', 'UPDATE t SET x = 1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('1\nBEGIN\nUPDATE 1\n');
  });
});

describe('MySQL ceiling', () => {
  it('mysql2 gets the one row from a text query and from a prepared execute', async () => {
    const c = await connectMysql(myCeiling.port);
    try {
      const [text] = await c.query('SELECT c FROM sbtest1 WHERE id = 7');
      expect(text).toEqual([{ '1': 1 }]);
      const [prepared] = await c.execute('SELECT c FROM sbtest1 WHERE id = ? AND k = ?', [7, 8]);
      expect(prepared).toEqual([{ '1': 1 }]);
      // The statement is cached by mysql2: the second execute reuses its id.
      const [again] = await c.execute('SELECT c FROM sbtest1 WHERE id = ? AND k = ?', [9, 10]);
      expect(again).toEqual([{ '1': 1 }]);
      await c.ping();
    } finally {
      await c.end();
    }
  });

  it.skipIf(!sysbenchInstalled).each(['auto', 'disable'])('sysbench oltp_point_select (--db-ps-mode=%s) runs against it without errors', async (psMode) => {
    const r = await run('sysbench', [
      'oltp_point_select', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${myCeiling.port}`, '--mysql-user=root',
      '--mysql-db=sbtest', '--tables=1', '--table-size=10000', '--threads=4', '--time=1', `--db-ps-mode=${psMode}`, 'run',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(Number(/queries:\s+(\d+)/.exec(r.stdout)?.[1])).toBeGreaterThan(0);
    expect(/ignored errors:\s+(\d+)/.exec(r.stdout)?.[1]).toBe('0');
  });
});
