// The root logger: pino, JSON lines on stdout, or pino-pretty for a person.
// Modules take a child with their bindings: log.child({ listener: 'pg' }),
// then .child({ session: 42 }). Messages are constant strings; data goes in
// fields: log.info({ table }, 'invalidated').

import { createRequire } from 'node:module';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/**
 * JSON by default; pino-pretty when `pretty` is set or stdout is a terminal.
 * Both write synchronously on the calling thread: pino-pretty as a plain
 * stream, not a worker transport, so it loads from dist/ and from a
 * production install alike, and nothing is lost when the process exits.
 */
export function createLogger(level: LevelWithSilent, pretty: boolean): Logger {
  const options = { name: 'sqlcached', level };
  if (pretty || process.stdout.isTTY) {
    // Required only here: a proxy logging JSON never holds pino-pretty and
    // what it pulls in (resident memory counts against cache.max_memory's
    // headroom).
    const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(options, pinoPretty({ sync: true, destination: 1, ignore: 'pid,hostname,name' }));
  }
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
