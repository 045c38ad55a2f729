// Real Redis for the Redis-store tests: extra `redis-server` processes on
// free loopback ports (a standalone server a test may kill, pause and
// restart; a 3-master cluster made with `redis-cli --cluster create`), a raw
// RESP client that asks them things without ioredis' reconnect machinery,
// and the clean-up of a test's keys (SCAN + DEL through ioredis).
//
// Everything here is asynchronous: the proxy under test runs in the same
// process, and a spawnSync would freeze it. Each process started here is
// also watched by a small shell watchdog that SIGKILLs it (and removes its
// directory) if the test worker dies without calling stop(): a crashed or
// killed worker never leaves a redis-server behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = Number(process.env['SQLCACHED_TEST_REDIS_PORT'] ?? 6379);
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;
const REDIS_SERVER = process.env['SQLCACHED_TEST_REDIS_SERVER'] ?? 'redis-server';
const REDIS_CLI = process.env['SQLCACHED_TEST_REDIS_CLI'] ?? 'redis-cli';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ ports

/** Whether host:port can be bound right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: REDIS_HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the OS says is free now (bind to 0, read it, close). */
async function osFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: REDIS_HOST, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A free port for a cluster node: its bus port (port + 10000) must be free
 * too, so it is drawn from 20000..45000 (ports the OS rarely hands out as
 * ephemeral ones here) and both are checked.
 */
async function clusterFreePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await bindable(port)) && (await bindable(port + 10_000))) return port;
  }
  throw new Error('startRedisCluster: no free port pair (port, port + 10000) found');
}

// ------------------------------------------------------------- raw RESP

type Reply = string | number | null | Reply[] | RedisReplyError;

export class RedisReplyError extends Error {}

/** Parse one RESP reply from buf at pos; undefined when incomplete. */
function parseReply(buf: Buffer, pos: number): { value: Reply; end: number } | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisReplyError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < n; i += 1) {
        const r = parseReply(buf, at);
        if (r === undefined) return undefined;
        items.push(r.value);
        at = r.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/** Credentials for a probe: AUTH [user] password is sent before the command. */
export interface RedisAuth {
  user?: string;
  password: string;
}

function encode(args: (string | number)[]): string {
  const parts = args.map(String);
  return `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
}

/**
 * One command on a fresh connection to 127.0.0.1:port; resolves to the reply
 * (an error reply resolves to a RedisReplyError). Rejects on a connection
 * error or after `timeoutMs`: a probe, not a client. With `auth`, AUTH goes
 * first (its error reply, if any, is the answer).
 */
export function redisCommand(port: number, args: (string | number)[], timeoutMs = 1_000, auth?: RedisAuth): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: REDIS_HOST, port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, value?: Reply): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err !== null) reject(err);
      else resolve(value ?? null);
    };
    const timer = setTimeout(() => done(new Error(`redis ${REDIS_HOST}:${port} ${String(args[0])}: no answer in ${timeoutMs} ms`)), timeoutMs);
    sock.once('error', (err) => done(err));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const first = parseReply(buf, 0);
        if (first === undefined) return;
        if (auth === undefined) return done(null, first.value);
        if (first.value instanceof RedisReplyError) return done(null, first.value);
        const second = parseReply(buf, first.end);
        if (second !== undefined) done(null, second.value);
      } catch (err) {
        done(err as Error);
      }
    });
    sock.once('connect', () => {
      const authArgs = auth === undefined ? '' : encode(auth.user === undefined ? ['AUTH', auth.password] : ['AUTH', auth.user, auth.password]);
      sock.write(authArgs + encode(args));
    });
  });
}

/** PING answered PONG (false on anything else, including LOADING). */
export async function pings(port: number, timeoutMs = 500, auth?: RedisAuth): Promise<boolean> {
  try {
    return (await redisCommand(port, ['PING'], timeoutMs, auth)) === 'PONG';
  } catch {
    return false;
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// -------------------------------------------------------------- processes

/** Every redis-server this worker started and has not reaped: the exit hook's list. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgot stop(): a synchronous kill at exit (the watchdog covers a SIGKILLed worker).
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** A shell that SIGKILLs `pid` and removes `dir` once this Node process is gone; exits by itself when `pid` is. */
function watchdog(pid: number, dir: string | null): ChildProcess {
  const script =
    'while kill -0 "$1" 2>/dev/null; do ' +
    '  if ! kill -0 "$2" 2>/dev/null; then kill -CONT "$1" 2>/dev/null; kill -9 "$1" 2>/dev/null; [ -n "$3" ] && rm -rf "$3"; exit 0; fi; ' +
    '  sleep 1; ' +
    'done';
  const w = spawn('sh', ['-c', script, 'sqlcached-redis-watchdog', String(pid), String(process.pid), dir ?? ''], {
    stdio: 'ignore',
    detached: true,
  });
  w.on('error', () => {});
  w.unref();
  return w;
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  dog: ChildProcess;
}

function spawnRedis(args: string[], cwd: string, dirForWatchdog: string | null): Spawned {
  installExitHook();
  const child = spawn(REDIS_SERVER, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  live.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      live.delete(child);
      out += `\nspawn error: ${err.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  const dog = child.pid === undefined ? spawn('true') : watchdog(child.pid, dirForWatchdog);
  return { child, exited, output: () => out, dog };
}

/** SIGTERM (SIGCONT first, in case it is paused), then SIGKILL after `graceMs`; resolves once it has exited. */
async function terminate(s: Spawned, graceMs = 3_000): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGCONT');
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
  await s.exited;
  clearTimeout(timer);
}

function stopDog(s: Spawned): void {
  try {
    s.dog.kill('SIGKILL');
  } catch {
    // already gone
  }
}

/** Start it and wait for PING; on failure, kill it and report what it printed. */
async function startAndWait(args: string[], cwd: string, port: number, dir: string | null, timeoutMs = 10_000, auth?: RedisAuth): Promise<Spawned> {
  const s = spawnRedis(args, cwd, dir);
  let exitedEarly = false;
  void s.exited.then(() => {
    exitedEarly = true;
  });
  try {
    await waitUntil(`redis-server on port ${port} to answer PING`, async () => {
      if (exitedEarly) throw new Error(`redis-server on port ${port} exited at start:\n${s.output()}`);
      return pings(port, 500, auth);
    }, timeoutMs);
  } catch (err) {
    s.child.kill('SIGKILL');
    await s.exited;
    stopDog(s);
    throw new Error(`${(err as Error).message}\n--- redis-server output ---\n${s.output()}`);
  }
  return s;
}

// ------------------------------------------------------------ standalone

export interface RedisServerOptions {
  /** Keep the data over kill()/restart() (append-only file, fsync always): a Redis whose entries survive the outage. Default false. */
  persist?: boolean;
  /** Extra redis-server arguments (e.g. --requirepass, --user …). */
  args?: string[];
  /** The credentials the helper's own probes (start-up PING, command()) use when `args` demand them. */
  auth?: RedisAuth;
}

export interface RedisServer {
  port: number;
  url: string;
  /** The current redis-server pid (changes on restart). */
  pid(): number | undefined;
  running(): boolean;
  /** Graceful stop (SIGTERM), removes its directory; idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, like a crash; the directory (and, with persist, the data) stays for restart(). */
  kill(): Promise<void>;
  /** Start again on the same port (kills the running one first) and wait for PING. */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered (a hung Redis). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** One command over a fresh connection (a probe; rejects when it is down). */
  command(...args: (string | number)[]): Promise<Reply>;
}

/** An extra redis-server on a free loopback port, in a temp dir, nothing saved to disk unless `persist`. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sqlcached-redis-'));
  let port = 0;
  let current: Spawned | null = null;
  const argsFor = (p: number): string[] => [
    '--port', String(p),
    '--bind', REDIS_HOST,
    '--protected-mode', 'no',
    '--dir', dir,
    '--save', '',
    ...(opts.persist === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    '--enable-debug-command', 'local',
    '--loglevel', 'warning',
    ...(opts.args ?? []),
  ];
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 5 && current === null; attempt += 1) {
    port = await osFreePort();
    try {
      current = await startAndWait(argsFor(port), dir, port, dir, 10_000, opts.auth);
    } catch (err) {
      lastErr = err; // the port was taken between the check and the bind: try another
    }
  }
  if (current === null) {
    await rm(dir, { recursive: true, force: true });
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }
  let stopped = false;

  const killCurrent = async (): Promise<void> => {
    const s = current;
    if (s === null) return;
    current = null;
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
    stopDog(s);
  };

  return {
    port,
    url: `redis://${REDIS_HOST}:${port}`,
    pid: () => current?.child.pid,
    running: () => current !== null && current.child.exitCode === null && current.child.signalCode === null,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const s = current;
      current = null;
      if (s !== null) {
        await terminate(s);
        stopDog(s);
      }
      await rm(dir, { recursive: true, force: true });
    },
    kill: killCurrent,
    restart: async () => {
      if (stopped) throw new Error('restart() after stop()');
      await killCurrent();
      // The port was ours a moment ago; a socket in TIME_WAIT does not stop redis (SO_REUSEADDR).
      current = await startAndWait(argsFor(port), dir, port, dir, 10_000, opts.auth);
    },
    pause: () => {
      current?.child.kill('SIGSTOP');
    },
    resume: () => {
      current?.child.kill('SIGCONT');
    },
    command: (...args) => redisCommand(port, args, 1_000, opts.auth),
  };
}

// ---------------------------------------------------------------- cluster

export interface RedisClusterHandle {
  nodes: { host: string; port: number }[];
  /** Stop every node and remove their directories; idempotent. */
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, out: `${out}\nspawn error: ${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Three masters (no replicas) on free loopback ports, joined by `redis-cli --cluster create`, all reporting cluster_state:ok. */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'sqlcached-redis-cluster-'));
  const started: Spawned[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(started.map(async (s) => {
      await terminate(s);
      stopDog(s);
    }));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const p = await clusterFreePort(taken);
      taken.add(p);
      taken.add(p + 10_000);
      ports.push(p);
    }
    for (const p of ports) {
      const args = [
        '--port', String(p),
        '--bind', REDIS_HOST,
        '--protected-mode', 'no',
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${p}.conf`,
        '--cluster-node-timeout', '5000',
        '--loglevel', 'warning',
      ];
      started.push(await startAndWait(args, dir, p, dir));
    }
    const create = await run(
      REDIS_CLI,
      ['--cluster', 'create', ...ports.map((p) => `${REDIS_HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      30_000,
    );
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${create.code}):\n${create.out}`);
    await waitUntil(
      'cluster_state:ok on all three nodes',
      async () => {
        const infos = await Promise.all(ports.map((p) => redisCommand(p, ['CLUSTER', 'INFO']).catch(() => '')));
        return infos.every((i) => typeof i === 'string' && i.includes('cluster_state:ok') && i.includes('cluster_slots_assigned:16384'));
      },
      20_000,
      100,
    );
    // Every node must also agree on who owns every slot before a client is pointed at it.
    await waitUntil(
      'all three nodes to know all three masters',
      async () => {
        const views = await Promise.all(ports.map((p) => redisCommand(p, ['CLUSTER', 'NODES']).catch(() => '')));
        return views.every((v) => typeof v === 'string' && v.trim().split('\n').filter((l) => l.includes('master') && !l.includes('fail')).length === 3);
      },
      20_000,
      100,
    );
    return { nodes: ports.map((port) => ({ host: REDIS_HOST, port })), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ------------------------------------------------------------- key clean-up

export interface RedisTarget {
  url?: string;
  nodes?: { host: string; port: number }[] | null;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** SCAN every key containing `text` on one node and DEL them (one key per DEL: cluster slots differ). */
async function deleteMatching(client: Redis, text: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `*${globEscape(text)}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      const p = client.pipeline();
      for (const k of keys) p.del(k);
      await p.exec();
      n += keys.length;
    }
  } while (cursor !== '0');
  return n;
}

const quiet = {
  lazyConnect: true,
  connectTimeout: 1_000,
  commandTimeout: 2_000,
  maxRetriesPerRequest: 0,
  enableOfflineQueue: true,
  retryStrategy: () => null,
} as const;

/**
 * Delete every key whose name contains `keyPrefix` (a unique name, so
 * "contains" is safe and also finds keys that wrap it in a {hash tag}).
 * Best effort: a store that is down or gone deletes nothing. Returns the count.
 */
export async function deleteRedisKeys(target: RedisTarget, keyPrefix: string): Promise<number> {
  if (keyPrefix.length < 6) throw new Error(`deleteRedisKeys: refusing a short prefix '${keyPrefix}' (use uniqueName)`);
  if (target.nodes !== undefined && target.nodes !== null && target.nodes.length > 0) {
    const cluster = new Cluster(target.nodes, { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: quiet, enableOfflineQueue: true });
    cluster.on('error', () => {});
    try {
      await cluster.connect();
      const counts = await Promise.all(cluster.nodes('master').map((node) => deleteMatching(node, keyPrefix)));
      return counts.reduce((a, b) => a + b, 0);
    } catch {
      return 0;
    } finally {
      cluster.disconnect();
    }
  }
  const client = new Redis(target.url ?? REDIS_URL, quiet);
  client.on('error', () => {});
  try {
    await client.connect();
    return await deleteMatching(client, keyPrefix);
  } catch {
    return 0;
  } finally {
    client.disconnect();
  }
}

/** The keys containing `keyPrefix` (for assertions about what a store wrote); standalone or cluster. */
export async function listRedisKeys(target: RedisTarget, keyPrefix: string): Promise<string[]> {
  const scanOne = async (client: Redis): Promise<string[]> => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${globEscape(keyPrefix)}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  };
  if (target.nodes !== undefined && target.nodes !== null && target.nodes.length > 0) {
    const cluster = new Cluster(target.nodes, { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: quiet });
    cluster.on('error', () => {});
    try {
      await cluster.connect();
      return (await Promise.all(cluster.nodes('master').map(scanOne))).flat();
    } finally {
      cluster.disconnect();
    }
  }
  const client = new Redis(target.url ?? REDIS_URL, quiet);
  client.on('error', () => {});
  try {
    await client.connect();
    return await scanOne(client);
  } finally {
    client.disconnect();
  }
}

/** Per cluster node port: how many of the keys containing `keyPrefix` it holds. */
export async function keysPerNode(nodes: { host: string; port: number }[], keyPrefix: string): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const n of nodes) {
    const client = new Redis({ host: n.host, port: n.port, ...quiet });
    client.on('error', () => {});
    try {
      await client.connect();
      let count = 0;
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `*${globEscape(keyPrefix)}*`, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
      out[n.port] = count;
    } finally {
      client.disconnect();
    }
  }
  return out;
}

// ------------------------------------------------------------- network cut

export interface RedisLink {
  /** Where to point a proxy instead of the server: redis://127.0.0.1:<port>. */
  port: number;
  url: string;
  /** Drop every connection and refuse new ones (Redis keeps running and keeps its data: a network outage). */
  cut(): void;
  /** Accept and forward again. */
  restore(): void;
  isCut(): boolean;
  /** Hold what the proxy sends to Redis for `ms` before forwarding it (0: none); order is kept. The connection stays up. */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

/**
 * An in-process TCP forwarder to 127.0.0.1:targetPort that the test can cut:
 * one instance can lose Redis while another still reaches it (a partition),
 * or all can lose it while Redis keeps its data.
 */
export async function startRedisLink(targetPort: number): Promise<RedisLink> {
  const pairs = new Set<{ a: Socket; b: Socket }>();
  let down = false;
  let delayMs = 0;
  const server = createServer((client) => {
    client.on('error', () => {});
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: REDIS_HOST, port: targetPort });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    // client → Redis through a queue, so a delay can hold commands without reordering them.
    let chain: Promise<void> = Promise.resolve();
    let lastRelease = 0;
    client.on('data', (chunk: Buffer) => {
      const release = Math.max(performance.now() + delayMs, lastRelease);
      lastRelease = release;
      chain = chain.then(async () => {
        const wait = release - performance.now();
        if (wait > 0) await sleep(wait);
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: REDIS_HOST, port: 0 }, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  const dropAll = (): void => {
    for (const p of [...pairs]) {
      pairs.delete(p);
      p.a.destroy();
      p.b.destroy();
    }
  };
  return {
    port,
    url: `redis://${REDIS_HOST}:${port}`,
    cut: () => {
      down = true;
      dropAll();
    },
    restore: () => {
      down = false;
    },
    isCut: () => down,
    setDelay: (ms) => {
      delayMs = ms;
    },
    stop: async () => {
      down = true;
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
