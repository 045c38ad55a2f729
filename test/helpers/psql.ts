// Runs the real `psql` (libpq) against a port: the client users actually
// type into, and the one whose \copy, \d and SSL negotiation we must not break.

import { spawn } from 'node:child_process';
import { PG_DATABASE, PG_USER } from './db.js';

export interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface PsqlOptions {
  /** Fed to psql's stdin (COPY … FROM STDIN, \copy … from pstdin). */
  input?: string;
  user?: string;
  db?: string;
  password?: string;
  /** Extra libpq settings as a conninfo string instead of -h/-p (e.g. sslmode). */
  conninfo?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run this script in one session (`-f -`, fed on stdin) instead of -c commands; ON_ERROR_STOP off. */
  script?: string;
}

/**
 * `psql -X -At -h 127.0.0.1 -p PORT -U user db -v ON_ERROR_STOP=1 -c c1 -c c2 …`.
 * Always asynchronous: the proxy under test runs in this very process, so a
 * spawnSync would block the event loop that has to answer psql.
 * Resolves with the exit code and both streams; never rejects on a SQL error.
 */
export function psql(port: number, commands: string[], opts: PsqlOptions = {}): Promise<PsqlResult> {
  const target =
    opts.conninfo !== undefined
      ? [`host=127.0.0.1 port=${port} user=${opts.user ?? PG_USER} dbname=${opts.db ?? PG_DATABASE} ${opts.conninfo}`]
      : ['-h', '127.0.0.1', '-p', String(port), '-U', opts.user ?? PG_USER, opts.db ?? PG_DATABASE];
  const args =
    opts.script !== undefined
      ? ['-X', '-At', ...target, '-f', '-']
      : ['-X', '-At', '-v', 'ON_ERROR_STOP=1', ...target, ...commands.flatMap((c) => ['-c', c])];
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'sqlcached-test-psql', ...opts.env };
  delete env['PGSERVICE'];
  if (opts.password !== undefined) env['PGPASSWORD'] = opts.password;
  else delete env['PGPASSWORD'];

  return new Promise((resolve, reject) => {
    const child = spawn('psql', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // psql may exit before reading all of stdin
    child.stdin.end(opts.script ?? opts.input ?? '');
  });
}

/** psql that must succeed; returns stdout without the trailing newline. */
export async function psqlOk(port: number, commands: string[], opts: PsqlOptions = {}): Promise<string> {
  const r = await psql(port, commands, opts);
  if (r.code !== 0) throw new Error(`psql exited ${String(r.code)}: ${r.stderr.trim()}\n${r.stdout}`);
  return r.stdout.replace(/\n$/, '');
}
