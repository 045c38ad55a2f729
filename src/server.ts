// The composition root: builds the store, the classifier, the QueryCache,
// one listener per configured protocol and the admin port from a Config, and
// owns start, reload and shutdown. The only module that imports concrete
// pieces from every folder.

import type { Logger } from 'pino';
import { startAdmin, type RunningAdmin } from './admin/http-server.js';
import type { Metrics } from './admin/metrics.js';
import type { ReloadOutcome } from './admin/route.js';
import { MemoryStore } from './cache/memory-store.js';
import type { Store } from './cache/store.js';
import type { Config } from './config/schema.js';
import { explainStatement } from './core/explain.js';
import { QueryCache } from './core/query-cache.js';
import { createLogger } from './log.js';
import { startMysqlListener } from './mysql/listener.js';
import { startPgListener } from './postgres/listener.js';
import { ConfigReloader } from './reloader.js';
import { Classifier } from './sql/classifier.js';

/** How often /stats history takes a sample (the dashboard's charts). */
const SAMPLE_EVERY_MS = 5_000;

export interface RunningServer {
  listeners: { name: string; protocol: string; host: string; port: number }[];
  admin: { host: string; port: number } | null;
  queryCache: QueryCache;
  /** Apply this config (rules, TTLs…) without reading a file. */
  reload(config: Config): void;
  /** Read config.file again and apply it, or refuse it (SIGHUP, POST /reload). */
  reloadFromFile(): ReloadOutcome;
  stop(): Promise<void>;
}

export class ServerError extends Error {
  readonly code = 'SQLCACHED_ERR_LISTEN';
}

// ioredis and prom-client are imported only when used: loading them cost
// ~6 MiB and ~3 MiB of resident memory, most of an idle memory-store proxy's
// share beyond Node itself.
async function createStore(config: Config, log: Logger): Promise<Store> {
  if (config.cache.store === 'redis') {
    const { RedisStore } = await import('./cache/redis-store.js');
    return new RedisStore({ config: config.cache.redis, log: log.child({ component: 'redis' }) });
  }
  return new MemoryStore({ maxMemoryBytes: config.cache.maxMemoryBytes });
}

/** `store` replaces the one cache.store names (tests of the asynchronous-store seam). */
export async function startServer(config: Config, opts: { log?: Logger; store?: Store } = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.log.level, config.log.pretty);
  const classifier = await Classifier.load();
  const store = opts.store ?? (await createStore(config, log));
  const queryCache = new QueryCache({
    config,
    store,
    classifier,
    log: log.child({ component: 'cache' }),
    ...(config.cache.store === 'redis' ? { storeTimeoutMs: config.cache.redis.commandTimeoutMs } : {}),
  });
  const listeners: { name: string; protocol: string; host: string; port: number; connections(): number; close(): Promise<void> }[] = [];
  let admin: RunningAdmin | null = null;
  const apply = (next: Config): void => {
    queryCache.reload(next);
    log.level = next.log.level;
  };
  const reloader = new ConfigReloader(config, apply, log.child({ component: 'config' }));
  // Built at the first scrape (see createStore): prom-client's default
  // metrics (GC, event loop) count from then on, which rate() does not mind.
  let metrics: Promise<Metrics> | null = null;
  const loadMetrics = (): Promise<Metrics> =>
    (metrics ??= import('./admin/metrics.js').then(({ createMetrics }) =>
      createMetrics({
        stats: queryCache.stats,
        usage: () => queryCache.usage(),
        maxMemoryBytes: () => (config.cache.store === 'memory' ? config.cache.maxMemoryBytes : null),
      }),
    ));
  queryCache.stats.sample();
  const sampler = setInterval(() => queryCache.stats.sample(), SAMPLE_EVERY_MS);
  sampler.unref();
  try {
    for (const l of config.listeners) {
      const llog = log.child({ listener: l.name });
      const started = l.protocol === 'mysql' ? await startMysqlListener(l, queryCache, llog) : await startPgListener(l, queryCache, llog);
      listeners.push(Object.assign(started, { protocol: l.protocol }));
    }
    admin = await startAdmin(
      config.admin.listen,
      {
        healthy: () => listeners.length > 0,
        stats: () => ({
          ...queryCache.stats.snapshot(queryCache.usage()),
          store: config.cache.store,
          max_memory: config.cache.store === 'memory' ? config.cache.maxMemoryBytes : null,
          connections: Object.fromEntries(listeners.map((l) => [l.name, l.connections()])),
          dependencies: queryCache.catalog.graphSummaries(),
        }),
        invalidate: (req) => queryCache.invalidate(req),
        invalidatePattern: (pattern) => queryCache.invalidatePattern(pattern),
        metrics: async () => {
          const m = await loadMetrics();
          return { contentType: m.contentType, text: await m.render() };
        },
        reload: async () => reloader.reload(),
        token: () => queryCache.currentConfig.admin.token,
        explain: (sql, dialect, database) =>
          explainStatement({
            classifier,
            config: queryCache.currentConfig,
            sql,
            ...(dialect === undefined ? {} : { dialect }),
            ...(database === undefined ? {} : { graph: { graph: queryCache.catalog.graphOf(database), database } }),
          }),
      },
      log.child({ component: 'admin' }),
    );
  } catch (err) {
    clearInterval(sampler);
    await Promise.all(listeners.map((l) => l.close()));
    await queryCache.close();
    throw err;
  }
  if (config.reload.watch) reloader.watch();

  let stopping: Promise<void> | null = null;
  return {
    listeners: listeners.map((l) => ({ name: l.name, protocol: l.protocol, host: l.host, port: l.port })),
    admin: { host: admin.host, port: admin.port },
    queryCache,
    reload(next: Config): void {
      apply(next);
      log.info({ file: next.file }, 'config reloaded');
    },
    reloadFromFile: () => reloader.reload(),
    stop(): Promise<void> {
      stopping ??= (async () => {
        clearInterval(sampler);
        reloader.close();
        await Promise.all(listeners.map((l) => l.close()));
        await admin?.close();
        await queryCache.close();
      })();
      return stopping;
    },
  };
}
