// Plumbing shared by the two ceiling servers: a net.Server on a port that
// close() can really stop (it destroys the open sockets, which pgbench and
// sysbench keep until they exit), and the `--port N` command-line entry.

import net from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface CeilingServer {
  port: number;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1:port (0 = any free port); `onSocket` owns each connection. */
export function listenCeiling(port: number, onSocket: (socket: net.Socket) => void): Promise<CeilingServer> {
  const sockets = new Set<net.Socket>();
  // noDelay: each reply is one write answering a waiting client; Nagle would
  // hold a reply back behind an unacknowledged one.
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A client that resets mid-run must not take the benchmark process down.
    socket.on('error', () => socket.destroy());
    onSocket(socket);
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address() as net.AddressInfo;
      resolveListen({
        port: address.port,
        close: () =>
          new Promise<void>((resolveClose) => {
            for (const s of sockets) s.destroy();
            server.close(() => resolveClose());
          }),
      });
    });
  });
}

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolve(script)).href === metaUrl;
}

/** `node <server>.js --port N`: listen, print {"port":N} once listening, stop on SIGINT/SIGTERM. */
export async function runCeilingCli(start: (port: number) => Promise<CeilingServer>): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected 0..65535, got ${values.port}`);
  const server = await start(port);
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
