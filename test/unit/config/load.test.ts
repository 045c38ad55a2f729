// Reading config files: YAML mistakes name the file and line, and the shipped
// files (config/default.yaml, config/docker.yaml) say what the code does.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, changedSections, defaultConfig, loadConfig } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'sqlcached-config-'));
function yamlFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function loadError(file: string): ConfigError {
  try {
    loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('loadConfig', () => {
  it('reads config/default.yaml as exactly defaultConfig(): the reference documents the code', () => {
    expect(loadConfig('config/default.yaml')).toEqual({ ...defaultConfig(), file: 'config/default.yaml' });
  });

  it('reads config/docker.yaml: all interfaces, upstreams at the compose hosts "postgres" and "mysql"', () => {
    process.env['SQLCACHED_ADMIN_TOKEN'] = 'docker-admin-token-0123';
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig('config/docker.yaml');
    } finally {
      delete process.env['SQLCACHED_ADMIN_TOKEN'];
    }
    expect(config.listeners).toEqual([
      {
        name: 'pg',
        protocol: 'postgres',
        listen: { host: '0.0.0.0', port: 6432 },
        upstream: { host: 'postgres', port: 5432 },
        tls: null,
      },
      {
        name: 'mysql',
        protocol: 'mysql',
        listen: { host: '0.0.0.0', port: 6033 },
        upstream: { host: 'mysql', port: 3306 },
        tls: null,
      },
    ]);
    expect(config.admin.listen).toEqual({ host: '0.0.0.0', port: 9090 });
  });

  it('reads an empty file (or one with only comments) as the defaults', () => {
    expect(loadConfig(yamlFile('empty.yaml', ''))).toEqual({ ...defaultConfig(), file: join(dir, 'empty.yaml') });
    expect(loadConfig(yamlFile('comments.yaml', '# nothing yet\n')).cache).toEqual(defaultConfig().cache);
  });

  it('names the file and the line of a YAML syntax error', () => {
    const file = yamlFile('indent.yaml', 'cache:\n  max_memory: 1mb\n    default_ttl: 5s\n');
    const err = loadError(file);
    expect(err.message).toBe(`${file}: line 2, column 15: invalid YAML: Nested mappings are not allowed in compact mappings`);
    expect(err).toMatchObject({ code: 'SQLCACHED_ERR_CONFIG', file, path: '', expected: 'valid YAML' });
  });

  it('refuses a duplicated key instead of letting the second one win', () => {
    const file = yamlFile('dup.yaml', 'log:\n  level: info\nlog:\n  level: debug\n');
    expect(loadError(file).message).toBe(`${file}: line 3, column 1: invalid YAML: Map keys must be unique`);
  });

  it('refuses an unclosed quote with its line', () => {
    const file = yamlFile('quote.yaml', 'admin:\n  listen: "127.0.0.1:9090\n');
    expect(loadError(file).message).toMatch(new RegExp(`^${file}: line \\d+, column \\d+: invalid YAML: Missing closing "quote$`));
  });

  it('refuses an alias to an unknown anchor', () => {
    const file = yamlFile('alias.yaml', 'cache: *nothing\n');
    expect(loadError(file).message).toMatch(new RegExp(`^${file}: invalid YAML: .*nothing`));
  });

  it('names a missing file', () => {
    const file = join(dir, 'missing.yaml');
    expect(loadError(file).message).toBe(`${file}: cannot read the file (no such file)`);
  });

  it('names the file, path and expectation of a value error, as the user wrote the file name', () => {
    yamlFile('bad.yaml', 'cache:\n  max_memory: lots\n');
    const relative = join(dir, '.', 'bad.yaml');
    expect(loadError(relative).message).toBe(`${relative}: cache.max_memory: expected a size like "256mb", got "lots"`);
  });

  it('reads a file in the DESIGN.md shape', () => {
    const file = yamlFile(
      'design.yaml',
      [
        'listeners:',
        '  - name: pg',
        '    protocol: postgres',
        '    listen: 127.0.0.1:6432',
        '    upstream: 127.0.0.1:5432',
        '  - name: mysql',
        '    protocol: mysql',
        '    listen: 127.0.0.1:6033',
        '    upstream: 127.0.0.1:3306',
        'cache:',
        '  store: memory',
        '  max_memory: 256mb',
        '  max_entry_size: 1mb',
        '  default_ttl: 60s',
        '  in_transactions: false',
        '  redis:',
        '    url: redis://127.0.0.1:6379',
        '    key_prefix: sqlcached',
        'rules:',
        '  - tables: [sessions, audit_log]',
        '    cache: false',
        '  - tables: [countries, currencies]',
        '    ttl: 1h',
        '  - fingerprint: "SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?"',
        '    ttl: 5m',
        'admin:',
        '  listen: 127.0.0.1:9090',
        'log:',
        '  level: info',
        '',
      ].join('\n'),
    );
    const config = loadConfig(file);
    expect(config.rules.map((r) => [r.tables, r.fingerprint, r.cache, r.ttlMs])).toEqual([
      [['sessions', 'audit_log'], null, false, null],
      [['countries', 'currencies'], null, true, 3_600_000],
      [null, 'SELECT * FROM articles WHERE status = ? ORDER BY published_at DESC LIMIT ?', true, 300_000],
    ]);
    expect({ ...config, rules: [], file: null }).toEqual(defaultConfig());
  });
});

describe('changedSections', () => {
  it('lists the sections a reload changes, for the reload log line', () => {
    const before = defaultConfig();
    const after = defaultConfig();
    after.cache.defaultTtlMs = 5_000;
    after.log.level = 'debug';
    expect(changedSections(before, after)).toEqual(['cache', 'log']);
    expect(changedSections(before, defaultConfig())).toEqual([]);
  });
});
