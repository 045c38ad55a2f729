// sqlcached as the benchmark runs it: the built CLI (dist/cli.js) in its own
// process, on a config written for the case, so its CPU and its peak RSS
// (VmHWM) are its own.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningSqlcached {
  pg: number | null;
  mysql: number | null;
  admin: number;
  stats(): Promise<Record<string, unknown>>;
  /** Peak resident set size so far, bytes (Linux /proc VmHWM). */
  peakRss(): number;
  stop(): Promise<void>;
}

export interface SqlcachedOptions {
  pgUpstream?: number | null;
  mysqlUpstream?: number | null;
  /** YAML lines under `cache:` (indented two spaces) and a `rules:` block, as text. */
  cache?: string;
  rules?: string;
}

export async function startSqlcached(opts: SqlcachedOptions = {}): Promise<RunningSqlcached> {
  const dir = mkdtempSync(join(tmpdir(), 'sqlcached-bench-'));
  const listeners: string[] = [];
  if (opts.pgUpstream !== null) listeners.push(`  - { name: pg, protocol: postgres, listen: 127.0.0.1:0, upstream: 127.0.0.1:${opts.pgUpstream ?? 5432} }`);
  if (opts.mysqlUpstream !== null && opts.mysqlUpstream !== undefined) {
    listeners.push(`  - { name: mysql, protocol: mysql, listen: 127.0.0.1:0, upstream: 127.0.0.1:${opts.mysqlUpstream} }`);
  }
  const config = join(dir, 'sqlcached.yaml');
  writeFileSync(
    config,
    `listeners:\n${listeners.join('\n')}\ncache:\n${opts.cache ?? '  default_ttl: 1h'}\nrules:\n${opts.rules ?? '  []'}\nadmin:\n  listen: 127.0.0.1:0\nlog:\n  level: info\n`,
  );
  // As `npm start` runs it (the young-generation size is a node flag: src/cli.ts).
  const child = spawn(process.execPath, ['--max-semi-space-size=4', 'dist/cli.js', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SQLCACHED_ADMIN_TOKEN: '' } });
  const listening = await waitForListening(child);
  const ports = (name: string) => listening.listeners.find((l) => l.name === name)?.port ?? null;
  const admin = listening.admin.port;
  return {
    pg: ports('pg'),
    mysql: ports('mysql'),
    admin,
    stats: async () => (await (await fetch(`http://127.0.0.1:${admin}/stats`)).json()) as Record<string, unknown>,
    peakRss: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Listening {
  listeners: { name: string; port: number }[];
  admin: { port: number };
}

/** The info-level "listening" log line carries the bound ports (connections are logged at info
 * too: one line per connection, nothing per statement). */
function waitForListening(child: ChildProcess): Promise<Listening> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`sqlcached did not start: ${err || out}`)), 20_000);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    let found = false;
    // Keep draining stdout after start-up: the proxy logs synchronously, and a
    // full pipe would stall it.
    child.stdout?.on('data', (d: Buffer) => {
      if (found) return;
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"msg":"listening"')) continue;
        clearTimeout(timer);
        found = true;
        resolve(JSON.parse(line) as Listening);
        return;
      }
    });
    child.once('exit', (code) => reject(new Error(`sqlcached exited (${code}): ${err || out}`)));
  });
}
