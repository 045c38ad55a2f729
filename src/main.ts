// Process entry: argv → loadConfig → startServer. SIGHUP reloads the config
// file (an invalid one is logged and the running config kept); SIGTERM and
// SIGINT stop gracefully, and a second one exits at once.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { explainCommand } from './explain-command.js';
import { createLogger } from './log.js';
import { startServer, type RunningServer } from './server.js';

/** Exit statuses, as --help lists them. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: sqlcached [--config FILE] [--check] [--help] [--version]
       sqlcached explain "<sql>" [--dialect postgres|mysql] [--config FILE] [--json]

A query-cache proxy for PostgreSQL. Point an application's connection string
at a listener: repeated SELECTs are answered from the cache, and a write
through the proxy invalidates what it makes stale before it is acknowledged.

Options:
  -c, --config FILE  the YAML config file. Default: config/default.yaml in the
                     current directory, else the copy shipped with sqlcached.
                     config/default.yaml documents every key.
      --check        validate the config file, print "config ok" and exit.
  -h, --help         print this help and exit.
  -v, --version      print the version and exit.

Commands:
  explain "<sql>"    print what the proxy would do with a statement: kind,
                     tables, cacheable or why not, fingerprint, rule and TTL
                     (same answer as GET /explain). See 'sqlcached explain --help'.

Signals:
  SIGHUP             reload the config file without dropping connections; an
                     invalid file is logged and the running config kept.
  SIGTERM, SIGINT    stop: close the listeners, let sessions finish, exit 0.
                     A second signal exits at once (status 1).

Admin endpoints (admin.listen in the config, default 127.0.0.1:9090):
  GET  /            the live dashboard (hit ratio, top queries, tables).
  GET  /health       200 {"status":"ok"} while serving, 503 otherwise.
  GET  /stats        hits, misses, bypasses, hit ratio, per table and per
                     query shape, history (JSON).
  GET  /metrics      Prometheus metrics, names prefixed sqlcached_.
  POST /invalidate   {"table":"users"}, {"database":"app","table":"users"},
                     {"pattern":"SELECT * FROM articles%"} or {"all":true}.
  POST /reload       re-read the config file (as SIGHUP).
  GET  /explain      ?sql=…&dialect=postgres|mysql: what the proxy would do
                     with a statement (as sqlcached explain --json).
With admin.token (or SQLCACHED_ADMIN_TOKEN) set, every endpoint but /health
and / needs "Authorization: Bearer <token>"; the dashboard takes it as
/#token=<token>. An admin.listen that is not loopback requires a token.

Logs are JSON lines on stdout (human-readable on a terminal or with
log.pretty: true).

Exit status: 0 stopped cleanly, 1 failed to start or forced to stop,
2 bad usage or invalid config (the reason is printed on stderr).
`;

export interface MainIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Run the command; resolves with the exit status once there is nothing left to do. */
export async function main(argv: string[], io: MainIo = process): Promise<number> {
  if (argv[0] === 'explain') return explainCommand(argv.slice(1), io);
  let flags: { config?: string; check?: boolean; help?: boolean; version?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr.write(`sqlcached: ${(err as Error).message}\nTry 'sqlcached --help'.\n`);
    return EXIT_USAGE;
  }
  if (flags.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (flags.version) {
    io.stdout.write(`sqlcached ${packageVersion()}\n`);
    return EXIT_OK;
  }

  const file = flags.config ?? defaultConfigFile();
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return EXIT_USAGE;
  }
  if (flags.check) {
    io.stdout.write(`${file}: config ok\n`);
    return EXIT_OK;
  }
  return run(file, config, io);
}

/** config/default.yaml in the current directory, else the package's own. */
export function defaultConfigFile(): string {
  const local = 'config/default.yaml';
  return existsSync(local) ? local : fileURLToPath(new URL('../config/default.yaml', import.meta.url));
}

function packageVersion(): string {
  // dist/main.js and src/main.ts both sit one level below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function run(file: string, initial: Config, io: MainIo): Promise<number> {
  const log = createLogger(initial.log.level, initial.log.pretty);
  let finish!: (status: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  // Signals are caught from the start: a SIGHUP while starting (a service
  // manager's reload) must not kill the process with Node's default action.
  // What arrives before the server is up waits for it.
  let running: RunningServer | null = null;
  let hupWhileStarting = false;
  let stopping: NodeJS.Signals | null = null;

  const reload = () => {
    if (!running || stopping) {
      hupWhileStarting = true;
      return;
    }
    running.reloadFromFile(); // logs what it applied, or why it refused the file
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      finish(EXIT_FAILED);
      return;
    }
    stopping = signal;
    if (!running) return; // stopped as soon as it is up
    log.info({ signal }, 'stopping');
    running.stop().then(
      () => {
        log.info('stopped');
        finish(EXIT_OK);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        finish(EXIT_FAILED);
      },
    );
  };

  process.on('SIGHUP', reload);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  try {
    // A second SIGTERM/SIGINT while starting exits without waiting for the start.
    const outcome = await Promise.race([startServer(initial, { log }), finished]);
    if (typeof outcome === 'number') return outcome;
    running = outcome;
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    io.stderr.write(`sqlcached: ${(err as Error).message}\n`);
    return EXIT_FAILED;
  }
  log.info(
    {
      version: packageVersion(),
      config: file,
      listeners: running.listeners,
      upstreams: initial.listeners.map((l) => ({ name: l.name, host: l.upstream.host, port: l.upstream.port })),
      admin: running.admin,
    },
    'listening',
  );
  const pendingStop: NodeJS.Signals | null = stopping;
  if (pendingStop) {
    stopping = null;
    stop(pendingStop);
  } else if (hupWhileStarting) {
    reload();
  }
  return finished;
}
