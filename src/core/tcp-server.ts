// The TCP side every listener shares: bind (failing with the OS's error),
// hand each accepted socket to the protocol, log server errors, and close.

import net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../config/schema.js';

export interface BoundServer {
  host: string;
  port: number;
  /** Stops accepting; resolves once every connection has ended. */
  close(): Promise<void>;
}

export async function bindTcp(listen: HostPort, log: Logger, onSocket: (socket: net.Socket) => void): Promise<BoundServer> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'listener error'));
  const address = server.address() as net.AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Closes `bound`, lets each session finish its current request (`drain`), drops half-open logins. */
export function closeAll(bound: BoundServer, sessions: Iterable<{ drain(graceMs: number): void }>, starting: Iterable<net.Socket>, graceMs = 10_000): Promise<void> {
  const closed = bound.close();
  for (const s of sessions) s.drain(graceMs);
  for (const sock of starting) sock.destroy();
  return closed;
}
