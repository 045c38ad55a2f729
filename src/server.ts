// The composition root: builds the store, the classifier, the QueryCache,
// one listener per configured protocol and the admin port from a Config, and
// owns start, reload and shutdown. The only module that imports concrete
// pieces from every folder.

import type { Logger } from 'pino';
import { startAdmin, type RunningAdmin } from './admin/http-server.js';
import { MemoryStore } from './cache/memory-store.js';
import { RedisStore } from './cache/redis-store.js';
import type { Store } from './cache/store.js';
import type { Config } from './config/schema.js';
import { explainStatement } from './core/explain.js';
import { QueryCache } from './core/query-cache.js';
import { createLogger } from './log.js';
import { startMysqlListener } from './mysql/listener.js';
import { startPgListener } from './postgres/listener.js';
import { Classifier } from './sql/classifier.js';

export interface RunningServer {
  listeners: { name: string; protocol: string; host: string; port: number }[];
  admin: { host: string; port: number } | null;
  queryCache: QueryCache;
  reload(config: Config): void;
  stop(): Promise<void>;
}

export class ServerError extends Error {
  readonly code = 'SQLCACHED_ERR_LISTEN';
}

function createStore(config: Config, log: Logger): Store {
  if (config.cache.store === 'redis') return new RedisStore({ config: config.cache.redis, log: log.child({ component: 'redis' }) });
  return new MemoryStore({ maxMemoryBytes: config.cache.maxMemoryBytes });
}

/** `store` replaces the one cache.store names (tests of the asynchronous-store seam). */
export async function startServer(config: Config, opts: { log?: Logger; store?: Store } = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.log.level, config.log.pretty);
  const classifier = await Classifier.load();
  const store = opts.store ?? createStore(config, log);
  const queryCache = new QueryCache({
    config,
    store,
    classifier,
    log: log.child({ component: 'cache' }),
    ...(config.cache.store === 'redis' ? { storeTimeoutMs: config.cache.redis.commandTimeoutMs } : {}),
  });
  const listeners: { name: string; protocol: string; host: string; port: number; connections(): number; close(): Promise<void> }[] = [];
  let admin: RunningAdmin | null = null;
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
          connections: Object.fromEntries(listeners.map((l) => [l.name, l.connections()])),
        }),
        invalidate: (req) => queryCache.invalidate(req),
        explain: (sql, dialect) => explainStatement({ classifier, config: queryCache.currentConfig, sql, dialect }),
      },
      log.child({ component: 'admin' }),
    );
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    await queryCache.close();
    throw err;
  }

  let stopping: Promise<void> | null = null;
  return {
    listeners: listeners.map((l) => ({ name: l.name, protocol: l.protocol, host: l.host, port: l.port })),
    admin: { host: admin.host, port: admin.port },
    queryCache,
    reload(next: Config): void {
      queryCache.reload(next);
      log.info({ file: next.file }, 'config reloaded');
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        await Promise.all(listeners.map((l) => l.close()));
        await admin?.close();
        await queryCache.close();
      })();
      return stopping;
    },
  };
}
