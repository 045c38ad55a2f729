// NEEDS src/server.ts (the lead's composition root) and a real PostgreSQL on
// 127.0.0.1:5432 (scripts/services.sh). Builds with `npm run build`, then runs
// `node dist/cli.js` the way users and the Docker image do: flags, exit
// statuses, the start-up log line, SIGHUP reload and SIGTERM stop.

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'sqlcached-process-'));
const run = promisify(execFile);

function yamlFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const PORT0_CONFIG = `
listeners:
  - name: pg
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:5432
cache:
  default_ttl: 60s
admin:
  listen: 127.0.0.1:0
log:
  level: info
`;

/** Run the CLI to completion: exit status and both streams. */
async function cli(args: string[], cwd = ROOT, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd, timeout: 20_000, env: { ...process.env, SQLCACHED_ADMIN_TOKEN: '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

type LogLine = Record<string, unknown> & { msg: string };

/** A running `sqlcached` with its JSON log lines. */
class Proxy {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: LogLine[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(JSON.parse(line) as LogLine); // stdout is not a TTY: JSON only
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((done) => this.child.on('exit', (code) => done(code)));
  }

  /** The first log line (from `from` on) with this message. */
  async waitFor(msg: string, from = 0, timeoutMs = 15_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.slice(from).find((l) => l.msg === msg);
      if (line) return line;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`no "${msg}" log line; got ${JSON.stringify(this.lines)}; stderr ${this.stderr}`);
      }
      await new Promise<void>((wake) => {
        this.waiters.push(wake);
        setTimeout(wake, 100);
      });
    }
  }
}

const running: Proxy[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
});

// dist/ is built once for the whole run by test/global-setup.ts.

describe('sqlcached command line', () => {
  it('--help explains every flag, the signals and the admin endpoints, and exits 0', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const text of ['--config FILE', '--check', '--help', '--version', 'SIGHUP', 'SIGTERM', '/health', '/stats', '/invalidate', '/metrics']) {
      expect(stdout).toContain(text);
    }
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await cli(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe('sqlcached 0.1.0\n');
  });

  it('an unknown flag exits 2 with a pointer to --help', async () => {
    const { code, stderr } = await cli(['--confg', 'x.yaml']);
    expect(code).toBe(2);
    expect(stderr).toContain("Try 'sqlcached --help'.");
  });

  it('an invalid config prints only its ConfigError message on stderr and exits 2', async () => {
    const file = yamlFile('bad.yaml', 'cache:\n  max_memory: lots\n');
    const { code, stdout, stderr } = await cli(['--config', file]);
    expect(code).toBe(2);
    expect(stderr).toBe(`${file}: cache.max_memory: expected a size like "256mb", got "lots"\n`);
    expect(stdout).toBe('');
  });

  it('a missing config file exits 2 naming the file', async () => {
    const { code, stderr } = await cli(['--config', join(dir, 'nope.yaml')]);
    expect(code).toBe(2);
    expect(stderr).toBe(`${join(dir, 'nope.yaml')}: cannot read the file (no such file)\n`);
  });

  it('--check validates a config without starting anything', async () => {
    const { code, stdout } = await cli(['--check', '--config', 'config/docker.yaml'], ROOT, { SQLCACHED_ADMIN_TOKEN: 'a-long-enough-admin-token' });
    expect(code).toBe(0);
    expect(stdout).toBe('config/docker.yaml: config ok\n');
  });

  it('an admin port on all interfaces without a token is refused, naming admin.token and the variable', async () => {
    const { code, stderr } = await cli(['--check', '--config', 'config/docker.yaml']);
    expect(code).toBe(2);
    expect(stderr).toBe(
      'config/docker.yaml: admin.token: expected a token (or SQLCACHED_ADMIN_TOKEN): admin.listen (0.0.0.0:9090) is not a loopback address, and the admin port can drop the cache, got none\n',
    );
    const short = await cli(['--check', '--config', 'config/docker.yaml'], ROOT, { SQLCACHED_ADMIN_TOKEN: 'short' });
    expect(short.code).toBe(2);
    expect(short.stderr).toBe('config/docker.yaml: admin.token: SQLCACHED_ADMIN_TOKEN: expected a token of at least 16 characters without spaces, got 5 characters\n');
  });

  it('without --config, falls back to the package config/default.yaml outside the repo', async () => {
    const { code, stdout } = await cli(['--check'], dir);
    expect(code).toBe(0);
    expect(stdout).toBe(`${join(ROOT, 'config/default.yaml')}: config ok\n`);
  });

  it('an admin address already in use exits 1 with the reason on stderr', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const port = (blocker.address() as { port: number }).port;
    try {
      const file = yamlFile('taken.yaml', PORT0_CONFIG.replace('listen: 127.0.0.1:0\nlog', `listen: 127.0.0.1:${port}\nlog`));
      const { code, stderr } = await cli(['--config', file]);
      expect(code).toBe(1);
      expect(stderr).toContain(`127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });
});

describe('sqlcached process', () => {
  it('starts, logs its addresses, serves queries and /health, reloads on SIGHUP and stops with 0 on SIGTERM', async () => {
    const file = yamlFile('port0.yaml', PORT0_CONFIG);
    const proxy = new Proxy(['--config', file]);
    running.push(proxy);

    const listening = await proxy.waitFor('listening');
    const [listener] = listening.listeners as { name: string; protocol: string; host: string; port: number }[];
    const admin = listening.admin as { host: string; port: number };
    expect(listener).toMatchObject({ name: 'pg', protocol: 'postgres', host: '127.0.0.1' });
    expect(listener!.port).toBeGreaterThan(0);
    expect(admin.port).toBeGreaterThan(0);
    expect(listening).toMatchObject({ config: file, version: '0.1.0' });

    expect((await fetch(`http://127.0.0.1:${admin.port}/health`)).status).toBe(200);
    const client = new pg.Client({ host: '127.0.0.1', port: listener!.port, user: 'postgres', database: 'test' });
    await client.connect();
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

      // An invalid file on SIGHUP is refused and the proxy keeps serving.
      writeFileSync(file, 'cache:\n  default_ttl: soon\n');
      let mark = proxy.lines.length;
      proxy.child.kill('SIGHUP');
      const refused = await proxy.waitFor('config reload refused; keeping the running config', mark);
      expect(refused.error).toBe(`${file}: cache.default_ttl: expected a duration like "60s", got "soon"`);
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);

      // A valid one is applied.
      writeFileSync(file, PORT0_CONFIG.replace('default_ttl: 60s', 'default_ttl: 5s'));
      mark = proxy.lines.length;
      proxy.child.kill('SIGHUP');
      expect((await proxy.waitFor('reloading config', mark)).changed).toEqual(['cache']);
    } finally {
      await client.end();
    }

    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
    expect(proxy.lines.map((l) => l.msg)).toContain('stopped');
    expect(proxy.stderr).toBe('');
  });
});
