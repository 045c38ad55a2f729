// The shared registry of a Redis store: every database and every statement
// shape any instance has cached results for. POST /invalidate by table name
// (no database) and by shape pattern read it to find what to bump, so a
// name missing from it would leave a stale result servable. It is kept
// complete, or known not to be:
//
//   P:reg  HASH  "#born"      when this hash was created (Redis TIME, "sec.usec")
//                "d:<db>"     a database
//                "s:<tag>"    a shape, by its version tag
//                "#overflow"  an instance stopped tracking shapes (past its bound)
//
// - An instance stores a result only once its database and shape are
//   registered in the current incarnation of the hash (a failed HSET during
//   a Redis blip means no put, never an unregistered entry).
// - The hash can vanish (Redis restarted without persistence, allkeys-lru
//   eviction). Whoever registers next re-creates it with a new "#born";
//   every instance notices within REFRESH_MS (its timer reads "#born") and
//   registers again everything it knows, refusing puts until that is done.
// - A reader trusts the hash only when it exists, has no "#overflow" and
//   was born more than GRACE_S ago (by then every live instance has
//   re-registered); otherwise the caller invalidates everything.

import type { Cluster, Redis } from 'ioredis';

export const REGISTRY_REFRESH_MS = 2000;
/** Seconds after a re-creation during which the registry may be incomplete. */
const GRACE_S = 10;
const MAX_SHAPES = 100_000;
const MAX_DATABASES = 10_000;
const BORN = '#born';
const OVERFLOW = '#overflow';

const REGISTER = `if redis.call('HEXISTS', KEYS[1], '${BORN}') == 0 then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], '${BORN}', t[1] .. '.' .. t[2])
end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HGET', KEYS[1], '${BORN}')`;

type Client = (Redis | Cluster) & { sqlRegister(key: string, ...fieldsAndValues: string[]): Promise<string> };

export interface RegistryContents {
  databases: string[];
  /** shape → tag */
  shapes: Map<string, string>;
}

export class RedisRegistry {
  private readonly client: Client;
  /** field → value of everything this instance registers ("d:db" → "1", "s:tag" → shape). */
  private readonly mine = new Map<string, string>();
  /** Fields not yet confirmed in the current incarnation. */
  private readonly pending = new Set<string>();
  private shapeCount = 0;
  private databaseCount = 0;
  private overflowed = false;
  /** "#born" of the incarnation our confirmed fields live in. */
  private born: string | null = null;
  private syncing = false;

  constructor(
    client: Redis | Cluster,
    private readonly key: string,
  ) {
    client.defineCommand('sqlRegister', { numberOfKeys: 1, lua: REGISTER });
    this.client = client as Client;
  }

  noteDatabase(database: string): void {
    const field = `d:${database}`;
    if (this.mine.has(field)) return;
    if (this.databaseCount >= MAX_DATABASES) return this.overflow();
    this.databaseCount++;
    this.add(field, '1');
  }

  noteShape(shape: string, tag: string): void {
    const field = `s:${tag}`;
    if (this.mine.has(field)) return;
    if (this.shapeCount >= MAX_SHAPES) return this.overflow();
    this.shapeCount++;
    this.add(field, shape);
  }

  /** Whether a result of this database and shape may be stored now. */
  registered(database: string, tag: string | undefined): boolean {
    if (this.born === null) return false;
    const fields = tag === undefined ? [`d:${database}`] : [`d:${database}`, `s:${tag}`];
    for (const f of fields) {
      if (this.mine.has(f)) {
        if (this.pending.has(f)) return false;
      } else if (!this.overflowed || this.pending.has(OVERFLOW)) {
        // Not tracked here: past the bound only the confirmed overflow mark covers it.
        return false;
      }
    }
    return true;
  }

  /** The timer: has the hash been re-created (or lost) since we registered? */
  async check(): Promise<void> {
    const born = await this.client.hget(this.key, BORN);
    if (born !== this.born || this.pending.size > 0) await this.sync();
  }

  /** Everything registered by every instance, or null when it cannot be trusted to be complete. */
  async read(): Promise<RegistryContents | null> {
    const [all, time] = await Promise.all([this.client.hgetall(this.key), this.client.time()]);
    const born = all[BORN];
    if (born === undefined || all[OVERFLOW] !== undefined) return null;
    if (Number(time[0]) - Number(born.split('.')[0]) < GRACE_S) return null;
    const out: RegistryContents = { databases: [], shapes: new Map() };
    for (const [field, value] of Object.entries(all)) {
      if (field.startsWith('d:')) out.databases.push(field.slice(2));
      else if (field.startsWith('s:')) out.shapes.set(value, field.slice(2));
    }
    return out;
  }

  private overflow(): void {
    if (this.overflowed) return;
    this.overflowed = true;
    this.add(OVERFLOW, '1');
  }

  private add(field: string, value: string): void {
    this.mine.set(field, value);
    this.pending.add(field);
    this.register([field, value]).catch(() => {
      // Stays pending: the timer tries again, and no put uses it meanwhile.
    });
  }

  /** HSET the fields; confirm them if the hash is still the incarnation we know. */
  private async register(fieldsAndValues: string[]): Promise<void> {
    const born = await this.client.sqlRegister(this.key, ...fieldsAndValues);
    if (this.born !== null && born !== this.born) {
      // Re-created since we last looked: everything of ours must go in again.
      this.born = born;
      for (const f of this.mine.keys()) this.pending.add(f);
      void this.sync().catch(() => {});
    } else {
      this.born = born;
    }
    for (let i = 0; i < fieldsAndValues.length; i += 2) this.pending.delete(fieldsAndValues[i] as string);
  }

  /** Register again everything of ours (in batches) under the current incarnation. */
  private async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (const f of this.mine.keys()) this.pending.add(f);
      const fields = [...this.mine];
      const born = await this.client.hget(this.key, BORN);
      if (born !== this.born) this.born = born;
      for (let i = 0; i < fields.length; i += 500) {
        await this.register(fields.slice(i, i + 500).flat());
      }
      if (fields.length === 0) this.born = await this.client.sqlRegister(this.key);
    } finally {
      this.syncing = false;
    }
  }
}
