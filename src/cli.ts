#!/usr/bin/env -S node --max-semi-space-size=4
// The `sqlcached` command (package.json "bin" → dist/cli.js): runs main() and
// exits with its status. Logs are written synchronously, so exiting loses none.

import { setFlagsFromString } from 'node:v8';

// Loading the modules takes a few hundred ms; a SIGHUP in that window (a
// service manager's early reload) must not kill the process with Node's
// default action. Nothing is lost: the config file is read after the load.
process.on('SIGHUP', () => {});

// V8 tuning for a process whose memory should track cache.max_memory. Set
// here, before main.js is imported (importing it starts compiling
// libpg-query's WebAssembly), rather than as `node` flags in package.json:
// `npm start`, `npx sqlcached` and `node dist/cli.js` then all run the same.
// Measured with the bench's memory case (16 MiB max_memory, 4 kB distinct
// results, 16 clients; peak RSS of the process):
// - --liftoff-only: the first parse made V8 tier libpg-query's parser up to
//   TurboFan on its worker threads, whose compile zones left +35 MiB of
//   malloc arenas resident for good. Parsing runs once per shape (the memo),
//   and Liftoff code parsed as fast here (~50 µs a parse either way).
// - --heap-growing-percent=10: an evicted result's bytes live outside the JS
//   heap until the next full GC, and V8 waits for 64 MiB of them before it
//   forces one; a smaller old-generation growth step runs the (concurrent)
//   full GC sooner: dead result buffers peaked at 63 MiB, now ~5–20 MiB. Full
//   GCs went from 7 to ~30 per 10 s of eviction churn (+~250 ms of GC); the
//   hit path promotes almost nothing and ran no full GC either way.
// A flag the user passed (NODE_OPTIONS or the command line) wins.
//
// One more is a `node` flag, because V8 sizes the young generation when the
// heap is created (setFlagsFromString is too late): --max-semi-space-size=4
// (MiB), on the shebang line above, in `npm start`, the Dockerfile's CMD and
// the benchmark. The young generation is at most 3 semi-spaces, 48 MiB by
// default on 64-bit, all resident once a burst of misses has grown it. With
// 4, the memory case peaked at 114–116 MiB instead of 137–139 (16 MiB
// max_memory); hits cost ~0.8 µs more user CPU (11.2 → 12.0 µs per pgbench
// extended/prepared hit, alternating runs): more scavenges.
for (const flag of ['--liftoff-only', '--heap-growing-percent=10']) {
  const name = flag.split('=')[0]!;
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  if (!given.some((f) => f.replace(/_/g, '-').replace(/^--no-/, '--').startsWith(name))) setFlagsFromString(flag);
}

const { main } = await import('./main.js');
process.exit(await main(process.argv.slice(2)));
