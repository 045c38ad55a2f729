// RedisStore: one cache and one set of table versions shared by every proxy
// instance that uses the same Redis (standalone or Cluster) and key prefix.
//
// Key layout (P = key_prefix, T = a hash tag naming one database):
//   P:v:{T}        HASH  table versions of that database: field "*" is the
//                        database epoch, one field per table
//   P:e:{T}:<sha>  HASH  one cached result read under that database's
//                        versions: "b" the entry bytes, "t" its tables
//   P:g            STRING the global epoch (POST /invalidate {"all":true})
//   P:reg          HASH  every database and statement shape cached, for
//                        POST /invalidate {"table"} and {"pattern"}
//                        (redis-registry.ts: how it stays complete)
// An entry and the versions it was read under share one hash tag, so in a
// Cluster they live on one node and a Lua script reads both at once: a
// lookup is one round trip to that node, plus a GET of the global epoch
// sent alongside (auto-pipelined: one write on a standalone server).
//
// A hit needs the versions the entry recorded to equal the current ones. A
// version hash created afresh (first use, or evicted under allkeys-lru)
// starts its database epoch at a random number, and so does the global
// epoch: counters that come back from nothing never match an old entry.
// Entries carry a Redis TTL (the rule's, or a day for "until invalidated")
// so Redis never keeps what no TTL could serve.
//
// After any loss of the connection, the first thing an instance does when
// Redis answers again is bump the global epoch, and it serves nothing until
// that bump succeeded: a write acknowledged while Redis was unreachable lost
// its bump, so every entry from before must go.
//
// Hand-written here: ioredis is the client; nothing in the field maps a
// version-guarded result cache onto Redis.

import { createHash, randomInt } from 'node:crypto';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConfig } from '../config/schema.js';
import { RedisRegistry, type RegistryContents } from './redis-registry.js';
import { SHAPE_TAG_PREFIX, type CacheEntry, type Store, type StoreUsage, type VersionSnapshot } from './store.js';

/** Redis TTL for entries cached "until invalidated" (TTL 0). */
const UNBOUNDED_TTL_MS = 24 * 60 * 60 * 1000;
const USAGE_REFRESH_MS = 2000;

const SNAPSHOT = `redis.call('HSETNX', KEYS[1], '*', ARGV[1])
return redis.call('HMGET', KEYS[1], '*', unpack(ARGV, 2))`;

const GET = `local e = redis.call('HMGET', KEYS[1], 'b', 't')
if not e[1] then return false end
local t = {}
for name in string.gmatch(e[2], '([^%z]+)') do t[#t + 1] = name end
return {e[1], redis.call('HMGET', KEYS[2], '*', unpack(t))}`;

const PUT = `redis.call('HSET', KEYS[1], 'b', ARGV[1], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

const BUMP = `redis.call('HSETNX', KEYS[1], '*', ARGV[1])
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
return 1`;

const BUMP_GLOBAL = `redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])`;

const INIT_GLOBAL = `redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`;

type Client = Redis | Cluster;

interface Scripts {
  sqlSnapshot(versionsKey: string, init: string, ...tables: string[]): Promise<(string | null)[]>;
  sqlGetBuffer(entryKey: string, versionsKey: string): Promise<[Buffer, (Buffer | null)[]] | null>;
  sqlPut(entryKey: string, blob: Buffer, tables: string, ttlMs: number): Promise<number>;
  sqlBump(versionsKey: string, init: string, ...fields: string[]): Promise<number>;
  sqlBumpGlobal(globalKey: string, init: string): Promise<number>;
  sqlInitGlobal(globalKey: string, init: string): Promise<string>;
}

export interface RedisStoreOptions {
  config: RedisConfig;
  log: Logger;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly client: Client & Scripts;
  private readonly prefix: string;
  private readonly globalKey: string;
  private readonly registry: RedisRegistry;
  private usageCache: StoreUsage = { entries: 0, bytes: 0, evictions: 0 };
  private refreshing = false;
  private connectedOnce = false;
  /** The connection was lost since the last global-epoch bump: serve nothing until it is made. */
  private needsEpochBump = false;
  private epochRetry: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly usageTimer: NodeJS.Timeout;

  constructor(opts: RedisStoreOptions) {
    const cfg = opts.config;
    this.prefix = cfg.keyPrefix;
    this.globalKey = `${this.prefix}:g`;
    const url = new URL(cfg.url);
    const common: RedisOptions = {
      // Fail open fast: a command while disconnected fails at once instead of
      // waiting in a queue; ioredis keeps reconnecting in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: cfg.commandTimeoutMs,
      connectTimeout: Math.max(1000, cfg.commandTimeoutMs * 4),
      retryStrategy: (times) => Math.min(50 * times, 1000),
      enableAutoPipelining: true,
      lazyConnect: false,
    };
    if (url.username !== '') common.username = decodeURIComponent(url.username);
    if (url.password !== '') common.password = decodeURIComponent(url.password);
    if (url.protocol === 'rediss:') common.tls = {};
    const client: Client =
      cfg.nodes === null
        ? new Redis({ ...common, host: url.hostname, port: url.port === '' ? 6379 : Number(url.port), db: dbIndex(url) })
        : new Cluster(
            cfg.nodes.map((n): ClusterNode => ({ host: n.host, port: n.port })),
            {
              redisOptions: common,
              enableOfflineQueue: false,
              enableAutoPipelining: true,
              scaleReads: 'master',
              clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
            },
          );
    let lastErrorLog = 0;
    client.on('error', (err: Error) => {
      this.connectionLost();
      // ioredis reports every failed reconnect: log one line a second at most.
      if (Date.now() - lastErrorLog < 1000) return;
      lastErrorLog = Date.now();
      opts.log.warn({ err: err.message }, 'redis connection error');
    });
    client.on('close', () => this.connectionLost());
    client.on('node error', () => this.connectionLost());
    client.on('ready', () => {
      this.connectedOnce = true;
      if (this.needsEpochBump) this.bumpEpochAfterOutage();
    });
    client.defineCommand('sqlSnapshot', { numberOfKeys: 1, lua: SNAPSHOT });
    client.defineCommand('sqlGet', { numberOfKeys: 2, lua: GET });
    client.defineCommand('sqlPut', { numberOfKeys: 1, lua: PUT });
    client.defineCommand('sqlBump', { numberOfKeys: 1, lua: BUMP });
    client.defineCommand('sqlBumpGlobal', { numberOfKeys: 1, lua: BUMP_GLOBAL });
    client.defineCommand('sqlInitGlobal', { numberOfKeys: 1, lua: INIT_GLOBAL });
    this.client = client as Client & Scripts;
    this.registry = new RedisRegistry(client, `${this.prefix}:reg`);
    this.usageTimer = setInterval(() => {
      if (!this.refreshing) void this.refreshUsage();
      this.registry.check().catch(() => {});
    }, USAGE_REFRESH_MS);
    this.usageTimer.unref();
  }

  /** Resolves once connected (or rejects): for start-up logs and tests; the store works without it. */
  async ready(): Promise<void> {
    await this.client.ping();
  }

  async snapshot(database: string, tables: readonly string[]): Promise<VersionSnapshot> {
    this.registry.noteDatabase(database);
    const [global, versions] = await Promise.all([
      this.client.sqlInitGlobal(this.globalKey, String(freshEpoch())),
      this.client.sqlSnapshot(this.versionsKey(database), String(freshEpoch()), ...tables),
    ]);
    return { database, tables: tables.slice(), versions: [Number(global), ...versions.map((v) => Number(v ?? 0))] };
  }

  async get(key: string, database: string): Promise<CacheEntry | undefined> {
    if (this.needsEpochBump) return undefined;
    const [global, found] = await Promise.all([this.client.get(this.globalKey), this.client.sqlGetBuffer(this.entryKey(database, key), this.versionsKey(database))]);
    if (found === null || found === undefined || global === null) return undefined;
    const entry = decodeEntry(found[0]);
    if (entry === null || entry.key !== key || entry.snapshot.database !== database) return undefined;
    const current = [Number(global), ...found[1].map((v) => (v === null ? 0 : Number(v.toString())))];
    const recorded = entry.snapshot.versions;
    if (current.length !== recorded.length || current[1] === 0) return undefined;
    for (let i = 0; i < current.length; i++) if (current[i] !== recorded[i]) return undefined;
    return entry;
  }

  async put(entry: CacheEntry, maxAgeMs: number): Promise<boolean> {
    const { database, tables } = entry.snapshot;
    // Only what POST /invalidate can find again (by table name or pattern) is stored.
    const shapeTag = tables.find((t) => t.startsWith(SHAPE_TAG_PREFIX));
    if (!this.registry.registered(database, shapeTag)) return false;
    await this.client.sqlPut(this.entryKey(database, entry.key), encodeEntry(entry), tables.join('\0'), maxAgeMs > 0 ? maxAgeMs : UNBOUNDED_TTL_MS);
    return true;
  }

  async bump(database: string, tables: readonly string[]): Promise<void> {
    if (tables.length === 0) return;
    this.registry.noteDatabase(database);
    await this.client.sqlBump(this.versionsKey(database), String(freshEpoch()), ...tables);
  }

  async bumpDatabase(database: string): Promise<void> {
    this.registry.noteDatabase(database);
    await this.client.sqlBump(this.versionsKey(database), String(freshEpoch()), '*');
  }

  async bumpAll(): Promise<void> {
    await this.client.sqlBumpGlobal(this.globalKey, String(freshEpoch()));
  }


  registerShape(shape: string, tag: string): void {
    this.registry.noteShape(shape, tag);
  }

  /** Every database and shape any instance cached; null when the registry may be incomplete. */
  registryContents(): Promise<RegistryContents | null> {
    return this.registry.read();
  }

  /** Shared figures from Redis (refreshed in the background every 2 s): entries under this
   * prefix (a SCAN), memory used and keys evicted (Redis-wide). */
  usage(): StoreUsage {
    return this.usageCache;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.usageTimer);
    if (this.epochRetry !== null) clearTimeout(this.epochRetry);
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private connectionLost(): void {
    if (!this.connectedOnce || this.closed) return;
    this.needsEpochBump = true;
    this.bumpEpochAfterOutage();
  }

  /** Retries (every 250 ms) until the global epoch is bumped; then entries may be served again. */
  private bumpEpochAfterOutage(): void {
    if (this.epochRetry !== null || this.closed) return;
    const attempt = (): void => {
      this.epochRetry = null;
      if (this.closed || !this.needsEpochBump) return;
      this.client.sqlBumpGlobal(this.globalKey, String(freshEpoch())).then(
        () => {
          this.needsEpochBump = false;
        },
        () => {
          this.epochRetry ??= setTimeout(attempt, 250);
          this.epochRetry.unref();
        },
      );
    };
    this.epochRetry = setTimeout(attempt, 0);
    this.epochRetry.unref();
  }

  private async refreshUsage(): Promise<void> {
    this.refreshing = true;
    try {
      const nodes: Redis[] = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
      let entries = 0;
      let bytes = 0;
      let evictions = 0;
      for (const n of nodes) {
        const [size, memory, stats] = await Promise.all([this.countEntries(n), n.info('memory'), n.info('stats')]);
        entries += size;
        bytes += infoNumber(memory, 'used_memory');
        evictions += infoNumber(stats, 'evicted_keys');
      }
      this.usageCache = { entries, bytes, evictions };
    } catch {
      // Redis away: keep the last figures, try again at the next tick.
    } finally {
      this.refreshing = false;
    }
  }

  /** Entries under this key prefix on one node (a background SCAN, for /stats). */
  private async countEntries(n: Redis): Promise<number> {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await n.scan(cursor, 'MATCH', `${this.prefix}:e:*`, 'COUNT', 1000);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  }

  private versionsKey(database: string): string {
    return `${this.prefix}:v:{${tag(database)}}`;
  }

  private entryKey(database: string, key: string): string {
    return `${this.prefix}:e:{${tag(database)}}:${createHash('sha256').update(key).digest('base64url')}`;
  }
}

/** A hash tag for a database name: no braces, whatever the name holds. */
function tag(database: string): string {
  return Buffer.from(database, 'utf8').toString('base64url');
}

/** A starting epoch no counter reaches by counting: versions recreated from nothing never match old entries. */
function freshEpoch(): number {
  return randomInt(1, 2 ** 47);
}

function dbIndex(url: URL): number {
  const n = Number(url.pathname.slice(1) || '0');
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

function infoNumber(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m === null ? 0 : Number(m[1]);
}

// Entry bytes: u32 length of a JSON header, the header, u32 length of `head`
// (0xFFFFFFFF for none), `head`, then `body`.
interface Header {
  k: string;
  s: number;
  h: string;
  d: string;
  t: readonly string[];
  v: readonly number[];
}

export function encodeEntry(e: CacheEntry): Buffer {
  const header: Header = { k: e.key, s: e.storedAt, h: e.shape, d: e.snapshot.database, t: e.snapshot.tables, v: e.snapshot.versions };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const lengths = Buffer.allocUnsafe(8);
  lengths.writeUInt32LE(json.length, 0);
  lengths.writeUInt32LE(e.head === null ? 0xffffffff : e.head.length, 4);
  return Buffer.concat([lengths.subarray(0, 4), json, lengths.subarray(4), e.head ?? Buffer.alloc(0), e.body]);
}

export function decodeEntry(b: Buffer): CacheEntry | null {
  try {
    const jsonLength = b.readUInt32LE(0);
    const header = JSON.parse(b.toString('utf8', 4, 4 + jsonLength)) as Header;
    let at = 4 + jsonLength;
    const headLength = b.readUInt32LE(at);
    at += 4;
    const head = headLength === 0xffffffff ? null : b.subarray(at, at + headLength);
    if (head !== null) at += headLength;
    return {
      key: header.k,
      head,
      body: b.subarray(at),
      storedAt: header.s,
      shape: header.h,
      snapshot: { database: header.d, tables: header.t, versions: header.v },
    };
  } catch {
    return null; // not ours, or damaged: a miss
  }
}
