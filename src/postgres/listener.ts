// The PostgreSQL listener: accepts client connections, runs the startup
// phase, then hands each connection to a PgSession. Owns the set of live
// connections so shutdown can end them all.

import type net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/schema.js';
import type { QueryCache } from '../core/query-cache.js';
import { bindTcp, closeAll } from '../core/tcp-server.js';
import { PgSession } from './session.js';
import { runStartup } from './startup.js';

/** How long a busy session may finish its request at shutdown. */
const DRAIN_GRACE_MS = 10_000;

export interface PgListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startPgListener(cfg: ListenerConfig, queryCache: QueryCache, log: Logger): Promise<PgListener> {
  const upstreamAddress = `${cfg.upstream.host}:${cfg.upstream.port}`;
  const secureContext = cfg.tls ? tls.createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }) : null;
  const starting = new Set<net.Socket>();
  const sessions = new Set<PgSession>();
  let nextId = 1;
  // Every established session holds one upstream connection until it closes.
  const meter = queryCache.stats.listener(cfg.name, 'postgres');
  meter.connections = () => ({ clients: sessions.size + starting.size, upstreams: sessions.size });

  const bound = await bindTcp(cfg.listen, log, (socket) => {
    const id = nextId++;
    const slog = log.child({ session: id });
    starting.add(socket);
    slog.info({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'connection opened');
    runStartup(socket, { upstream: cfg.upstream, tls: secureContext, log: slog }).then(
      (auth) => {
        starting.delete(socket);
        if (auth === null) {
          slog.info('connection closed during startup');
          return;
        }
        const ulog = slog.child({ db: auth.parameters.get('database') ?? auth.parameters.get('user'), user: auth.parameters.get('user') });
        const session = new PgSession(auth, { queryCache, upstreamAddress, log: ulog, meter, onClose: (s) => sessions.delete(s) });
        sessions.add(session);
      },
      (err: unknown) => {
        starting.delete(socket);
        slog.error({ err }, 'startup failed');
        socket.destroy();
      },
    );
  });

  log.info({ listen: `${bound.host}:${bound.port}`, upstream: upstreamAddress }, 'listener started');

  return {
    name: cfg.name,
    host: bound.host,
    port: bound.port,
    connections: () => sessions.size + starting.size,
    // Resolves once every connection has ended: idle sessions at once,
    // busy ones after their current request (at most DRAIN_GRACE_MS).
    close: () => closeAll(bound, sessions, starting, DRAIN_GRACE_MS),
  };
}
