// The benchmark's peers, started for one run and stopped after it: PgBouncer
// (session mode, the pure pass-through) and Pgpool-II 4.3 with its shmem query
// cache. Each gets a minimal config in a fresh temp folder and free loopback
// ports, runs in the foreground as a child in its own process group, and is
// ready once `SELECT 1` answers through it. A missing binary throws
// PeerNotInstalledError, which the harness turns into a skipped column.

import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';
export const PGPOOL_BIN = '/usr/sbin/pgpool';

export interface RunningPeer {
  port: number;
  /** The pooler's main process, also its process group id (children included). */
  pid: number;
  /** The peer's temp folder: config, log, pid file (removed by stop()). */
  dir: string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  upstreamPort?: number;
  database: string;
}

export interface PgpoolOptions {
  upstreamPort?: number;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/** The peer's binary is absent (scripts/services.sh installs it from Debian's packages). */
export class PeerNotInstalledError extends Error {
  readonly code = 'SQLCACHED_ERR_PEER_MISSING';
  constructor(peer: string, binary: string, pkg: string) {
    super(`${peer} is not installed (${binary} is missing; apt-get install ${pkg})`);
    this.name = 'PeerNotInstalledError';
  }
}

export const pgbouncerInstalled = (): boolean => existsSync(PGBOUNCER_BIN);
export const pgpoolInstalled = (): boolean => existsSync(PGPOOL_BIN);

/** PgBouncer in session mode: one server connection per client for the client's whole
 * session, so it adds a hop and nothing else. */
export async function startPgBouncer(opts: PgBouncerOptions): Promise<RunningPeer> {
  if (!pgbouncerInstalled()) throw new PeerNotInstalledError('PgBouncer', PGBOUNCER_BIN, 'pgbouncer');
  const upstream = opts.upstreamPort ?? 5432;
  const dir = peerDir('pgbouncer');
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  // `trust` still wants the user listed in auth_file; the upstream does the real auth.
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n"root" ""\n');
  writeFileSync(
    ini,
    [
      '[databases]',
      `${opts.database} = host=127.0.0.1 port=${upstream} dbname=${opts.database}`,
      `* = host=127.0.0.1 port=${upstream}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = session',
      'default_pool_size = 40',
      'max_client_conn = 200',
      // pgbench and JDBC send it; pgbouncer would refuse the startup otherwise.
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      'log_connections = 0',
      'log_disconnections = 0',
      'stats_period = 3600',
      '',
    ].join('\n'),
  );
  // No -d: the foreground process is the pooler itself, so stop() can wait for it.
  return launch('pgbouncer', dir, PGBOUNCER_BIN, [ini], port, opts.database, 'SIGTERM');
}

/** Pgpool-II 4.3 in raw mode (one backend, no replication logic) with the in-memory
 * query cache in shared memory. */
export async function startPgpool(opts: PgpoolOptions = {}): Promise<RunningPeer> {
  if (!pgpoolInstalled()) throw new PeerNotInstalledError('Pgpool-II', PGPOOL_BIN, 'pgpool2');
  const upstream = opts.upstreamPort ?? 5432;
  const dir = peerDir('pgpool');
  const port = await freePort();
  const pcpPort = await freePort();
  const conf = join(dir, 'pgpool.conf');
  mkdirSync(join(dir, 'oiddir'));
  writeFileSync(join(dir, 'pcp.conf'), ''); // no pcp users: the pcp port is unused
  writeFileSync(join(dir, 'pool_hba.conf'), 'host all all 127.0.0.1/32 trust\n');
  writeFileSync(
    conf,
    [
      "backend_clustering_mode = 'raw'",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      // 4.3 spells it socket_dir (unix_socket_directories is 4.4's name).
      `socket_dir = '${dir}'`,
      "pcp_listen_addresses = '127.0.0.1'",
      `pcp_port = ${pcpPort}`,
      `pcp_socket_dir = '${dir}'`,
      `wd_ipc_socket_dir = '${dir}'`,
      "backend_hostname0 = '127.0.0.1'",
      `backend_port0 = ${upstream}`,
      'backend_weight0 = 1',
      "backend_flag0 = 'DISALLOW_TO_FAILOVER'",
      'enable_pool_hba = off',
      "pool_passwd = ''",
      // One pre-forked child per concurrent client: 32 covers the 16-client runs.
      'num_init_children = 32',
      'max_pool = 1',
      'child_life_time = 0',
      'child_max_connections = 0',
      'connection_cache = on',
      'load_balance_mode = off',
      'health_check_period = 0',
      'sr_check_period = 0',
      'failover_on_backend_error = off',
      'use_watchdog = off',
      'memory_cache_enabled = on',
      "memqcache_method = 'shmem'",
      'memqcache_total_size = 64MB',
      'memqcache_max_num_cache = 1000000',
      'memqcache_expire = 0',
      'memqcache_auto_cache_invalidation = on',
      'memqcache_maxcache = 400kB',
      'memqcache_cache_block_size = 1MB',
      `memqcache_oiddir = '${join(dir, 'oiddir')}'`,
      `pid_file_name = '${join(dir, 'pgpool.pid')}'`,
      `logdir = '${dir}'`,
      "log_destination = 'stderr'",
      'logging_collector = off',
      'log_min_messages = warning',
      '',
    ].join('\n'),
  );
  // -n: stay in the foreground; -D: forget any saved backend status.
  const args = ['-n', '-D', '-f', conf, '-F', join(dir, 'pcp.conf'), '-a', join(dir, 'pool_hba.conf')];
  // SIGINT is pgpool's fast shutdown (SIGTERM waits for clients to leave).
  return launch('pgpool', dir, PGPOOL_BIN, args, port, 'postgres', 'SIGINT');
}

/** Starts `bin` in its own process group, as the postgres OS user when we are root
 * (pgbouncer refuses to run as root), with stdout and stderr in `<dir>/<name>.out`. */
async function launch(name: string, dir: string, bin: string, args: string[], port: number, database: string, stopSignal: NodeJS.Signals): Promise<RunningPeer> {
  const fd = openSync(join(dir, `${name}.out`), 'a');
  chownTree(dir);
  const owner = peerOwner();
  // setpriv execs the binary, so the child's pid is the pooler's own.
  const [cmd, argv] = owner === null ? [bin, args] : ['setpriv', [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups', bin, ...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], detached: true, cwd: dir });
  closeSync(fd);
  child.once('error', () => {}); // a failed spawn leaves pid undefined, handled below
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${name} could not be spawned (${cmd})`);
  }
  const stop = async (): Promise<void> => {
    await stopGroup(child, exited, stopSignal);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(name, child, port, database, () => logTail(dir));
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, pid, dir, stop };
}

async function waitReady(name: string, child: ChildProcess, port: number, database: string, tail: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during start-up (${child.exitCode ?? child.signalCode}): ${tail()}`);
    }
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 2000 });
    client.on('error', () => {}); // a refused or dropped socket is retried below
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(100);
  }
  throw new Error(`${name} did not answer SELECT 1 on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms (${last}): ${tail()}`);
}

/** Signals the whole group (pgpool's pre-forked children share it), waits for the
 * leader, then for the group to empty; SIGKILL if either takes too long. */
async function stopGroup(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  signalGroup(pgid, signal);
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  const leaderGone = await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
  if (!leaderGone) signalGroup(pgid, 'SIGKILL');
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) signalGroup(pgid, 'SIGKILL');
    await sleep(50);
  }
  await exited;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/** True while any process of the group is alive (zombies included, until reaped). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A port the kernel just handed out and we released: free unless another process races us. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function peerDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `sqlcached-peer-${name}-`));
}

/** The postgres OS user when we run as root, else null (run as ourselves). */
function peerOwner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === 'postgres' && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error('running as root, and there is no `postgres` OS user to run the peer as');
}

function chownTree(dir: string): void {
  const owner = peerOwner();
  if (owner === null) return;
  chownSync(dir, owner.uid, owner.gid);
  for (const entry of readdirSync(dir, { recursive: true })) chownSync(join(dir, String(entry)), owner.uid, owner.gid);
}

function logTail(dir: string): string {
  const text = readdirSync(dir)
    .filter((f) => f.endsWith('.log') || f.endsWith('.out'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  return text.trim().split('\n').slice(-8).join(' | ');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
