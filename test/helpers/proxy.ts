// Starts sqlcached in-process through its public seam (server.ts) on
// ephemeral ports, in front of the test PostgreSQL (startProxy) or the test
// MariaDB (startMysqlProxy), and talks to its admin port. Integration tests
// never reach into sessions: this is all they get.

import { pino } from 'pino';
import type { Store } from '../../src/cache/store.js';
import type { CacheConfig, Config, RuleConfig } from '../../src/config/schema.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { PG_DATABASE, PG_HOST, PG_PORT, PG_USER, pgUrl } from './db.js';
import { MY_DATABASE, MY_HOST, MY_PORT, MY_USER } from './mysql.js';
import { deleteRedisKeys, REDIS_URL } from './redis.js';

export type { RunningServer };

export interface QueryStats {
  fingerprint: string;
  calls: number;
  hits: number;
  misses: number;
  bypasses: number;
  bypass_reason: string | null;
  [more: string]: unknown;
}

/** GET /stats, as far as the tests rely on it: written from the admin
 * contract, not imported from src, so a change to the contract shows here. */
export interface Stats {
  hits: number;
  misses: number;
  bypasses: number;
  hit_ratio: number;
  entries: number;
  bytes: number;
  evictions: number;
  invalidations: number;
  bypass_reasons: Record<string, number>;
  tables: Record<string, { hits: number; misses: number; invalidations: number }>;
  queries: QueryStats[];
}

export type InvalidateBody = { table: string; database?: string } | { all: true } | { pattern: string };

export interface ProxyOverrides {
  /** Rules without `index` (filled from the position); missing fields take the YAML defaults. */
  rules?: Partial<RuleConfig>[];
  defaultTtlMs?: number;
  inTransactions?: boolean;
  maxEntrySizeBytes?: number;
  maxMemoryBytes?: number;
  tls?: { cert: string; key: string } | null;
  /** admin.token (bearer token the admin port requires). */
  adminToken?: string | null;
  /** admin.metrics_table_limit. */
  metricsTableLimit?: number;
  /** Point the listener at another upstream port (e.g. a closed one). */
  upstreamPort?: number;
  /** A store of the test's own in place of the memory store (the async seam). */
  store?: Store;
  /**
   * `cache.store: redis` with these settings (url defaults to the local Redis
   * at 6379, commandTimeoutMs to 250). keyPrefix is required: give every test
   * its own (uniqueName) so files running in parallel never share keys; the
   * proxy's stop() deletes the keys containing it (pass the same prefix to
   * two proxies to make them share one cache).
   */
  redis?: RedisOverrides;
  /** `dependencies:` edges of the config. */
  dependencies?: Array<{ writes: string; invalidates: string[] }>;
  /** dependencies.refresh (default 30 s). */
  dependencyRefreshMs?: number;
}

export interface RedisOverrides {
  url?: string;
  nodes?: { host: string; port: number }[];
  keyPrefix: string;
  commandTimeoutMs?: number;
}

export interface TestProxy {
  port: number;
  adminPort: number;
  server: RunningServer;
  config: Config;
  /** Connection string through the proxy (database `test`, user postgres — root for MySQL — by default). */
  url(db?: string, user?: string, password?: string): string;
  stats(): Promise<Stats>;
  /** POST /invalidate; resolves to the parsed JSON answer. */
  invalidate(body: InvalidateBody): Promise<unknown>;
  stop(): Promise<void>;
}

function logLevel(): Config['log']['level'] {
  const wanted = process.env['SQLCACHED_TEST_LOG'];
  if (wanted === undefined || wanted === '') return 'silent';
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
  return (levels as readonly string[]).includes(wanted) ? (wanted as Config['log']['level']) : 'debug';
}

/** The Config a test proxy runs with: everything explicit, nothing read from a file. */
export function testConfig(overrides: ProxyOverrides = {}): Config {
  const cache: CacheConfig = {
    store: 'memory',
    maxMemoryBytes: overrides.maxMemoryBytes ?? 64 * 1024 * 1024,
    maxEntrySizeBytes: overrides.maxEntrySizeBytes ?? 1024 * 1024,
    defaultTtlMs: overrides.defaultTtlMs ?? 60_000,
    inTransactions: overrides.inTransactions ?? false,
    redis: { url: 'redis://127.0.0.1:6379', nodes: null, keyPrefix: 'sqlcached-test', commandTimeoutMs: 250 },
  };
  if (overrides.redis !== undefined) {
    const r = overrides.redis;
    cache.store = 'redis';
    cache.redis = { ...cache.redis, url: r.url ?? REDIS_URL, nodes: r.nodes ?? null, keyPrefix: r.keyPrefix, commandTimeoutMs: r.commandTimeoutMs ?? 250 };
  }
  const rules: RuleConfig[] = (overrides.rules ?? []).map((rule, index) => ({
    index,
    tables: rule.tables ?? null,
    fingerprint: rule.fingerprint ?? null,
    cache: rule.cache ?? true,
    ttlMs: rule.ttlMs ?? null,
  }));
  return {
    file: null,
    listeners: [
      {
        name: 'pg',
        protocol: 'postgres',
        listen: { host: '127.0.0.1', port: 0 },
        upstream: { host: PG_HOST, port: overrides.upstreamPort ?? PG_PORT },
        tls: overrides.tls ?? null,
      },
    ],
    cache,
    rules,
    dependencies: { refreshMs: overrides.dependencyRefreshMs ?? 30_000, edges: overrides.dependencies ?? [] },
    admin: { listen: { host: '127.0.0.1', port: 0 }, token: overrides.adminToken ?? null, metricsTableLimit: overrides.metricsTableLimit ?? 100 },
    reload: { watch: false },
    log: { level: logLevel(), pretty: false },
  };
}

export async function startProxy(overrides: ProxyOverrides = {}): Promise<TestProxy> {
  return startWith(testConfig(overrides), 'pg', overrides.store, (port, db = PG_DATABASE, user = PG_USER, password) =>
    pgUrl(port, db, user, password, '127.0.0.1'),
  );
}

/** The Config a MySQL test proxy runs with: testConfig's cache and rules, one `mysql` listener in front of the test MariaDB. */
export function mysqlTestConfig(overrides: ProxyOverrides = {}): Config {
  const config = testConfig(overrides);
  return {
    ...config,
    listeners: [
      {
        name: 'mysql',
        protocol: 'mysql',
        listen: { host: '127.0.0.1', port: 0 },
        upstream: { host: MY_HOST, port: overrides.upstreamPort ?? MY_PORT },
        tls: overrides.tls ?? null,
      },
    ],
  };
}

/** A `mysql://` URL for host:port, as mysql2 takes it (`uri`). */
export function mysqlUrl(port: number, db: string = MY_DATABASE, user: string = MY_USER, password?: string, host = '127.0.0.1'): string {
  const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `mysql://${auth}@${host}:${port}/${encodeURIComponent(db)}`;
}

/** sqlcached with one MySQL listener (named `mysql`) in front of the test MariaDB. */
export async function startMysqlProxy(overrides: ProxyOverrides = {}): Promise<TestProxy> {
  return startWith(mysqlTestConfig(overrides), 'mysql', overrides.store, (port, db, user, password) => mysqlUrl(port, db, user, password));
}

async function startWith(
  config: Config,
  listenerName: string,
  store: Store | undefined,
  url: (port: number, db?: string, user?: string, password?: string) => string,
): Promise<TestProxy> {
  const log = pino({ level: config.log.level });
  const server: RunningServer = await startServer(config, store === undefined ? { log } : { log, store });
  const listener = server.listeners.find((l) => l.name === listenerName);
  if (listener === undefined) throw new Error(`startProxy: the server reports no listener named ${listenerName}`);
  if (server.admin === null) throw new Error('startProxy: the server reports no admin port');
  const port = listener.port;
  const adminBase = `http://127.0.0.1:${server.admin.port}`;

  const adminJson = async (path: string, init?: RequestInit): Promise<unknown> => {
    const res = await fetch(`${adminBase}${path}`, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${init?.method ?? 'GET'} ${path}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as unknown;
  };

  let stopped = false;
  return {
    port,
    adminPort: server.admin.port,
    server,
    config,
    url: (db?: string, user?: string, password?: string) => url(port, db, user, password),
    stats: async () => (await adminJson('/stats')) as Stats,
    invalidate: (body) =>
      adminJson('/invalidate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        await server.stop();
      } finally {
        // The test's keys go with it (best effort: a Redis a test stopped deletes nothing).
        if (config.cache.store === 'redis') await deleteRedisKeys(config.cache.redis, config.cache.redis.keyPrefix);
      }
    },
  };
}

/** Difference of the hit/miss/bypass counters between two snapshots. */
export function statsDelta(before: Stats, after: Stats): { hits: number; misses: number; bypasses: number; invalidations: number } {
  return {
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    bypasses: after.bypasses - before.bypasses,
    invalidations: after.invalidations - before.invalidations,
  };
}
