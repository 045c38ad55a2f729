// Config types (the public contract of config/default.yaml, in code form),
// defaults, and validation → ConfigError(file, path, expected).
// Keep the exported types stable: every module reads config through them.

export interface HostPort {
  host: string;
  port: number;
}

export interface ListenerConfig {
  name: string;
  protocol: 'postgres' | 'mysql';
  listen: HostPort;
  upstream: HostPort;
  /** Terminate TLS on the client side (PostgreSQL SSLRequest answered 'S'). */
  tls: { cert: string; key: string } | null;
}

export interface RuleConfig {
  /** Position in the file, for messages and /stats ("rules[2]"). */
  index: number;
  /** Matches when the statement reads any of these tables. */
  tables: string[] | null;
  /** Matches when the statement's shape equals this text. */
  fingerprint: string | null;
  /** false: never cache what matches. */
  cache: boolean;
  /** TTL in ms for what matches; null = cache.default_ttl. 0 = until invalidated. */
  ttlMs: number | null;
}

export interface CacheConfig {
  store: 'memory' | 'redis';
  maxMemoryBytes: number;
  maxEntrySizeBytes: number;
  /** 0 = cache until invalidated. */
  defaultTtlMs: number;
  inTransactions: boolean;
  redis: RedisConfig;
}

export interface RedisConfig {
  /** Standalone server: redis:// or rediss:// (TLS), user:password@ allowed. */
  url: string;
  /** Redis Cluster seed nodes; when set, `url` is not used (its TLS and credentials are). */
  nodes: HostPort[] | null;
  keyPrefix: string;
  /** Longest wait for one store operation before it counts as failed (fail open). */
  commandTimeoutMs: number;
}

export interface AdminConfig {
  listen: HostPort;
  /** Bearer token every admin route but /health and / requires; null = none (loopback only). */
  token: string | null;
  /** Tables with their own label in sqlcached_invalidations_total; later ones share "__other__". */
  metricsTableLimit: number;
}

/** `dependencies:` — edges the catalog cannot show, and how often the
 * catalog's own dependency graph is re-read for DDL made behind the proxy. */
export interface DependenciesConfig {
  refreshMs: number;
  /** A write to `writes` also invalidates reads of each of `invalidates`. */
  edges: Array<{ writes: string; invalidates: string[] }>;
}

export interface Config {
  /** The file it was read from, or null for built-in defaults. */
  file: string | null;
  listeners: ListenerConfig[];
  cache: CacheConfig;
  rules: RuleConfig[];
  dependencies: DependenciesConfig;
  admin: AdminConfig;
  reload: { watch: boolean };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; pretty: boolean };
}

// ---------------------------------------------------------------------------
// Defaults and validation. The YAML is snake_case (DESIGN.md's public
// contract); Config above is camelCase. zod checks each value's shape and unit;
// checkConfig checks what spans several values. A refusal is a ConfigProblem:
// the path, what was expected, and what the file said.

import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { closestKey, formatPath, parsePath, valueAt } from './paths.js';
import { UnitError, describeValue, formatHostPort, parseBytes, parseDuration, parseHostPort } from './units.js';

/** One reason a config is refused. The message is `<file>: <path>: <detail>`. */
export interface ConfigProblem {
  /** "cache.max_memory", "listeners[1].listen"; "" for the whole document. */
  path: string;
  expected: string;
  detail: string;
}

export type ConfigValidation = { ok: true; config: Config } | { ok: false; problem: ConfigProblem };

/** A value read by a unit parser; its UnitError becomes the zod issue. */
function unit<T>(parse: (value: unknown) => T) {
  return z.unknown().transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.expected });
      return z.NEVER;
    }
  });
}

/** A value accepted by a predicate, else refused with `expected`. */
function valid<T>(expected: string, accept: (value: unknown) => value is T) {
  return unit((value): T => {
    if (accept(value)) return value;
    throw new UnitError(expected, value);
  });
}

/** A key that may be absent or empty in the YAML (`cache:` with nothing
 * under it): both read as `fallback`, which is then validated like the rest. */
function orDefault<S extends z.ZodType>(fallback: unknown, schema: S) {
  return z.preprocess((v) => (v === null || v === undefined ? structuredClone(fallback) : v), schema);
}

const mapping = <T extends z.core.$ZodLooseShape>(shape: T) => z.strictObject(shape, { error: 'a mapping' });
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isText = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const boolean = () => valid('true or false', isBoolean);
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type LogLevel = Config['log']['level'];

function oneOf<const T extends string>(choices: readonly T[], expected: string) {
  return valid(expected, (v): v is T => choices.includes(v as T));
}

const positiveSize = unit((v) => {
  const bytes = parseBytes(v);
  if (bytes === 0) throw new UnitError('a size greater than 0 like "256mb"', v);
  return bytes;
});

const upstreamAddress = unit((v) => {
  const address = parseHostPort(v);
  if (address.port === 0) throw new UnitError('an upstream port 1..65535', v);
  return address;
});

// The schemas of the YAML, section by section. Every default is written here
// in the YAML's own words (`prefault`, `orDefault`): defaultConfig() is the
// empty document validated, and config/default.yaml is tested against it.
const tlsSchema = mapping({
  cert: valid('the path of a PEM certificate file', isText),
  key: valid('the path of a PEM private key file', isText),
});

const listenerSchema = mapping({
  name: valid('a listener name like "pg" (letters, digits, _ . -)', (v): v is string =>
    typeof v === 'string' && /^[\w.-]+$/.test(v),
  ),
  protocol: oneOf(['postgres', 'mysql'] as const, '"postgres" or "mysql"').prefault('postgres'),
  listen: unit(parseHostPort),
  upstream: upstreamAddress,
  tls: orDefault(null, tlsSchema.nullable()),
});

const ruleSchema = mapping({
  tables: valid('a list of table names like [users, orders]', (v): v is string[] =>
    Array.isArray(v) && v.length > 0 && v.every(isText),
  ).optional(),
  fingerprint: valid('a statement shape like "SELECT * FROM users WHERE id = ?"', isText).optional(),
  cache: boolean().prefault(true),
  ttl: unit(parseDuration).optional(),
});

const redisSchema = mapping({
  url: valid('a URL like "redis://127.0.0.1:6379"', (v): v is string =>
    typeof v === 'string' && /^rediss?:\/\/\S+$/i.test(v) && URL.canParse(v),
  ).prefault('redis://127.0.0.1:6379'),
  key_prefix: valid('a non-empty key prefix like "sqlcached"', isText).prefault('sqlcached'),
  cluster_nodes: orDefault(null, z.array(unit(parseHostPort), { error: 'a list of addresses like ["10.0.0.1:7000"]' }).min(1, { error: 'at least one node' }).nullable()),
  command_timeout: unit(parseDuration).prefault('250ms'),
});

const cacheSchema = mapping({
  store: oneOf(['memory', 'redis'], '"memory" or "redis"').prefault('memory'),
  max_memory: positiveSize.prefault('256mb'),
  max_entry_size: positiveSize.prefault('1mb'),
  default_ttl: unit(parseDuration).prefault('60s'),
  in_transactions: boolean().prefault(false),
  redis: orDefault({}, redisSchema),
});

const tableNames = valid('a list of table names like [order_totals]', (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every(isText));
const edgeSchema = mapping({
  writes: valid('a table name like orders', isText),
  invalidates: z.preprocess((v) => (typeof v === 'string' ? [v] : v), tableNames),
});
const edgeList = z.array(edgeSchema, { error: 'a list of edges like { writes: orders, invalidates: [order_totals] }' });
const dependenciesSchema = mapping({
  refresh: unit(parseDuration).prefault('30s'),
  edges: orDefault([], edgeList),
});

const MIN_TOKEN_LENGTH = 16;
const TOKEN_EXPECTED = `a token of at least ${MIN_TOKEN_LENGTH} characters without spaces`;
const isToken = (v: unknown): v is string => typeof v === 'string' && v.length >= MIN_TOKEN_LENGTH && /^\S+$/.test(v);

const adminSchema = mapping({
  listen: unit(parseHostPort).prefault('127.0.0.1:9090'),
  token: orDefault(null, valid(TOKEN_EXPECTED, isToken).nullable()),
  metrics_table_limit: valid('a whole number of tables, 0 or more', (v): v is number => Number.isInteger(v) && (v as number) >= 0).prefault(100),
});

const reloadSchema = mapping({ watch: boolean().prefault(false) });

const logSchema = mapping({
  level: oneOf<LogLevel>(LOG_LEVELS, `one of ${LOG_LEVELS.join(', ')}`).prefault('info'),
  pretty: boolean().prefault(false),
});

const fileSchema = mapping({
  listeners: orDefault(
    [
      { name: 'pg', protocol: 'postgres', listen: '127.0.0.1:6432', upstream: '127.0.0.1:5432' },
      { name: 'mysql', protocol: 'mysql', listen: '127.0.0.1:6033', upstream: '127.0.0.1:3306' },
    ],
    z.array(listenerSchema, { error: 'a list of listeners' }).min(1, { error: 'at least one listener' }),
  ),
  cache: orDefault({}, cacheSchema),
  rules: orDefault([], z.array(ruleSchema, { error: 'a list of rules' })),
  // The short form is the list of edges alone.
  dependencies: orDefault({}, z.preprocess((v) => (Array.isArray(v) ? { edges: v } : v), dependenciesSchema)),
  admin: orDefault({}, adminSchema),
  reload: orDefault({}, reloadSchema),
  log: orDefault({}, logSchema),
});

/** The keys each mapping accepts, by path without indexes (for unknown-key messages). */
const KNOWN_KEYS: Record<string, readonly string[]> = Object.fromEntries(
  Object.entries({
    '': fileSchema,
    listeners: listenerSchema,
    'listeners.tls': tlsSchema,
    cache: cacheSchema,
    'cache.redis': redisSchema,
    rules: ruleSchema,
    dependencies: dependenciesSchema,
    'dependencies.edges': edgeSchema,
    admin: adminSchema,
    reload: reloadSchema,
    log: logSchema,
  }).map(([path, schema]) => [path, Object.keys(schema.shape)]),
);

/** The built-in configuration: DESIGN.md's example values, one PostgreSQL
 * listener (127.0.0.1:6432 → 127.0.0.1:5432), no rules. */
export function defaultConfig(): Config {
  const result = validateConfig({}, null);
  if (!result.ok) throw new Error(`built-in defaults are invalid: ${result.problem.detail}`);
  return result.config;
}

/** Validate a parsed YAML document (or any value in the YAML shape); null = empty file. */
/** The environment variable that sets admin.token (and wins over the file):
 * a secret belongs in the environment, not in a config file in an image. */
export const ADMIN_TOKEN_ENV = 'SQLCACHED_ADMIN_TOKEN';

export function validateConfig(
  document: unknown,
  file: string | null,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ConfigValidation {
  const raw = document ?? {};
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    // A misspelt key is usually the cause of whatever else is wrong: name it first.
    const issues = result.error.issues;
    const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    // The short form `dependencies: [ … ]` has no `edges` key to name.
    const short = typeof raw === 'object' && Array.isArray((raw as Record<string, unknown>)['dependencies']);
    const problem = problemOf(first, short ? { ...(raw as Record<string, unknown>), dependencies: { edges: (raw as Record<string, unknown>)['dependencies'] } } : raw);
    if (short && problem.path.startsWith('dependencies.edges')) {
      problem.path = `dependencies${problem.path.slice('dependencies.edges'.length)}`;
    }
    return { ok: false, problem };
  }
  const config = toConfig(result.data, file);
  const envToken = env[ADMIN_TOKEN_ENV];
  if (envToken !== undefined && envToken !== '') {
    if (!isToken(envToken)) {
      return { ok: false, problem: { path: 'admin.token', expected: TOKEN_EXPECTED, detail: `${ADMIN_TOKEN_ENV}: expected ${TOKEN_EXPECTED}, got ${String(envToken).length} characters` } };
    }
    config.admin.token = envToken;
  }
  const problem = checkConfig(config, raw);
  return problem ? { ok: false, problem } : { ok: true, config };
}

function toConfig(parsed: z.output<typeof fileSchema>, file: string | null): Config {
  const { cache } = parsed;
  return {
    file,
    listeners: parsed.listeners.map((l) => ({
      name: l.name,
      protocol: l.protocol,
      listen: l.listen,
      upstream: l.upstream,
      tls: l.tls ? { cert: resolveBeside(file, l.tls.cert), key: resolveBeside(file, l.tls.key) } : null,
    })),
    cache: {
      store: cache.store,
      maxMemoryBytes: cache.max_memory,
      maxEntrySizeBytes: cache.max_entry_size,
      defaultTtlMs: cache.default_ttl,
      inTransactions: cache.in_transactions,
      redis: {
        url: cache.redis.url,
        nodes: cache.redis.cluster_nodes,
        keyPrefix: cache.redis.key_prefix,
        commandTimeoutMs: cache.redis.command_timeout,
      },
    },
    rules: parsed.rules.map((r, index) => ({
      index,
      tables: r.tables ?? null,
      fingerprint: r.fingerprint ?? null,
      cache: r.cache,
      ttlMs: r.ttl ?? null,
    })),
    dependencies: {
      refreshMs: parsed.dependencies.refresh,
      edges: parsed.dependencies.edges.map((e) => ({ writes: e.writes, invalidates: e.invalidates })),
    },
    admin: { listen: parsed.admin.listen, token: parsed.admin.token, metricsTableLimit: parsed.admin.metrics_table_limit },
    reload: { watch: parsed.reload.watch },
    log: { level: parsed.log.level, pretty: parsed.log.pretty },
  };
}

/** Relative TLS paths are read beside the config file, so a config directory
 * can move as a whole; without a file, from the current directory. */
function resolveBeside(file: string | null, path: string): string {
  return resolve(file ? dirname(file) : '.', path);
}

function problemOf(issue: z.core.$ZodIssue, raw: unknown): ConfigProblem {
  const at = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = KNOWN_KEYS[issue.path.filter((p) => typeof p === 'string').join('.')] ?? [];
    const guess = closestKey(key, known);
    const expected = `one of ${known.join(', ')}`;
    return {
      path: at ? `${at}.${key}` : key,
      expected,
      detail: `unknown key${guess ? ` (did you mean "${guess}"?)` : ''}; expected ${expected}`,
    };
  }
  return {
    path: at,
    expected: issue.message,
    detail: `expected ${issue.message}, got ${describeValue(valueAt(raw, issue.path))}`,
  };
}

/** Checks that span several values, on the converted config. */
function checkConfig(config: Config, raw: unknown): ConfigProblem | null {
  const got = (path: string) => describeValue(valueAt(raw, parsePath(path)));
  const problem = (path: string, expected: string, gotText = got(path)): ConfigProblem => ({
    path,
    expected,
    detail: `expected ${expected}, got ${gotText}`,
  });

  const names = new Map<string, number>();
  for (const [i, l] of config.listeners.entries()) {
    const first = names.get(l.name);
    if (first !== undefined) return problem(`listeners[${i}].name`, `a name not already used by listeners[${first}]`);
    names.set(l.name, i);
  }

  const bound: { path: string; address: HostPort }[] = [];
  const addresses = [
    ...config.listeners.map((l, i) => ({ path: `listeners[${i}].listen`, address: l.listen })),
    { path: 'admin.listen', address: config.admin.listen },
  ];
  for (const { path, address } of addresses) {
    const clash = bound.find((b) => sameSocket(b.address, address));
    if (clash) return problem(path, `an address not already used by ${clash.path} (${formatHostPort(clash.address)})`);
    bound.push({ path, address });
  }

  for (const [i, l] of config.listeners.entries()) {
    for (const part of ['cert', 'key'] as const) {
      const file = l.tls?.[part];
      const why = file === undefined ? null : unreadable(file);
      if (why) {
        const path = `listeners[${i}].tls.${part}`;
        return problem(path, 'a readable file', `${got(path)} (${why}: ${file})`);
      }
    }
  }

  if (config.admin.token === null && !isLoopback(config.admin.listen.host)) {
    return problem(
      'admin.token',
      `a token (or ${ADMIN_TOKEN_ENV}): admin.listen (${formatHostPort(config.admin.listen)}) is not a loopback address, and the admin port can drop the cache`,
      'none',
    );
  }

  const { maxEntrySizeBytes, maxMemoryBytes } = config.cache;
  if (maxEntrySizeBytes > maxMemoryBytes) {
    const limit = valueAt(raw, ['cache', 'max_memory']) ?? `${maxMemoryBytes} bytes`;
    return problem('cache.max_entry_size', `a size no larger than cache.max_memory (${String(limit)})`);
  }

  for (const rule of config.rules) {
    const path = `rules[${rule.index}]`;
    if (rule.tables === null && rule.fingerprint === null) {
      return problem(path, 'a rule with "tables" or "fingerprint"', 'neither');
    }
    if (!rule.cache && rule.ttlMs !== null) return problem(`${path}.ttl`, 'no ttl in a rule with cache: false');
  }
  return null;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach them. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** Two listen addresses that cannot both be bound. Port 0 never clashes (each
 * bind gets its own port); a wildcard host clashes with any host on its port. */
function sameSocket(a: HostPort, b: HostPort): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::';
  return a.host.toLowerCase() === b.host.toLowerCase() || wildcard(a.host) || wildcard(b.host);
}

/** Why a TLS file cannot be read at startup, or null when it can. */
function unreadable(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return 'not a file';
    accessSync(path, fsConstants.R_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
  }
}
