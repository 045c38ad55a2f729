// TableVersions: the in-process truth about which cached reads are still
// current. Snapshot before a read is sent, store only if unchanged, bump
// after a write is acknowledged.
//
// Every bump takes the next value of ONE monotonically increasing counter,
// so a version value is never reused: two equal snapshots mean no bump of
// any of their parts happened in between. A snapshot is
// [global epoch, database epoch, ...one per table]; bumpAll and
// bumpDatabase move an epoch, so they are O(1) and also cover tables whose
// counter does not exist yet ("a table first seen after bumpAll" reads as
// the floor, but the global epoch in every older snapshot differs).
//
// Bounded: one number per (database, table) ever written, plus one per
// database bumped as a whole. Past `maxTables` counters everything is
// forgotten at once: the floor (what an unknown part reads as) and the
// global epoch both move to a fresh counter value, so every older snapshot
// is stale and no value ever goes backwards.

import type { VersionSnapshot } from '../cache/store.js';

export class TableVersions {
  private counter = 0;
  /** What a database epoch or table counter not in the maps reads as. */
  private floor = 0;
  private global = 0;
  private readonly databases = new Map<string, number>();
  private readonly tables = new Map<string, Map<string, number>>();
  private tableCount = 0;
  private readonly maxTables: number;

  constructor(opts: { maxTables?: number } = {}) {
    this.maxTables = opts.maxTables ?? 100_000;
  }

  snapshot(database: string, tables: readonly string[]): VersionSnapshot {
    const byTable = this.tables.get(database);
    const versions = new Array<number>(tables.length + 2);
    versions[0] = this.global;
    versions[1] = this.databases.get(database) ?? this.floor;
    for (let i = 0; i < tables.length; i++) {
      versions[i + 2] = byTable?.get(tables[i] as string) ?? this.floor;
    }
    return { database, tables: tables.slice(), versions };
  }

  /** Whether nothing in `s` was bumped since it was taken. Allocates nothing. */
  isCurrent(s: VersionSnapshot): boolean {
    const { tables, versions } = s;
    if (versions.length !== tables.length + 2) return false;
    if (versions[0] !== this.global) return false;
    if (versions[1] !== (this.databases.get(s.database) ?? this.floor)) return false;
    const byTable = this.tables.get(s.database);
    for (let i = 0; i < tables.length; i++) {
      if (versions[i + 2] !== (byTable?.get(tables[i] as string) ?? this.floor)) return false;
    }
    return true;
  }

  bump(database: string, tables: readonly string[]): void {
    if (tables.length === 0) return;
    const v = ++this.counter;
    let byTable = this.tables.get(database);
    if (byTable === undefined) {
      byTable = new Map();
      this.tables.set(database, byTable);
    }
    for (const t of tables) {
      if (!byTable.has(t)) this.tableCount++;
      byTable.set(t, v);
    }
    if (this.tableCount > this.maxTables) this.forgetAll();
  }

  bumpDatabase(database: string): void {
    this.databases.set(database, ++this.counter);
    if (this.databases.size > this.maxTables) this.forgetAll();
  }

  bumpAll(): void {
    this.global = ++this.counter;
  }

  /** Counters kept (for tests and /stats). */
  get size(): number {
    return this.tableCount + this.databases.size;
  }

  private forgetAll(): void {
    this.floor = ++this.counter;
    this.global = this.floor;
    this.tables.clear();
    this.databases.clear();
    this.tableCount = 0;
  }
}
