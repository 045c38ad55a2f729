// The seam the Redis store will use: a store that answers later. A write's
// acknowledgement must not reach its client before the store has taken the
// invalidation, and a read after that acknowledgement, on any connection,
// is fresh. The store here is the real memory store whose bumps complete
// 50 ms late (a slow network round trip), not a mock of a database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import type { Store } from '../../../src/cache/store.js';
import { connectClient, directQuery, dropTables, endDirect, uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('async_t');
const DELAY_MS = 50;
/** When each bump took effect in the store (performance.now()). */
const bumpedAt: number[] = [];

class SlowBumpStore implements Store {
  readonly kind = 'redis' as const;
  private readonly inner = new MemoryStore({ maxMemoryBytes: 16 * 1024 * 1024 });
  snapshot: Store['snapshot'] = (db, tables) => this.inner.snapshot(db, tables);
  get: Store['get'] = (key) => this.inner.get(key);
  put: Store['put'] = (entry, maxAgeMs) => this.inner.put(entry, maxAgeMs);
  usage: Store['usage'] = () => this.inner.usage();
  close: Store['close'] = () => this.inner.close();
  private later(apply: () => unknown): Promise<void> {
    return new Promise((resolve) =>
      setTimeout(() => {
        apply();
        bumpedAt.push(performance.now());
        resolve();
      }, DELAY_MS),
    );
  }
  bump: Store['bump'] = (db, tables) => this.later(() => this.inner.bump(db, tables));
  bumpDatabase: Store['bumpDatabase'] = (db) => this.later(() => this.inner.bumpDatabase(db));
  bumpAll: Store['bumpAll'] = () => this.later(() => this.inner.bumpAll());
}

let proxy: TestProxy;
let a: pg.Client;
let b: pg.Client;
const readB = () => b.query<{ v: number }>(`SELECT v FROM ${T} WHERE id = 1`).then((r) => r.rows[0]?.v);

beforeAll(async () => {
  await directQuery(`CREATE TABLE ${T} (id int PRIMARY KEY, v int NOT NULL)`);
  await directQuery(`INSERT INTO ${T} VALUES (1, 0)`);
  proxy = await startProxy({ store: new SlowBumpStore() });
  a = await connectClient(proxy.url());
  b = await connectClient(proxy.url());
});

afterAll(async () => {
  await a?.end().catch(() => {});
  await b?.end().catch(() => {});
  await proxy?.stop();
  await dropTables(T);
  await endDirect();
});

describe('a store that answers later', () => {
  it('an acknowledged write was invalidated first, and the next read on another connection is fresh', async () => {
    for (let v = 1; v <= 5; v += 1) {
      expect(await warm(proxy, readB)).toBe(v - 1);
      bumpedAt.length = 0;
      await a.query(`UPDATE ${T} SET v = $1 WHERE id = 1`, [v]);
      const ackedAt = performance.now();
      expect(bumpedAt.length, 'the store took a bump before the acknowledgement').toBeGreaterThan(0);
      expect(bumpedAt[0]!).toBeLessThanOrEqual(ackedAt);
      expect(await readB(), 'fresh on another connection right after the acknowledgement').toBe(v);
    }
  });

  it('a simple-protocol write is held back the same way', async () => {
    expect(await warm(proxy, readB)).toBe(5);
    bumpedAt.length = 0;
    await a.query(`UPDATE ${T} SET v = 6 WHERE id = 1`);
    const ackedAt = performance.now();
    expect(bumpedAt.length).toBeGreaterThan(0);
    expect(bumpedAt[0]!).toBeLessThanOrEqual(ackedAt);
    expect(await readB()).toBe(6);
  });
});
