#!/usr/bin/env node
// The `sqlcached` command (package.json "bin" → dist/cli.js): runs main() and
// exits with its status. Logs are written synchronously, so exiting loses none.

// Loading the modules takes a few hundred ms; a SIGHUP in that window (a
// service manager's early reload) must not kill the process with Node's
// default action. Nothing is lost: the config file is read after the load.
process.on('SIGHUP', () => {});

const { main } = await import('./main.js');
process.exit(await main(process.argv.slice(2)));
