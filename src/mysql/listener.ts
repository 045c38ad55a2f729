// The MySQL/MariaDB listener: accepts client connections, runs the
// connection phase, then hands each one to a MysqlSession. Owns the live
// connections so shutdown can end them all.

import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/schema.js';
import type { QueryCache } from '../core/query-cache.js';
import { bindTcp, closeAll } from '../core/tcp-server.js';
import { MysqlSession } from './session.js';
import { runMysqlStartup } from './startup.js';

/** How long a busy session may finish its command at shutdown. */
const DRAIN_GRACE_MS = 10_000;

export interface MysqlListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startMysqlListener(cfg: ListenerConfig, queryCache: QueryCache, log: Logger): Promise<MysqlListener> {
  const upstreamAddress = `${cfg.upstream.host}:${cfg.upstream.port}`;
  const secureContext = cfg.tls ? tls.createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }) : null;
  const starting = new Set<net.Socket>();
  const sessions = new Set<MysqlSession>();
  const databases = new Set<string>();
  let nextId = 1;
  // Every established session holds one upstream connection until it closes.
  const meter = queryCache.stats.listener(cfg.name, 'mysql');
  meter.connections = () => ({ clients: sessions.size + starting.size, upstreams: sessions.size });

  const bound = await bindTcp(cfg.listen, log, (socket) => {
    const id = nextId++;
    const slog = log.child({ session: id });
    starting.add(socket);
    slog.info({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'connection opened');
    runMysqlStartup(socket, { upstream: cfg.upstream, tls: secureContext, log: slog }).then(
      (auth) => {
        starting.delete(socket);
        if (auth === null) {
          slog.info('connection closed during the handshake');
          return;
        }
        const ulog = slog.child({ user: auth.user, db: auth.database });
        const session = new MysqlSession(auth, { queryCache, upstreamAddress, log: ulog, databases, meter, onClose: (s) => sessions.delete(s) });
        sessions.add(session);
      },
      (err: unknown) => {
        starting.delete(socket);
        slog.error({ err }, 'handshake failed');
        socket.destroy();
      },
    );
  });

  log.info({ listen: `${bound.host}:${bound.port}`, upstream: upstreamAddress, protocol: 'mysql' }, 'listener started');

  return {
    name: cfg.name,
    host: bound.host,
    port: bound.port,
    connections: () => sessions.size + starting.size,
    close: () => closeAll(bound, sessions, starting, DRAIN_GRACE_MS),
  };
}
