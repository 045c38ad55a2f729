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
  redis: { url: string; keyPrefix: string };
}

export interface Config {
  /** The file it was read from, or null for built-in defaults. */
  file: string | null;
  listeners: ListenerConfig[];
  cache: CacheConfig;
  rules: RuleConfig[];
  admin: { listen: HostPort };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; pretty: boolean };
}
