// Every refusal of a config names the file, the path and what was expected,
// with what the file said: the exact text a user reads on stderr.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configFromObject, defaultConfig } from '../../../src/config/load.js';
import { validateConfig } from '../../../src/config/schema.js';

const FILE = 'config/my.yaml';
const pg = (extra: Record<string, unknown> = {}) => ({
  name: 'pg',
  listen: '127.0.0.1:6432',
  upstream: '127.0.0.1:5432',
  ...extra,
});

function refusal(raw: unknown, file: string | null = FILE): ConfigError {
  try {
    configFromObject(raw, file);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('configFromObject refuses with the file, the path and what was expected', () => {
  const cases: [string, unknown, string][] = [
    ['a size that is not one', { cache: { max_memory: 'lots' } }, 'cache.max_memory: expected a size like "256mb", got "lots"'],
    ['a zero size', { cache: { max_entry_size: 0 } }, 'cache.max_entry_size: expected a size greater than 0 like "256mb", got 0'],
    ['a bare-number TTL', { cache: { default_ttl: 60 } }, 'cache.default_ttl: expected a duration like "60s", got 60'],
    ['a store we do not have', { cache: { store: 'memcached' } }, 'cache.store: expected "memory" or "redis", got "memcached"'],
    ['a string boolean', { cache: { in_transactions: 'no' } }, 'cache.in_transactions: expected true or false, got "no"'],
    ['a Redis URL of another scheme', { cache: { redis: { url: 'http://x' } } }, 'cache.redis.url: expected a URL like "redis://127.0.0.1:6379", got "http://x"'],
    ['an empty key prefix', { cache: { redis: { key_prefix: '' } } }, 'cache.redis.key_prefix: expected a non-empty key prefix like "sqlcached", got ""'],
    ['a misspelt key, with a guess', { cache: { max_memroy: '1mb' } }, 'cache.max_memroy: unknown key (did you mean "max_memory"?); expected one of store, max_memory, max_entry_size, default_ttl, in_transactions, redis'],
    ['an unknown top-level key', { bogus: 1 }, 'bogus: unknown key; expected one of listeners, cache, rules, dependencies, admin, reload, log'],
    ['a dependency edge without invalidates', { dependencies: [{ writes: 'orders' }] }, 'dependencies[0].invalidates: expected a list of table names like [order_totals], got nothing'],
    ['a misspelt dependency key', { dependencies: [{ writes: 'orders', invalidate: ['x'] }] }, 'dependencies[0].invalidate: unknown key (did you mean "invalidates"?); expected one of writes, invalidates'],
    ['a dependency refresh that is not a duration', { dependencies: { refresh: 30 } }, 'dependencies.refresh: expected a duration like "60s", got 30'],
    ['dependency edges that are not a list', { dependencies: { edges: 'orders' } }, 'dependencies.edges: expected a list of edges like { writes: orders, invalidates: [order_totals] }, got "orders"'],
    ['an admin port on all interfaces without a token', { admin: { listen: '0.0.0.0:9090' } }, 'admin.token: expected a token (or SQLCACHED_ADMIN_TOKEN): admin.listen (0.0.0.0:9090) is not a loopback address, and the admin port can drop the cache, got none'],
    ['a short admin token', { admin: { token: 'secret' } }, 'admin.token: expected a token of at least 16 characters without spaces, got "secret"'],
    ['a negative metrics table limit', { admin: { metrics_table_limit: -1 } }, 'admin.metrics_table_limit: expected a whole number of tables, 0 or more, got -1'],
    ['a reload.watch that is not a boolean', { reload: { watch: 'yes' } }, 'reload.watch: expected true or false, got "yes"'],
    ['a misspelt listener key', { listeners: [pg({ upstrem: 'x:1' })] }, 'listeners[0].upstrem: unknown key (did you mean "upstream"?); expected one of name, protocol, listen, upstream, tls'],
    ['a misspelt rule key', { rules: [{ table: ['a'] }] }, 'rules[0].table: unknown key (did you mean "tables"?); expected one of tables, fingerprint, cache, ttl'],
    ['a document that is not a mapping', 'listen: here', 'expected a mapping, got "listen: here"'],
    ['a section that is not a mapping', { cache: [1] }, 'cache: expected a mapping, got a list'],
    ['listeners that are not a list', { listeners: 'pg' }, 'listeners: expected a list of listeners, got "pg"'],
    ['no listeners', { listeners: [] }, 'listeners: expected at least one listener, got an empty list'],
    ['an unknown protocol', { listeners: [pg({ protocol: 'oracle' })] }, 'listeners[0].protocol: expected "postgres" or "mysql", got "oracle"'],
    ['a missing upstream', { listeners: [{ name: 'pg', listen: '127.0.0.1:6432' }] }, 'listeners[0].upstream: expected an address like "127.0.0.1:6432" or "[::1]:6432", got nothing'],
    ['a listen address without a port', { listeners: [pg({ listen: '127.0.0.1' })] }, 'listeners[0].listen: expected an address like "127.0.0.1:6432" or "[::1]:6432", got "127.0.0.1"'],
    ['a port above 65535', { listeners: [pg({ listen: '127.0.0.1:70000' })] }, 'listeners[0].listen: expected a port 0..65535, got "127.0.0.1:70000"'],
    ['an upstream on port 0', { listeners: [pg({ upstream: '127.0.0.1:0' })] }, 'listeners[0].upstream: expected an upstream port 1..65535, got "127.0.0.1:0"'],
    ['a listener name with spaces', { listeners: [pg({ name: 'my pg' })] }, 'listeners[0].name: expected a listener name like "pg" (letters, digits, _ . -), got "my pg"'],
    ['two listeners with one name', { listeners: [pg(), pg({ listen: '127.0.0.1:6433' })] }, 'listeners[1].name: expected a name not already used by listeners[0], got "pg"'],
    ['two listeners on one address', { listeners: [pg(), pg({ name: 'pg2' })] }, 'listeners[1].listen: expected an address not already used by listeners[0].listen (127.0.0.1:6432), got "127.0.0.1:6432"'],
    ['a wildcard and a specific host on one port', { listeners: [pg({ listen: '0.0.0.0:6432' }), pg({ name: 'b' })] }, 'listeners[1].listen: expected an address not already used by listeners[0].listen (0.0.0.0:6432), got "127.0.0.1:6432"'],
    ['the admin port on a listener address', { admin: { listen: '127.0.0.1:6432' } }, 'admin.listen: expected an address not already used by listeners[0].listen (127.0.0.1:6432), got "127.0.0.1:6432"'],
    ['a TLS section without a key', { listeners: [pg({ tls: { cert: 'a.pem' } })] }, 'listeners[0].tls.key: expected the path of a PEM private key file, got nothing'],
    ['an entry size over the memory cap', { cache: { max_memory: '1mb', max_entry_size: '2mb' } }, 'cache.max_entry_size: expected a size no larger than cache.max_memory (1mb), got "2mb"'],
    ['an entry size over the default memory cap', { cache: { max_entry_size: '1gb' } }, 'cache.max_entry_size: expected a size no larger than cache.max_memory (268435456 bytes), got "1gb"'],
    ['a rule with neither tables nor fingerprint', { rules: [{ ttl: '5m' }] }, 'rules[0]: expected a rule with "tables" or "fingerprint", got neither'],
    ['a rule with an empty table list', { rules: [{ tables: [] }] }, 'rules[0].tables: expected a list of table names like [users, orders], got an empty list'],
    ['a rule with a table name string', { rules: [{ tables: 'users' }] }, 'rules[0].tables: expected a list of table names like [users, orders], got "users"'],
    ['a negative TTL', { rules: [{ tables: ['a'] }, { tables: ['b'], ttl: '-5m' }] }, 'rules[1].ttl: expected a duration ≥ 0 like "60s", got "-5m"'],
    ['a TTL in a rule that does not cache', { rules: [{ tables: ['a'], cache: false, ttl: '5m' }] }, 'rules[0].ttl: expected no ttl in a rule with cache: false, got "5m"'],
    ['rules that are not a list', { rules: { tables: ['a'] } }, 'rules: expected a list of rules, got a mapping'],
    ['an unknown log level', { log: { level: 'verbose' } }, 'log.level: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"'],
  ];

  it('reads dependencies as a list of edges or as { refresh, edges }', () => {
    const edge = { writes: 'orders', invalidates: ['order_totals'] };
    expect(configFromObject({ dependencies: [{ writes: 'orders', invalidates: 'order_totals' }] }, FILE).dependencies).toEqual({ refreshMs: 30_000, edges: [edge] });
    expect(configFromObject({ dependencies: { refresh: '5s', edges: [edge] } }, FILE).dependencies).toEqual({ refreshMs: 5_000, edges: [edge] });
  });

  it.each(cases)('refuses %s', (_what, raw, message) => {
    expect(refusal(raw).message).toBe(`${FILE}: ${message}`);
  });

  it('carries code, file, path and expected as fields', () => {
    const err = refusal({ cache: { max_memory: 'lots' } });
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('SQLCACHED_ERR_CONFIG');
    expect(err.file).toBe(FILE);
    expect(err.path).toBe('cache.max_memory');
    expect(err.expected).toBe('a size like "256mb"');
  });

  it('leaves the file out of the message when there is none', () => {
    expect(refusal({ cache: { max_memory: 'lots' } }, null).message).toBe(
      'cache.max_memory: expected a size like "256mb", got "lots"',
    );
  });

  it('names an unreadable TLS file with the path it resolved', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sqlcached-tls-'));
    writeFileSync(join(dir, 'server.crt'), 'cert');
    const file = join(dir, 'sqlcached.yaml');
    const err = refusal({ listeners: [pg({ tls: { cert: 'server.crt', key: 'server.key' } })] }, file);
    expect(err.message).toBe(
      `${file}: listeners[0].tls.key: expected a readable file, got "server.key" (not found: ${join(dir, 'server.key')})`,
    );
  });
});

describe('configFromObject accepts and converts', () => {
  it('reads an empty document as the defaults', () => {
    expect(configFromObject(null, null)).toEqual(defaultConfig());
    expect(configFromObject({}, null)).toEqual(defaultConfig());
  });

  it('reads an empty section (`cache:` with nothing under it) as its defaults', () => {
    expect(configFromObject({ cache: null, rules: null, admin: null, log: null }, null)).toEqual(defaultConfig());
  });

  it('converts snake_case YAML to the camelCase Config, filling what is left out', () => {
    const config = configFromObject(
      {
        listeners: [pg({ listen: '[::1]:0', upstream: 'db.internal:5433' }), pg({ name: 'pg2', listen: '127.0.0.1:0' })],
        cache: { store: 'redis', max_memory: '64MB', default_ttl: 0, redis: { key_prefix: 'app1' } },
        rules: [
          { tables: ['sessions'], cache: false },
          { fingerprint: 'SELECT * FROM t WHERE id = ?', ttl: '5m' },
          { tables: ['countries'], ttl: 0 },
        ],
        admin: { listen: '127.0.0.1:0' },
        log: { level: 'debug', pretty: true },
      },
      FILE,
    );
    expect(config).toEqual({
      file: FILE,
      listeners: [
        { name: 'pg', protocol: 'postgres', listen: { host: '::1', port: 0 }, upstream: { host: 'db.internal', port: 5433 }, tls: null },
        { name: 'pg2', protocol: 'postgres', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: '127.0.0.1', port: 5432 }, tls: null },
      ],
      cache: {
        store: 'redis',
        maxMemoryBytes: 64 * 1024 * 1024,
        maxEntrySizeBytes: 1024 * 1024,
        defaultTtlMs: 0,
        inTransactions: false,
        redis: { url: 'redis://127.0.0.1:6379', nodes: null, keyPrefix: 'app1', commandTimeoutMs: 250 },
      },
      rules: [
        { index: 0, tables: ['sessions'], fingerprint: null, cache: false, ttlMs: null },
        { index: 1, tables: null, fingerprint: 'SELECT * FROM t WHERE id = ?', cache: true, ttlMs: 300_000 },
        { index: 2, tables: ['countries'], fingerprint: null, cache: true, ttlMs: 0 },
      ],
      dependencies: { refreshMs: 30_000, edges: [] },
      admin: { listen: { host: '127.0.0.1', port: 0 }, token: null, metricsTableLimit: 100 },
      reload: { watch: false },
      log: { level: 'debug', pretty: true },
    });
  });

  it('an admin port on another interface is accepted with a token, from the file or from SQLCACHED_ADMIN_TOKEN (which wins)', () => {
    const fromFile = validateConfig({ admin: { listen: '0.0.0.0:9090', token: 'file-token-0123456789' } }, null, {});
    expect(fromFile.ok && fromFile.config.admin.token).toBe('file-token-0123456789');
    const fromEnv = validateConfig({ admin: { listen: '10.0.0.5:9090', token: 'file-token-0123456789' } }, null, { SQLCACHED_ADMIN_TOKEN: 'env-token-0123456789' });
    expect(fromEnv.ok && fromEnv.config.admin.token).toBe('env-token-0123456789');
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]']) {
      expect(validateConfig({ admin: { listen: `${host}:9090` } }, null, {}).ok, host).toBe(true);
    }
  });

  it('lets several listeners and the admin server share port 0 (each gets its own port)', () => {
    const config = configFromObject(
      { listeners: [pg({ listen: '127.0.0.1:0' }), pg({ name: 'b', listen: '127.0.0.1:0' })], admin: { listen: '127.0.0.1:0' } },
      null,
    );
    expect(config.listeners).toHaveLength(2);
  });

  it('resolves TLS files beside the config file and keeps the absolute path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sqlcached-tls-'));
    writeFileSync(join(dir, 'server.crt'), 'cert');
    writeFileSync(join(dir, 'server.key'), 'key');
    const config = configFromObject(
      { listeners: [pg({ tls: { cert: 'server.crt', key: join(dir, 'server.key') } })] },
      join(dir, 'sqlcached.yaml'),
    );
    expect(config.listeners[0]!.tls).toEqual({ cert: join(dir, 'server.crt'), key: join(dir, 'server.key') });
  });

  it('accepts a redis store (server.ts decides whether it can run it)', () => {
    expect(configFromObject({ cache: { store: 'redis' } }, null).cache.store).toBe('redis');
  });

  it('returns a fresh default object each time', () => {
    const a = defaultConfig();
    a.listeners[0]!.listen.port = 1;
    expect(defaultConfig().listeners[0]!.listen.port).toBe(6432);
  });
});
