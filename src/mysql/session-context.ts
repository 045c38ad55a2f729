// The part of a MySQL session's state that shapes result bytes, folded into
// one digest (`contextKey`) that goes into every cache key: negotiated
// capabilities and handshake character set, the current database and account,
// and the session variables that change what a result holds. The variables
// are read back from the server (see lookups.ts) after the session starts and
// after any SET of them, so `SET sql_mode = CONCAT(@@sql_mode, …)` keys on
// what the server really holds.

import { createHash } from 'node:crypto';
import type { BypassReason, SessionEffect } from '../core/types.js';
import { MYSQL_KEYED_SETTINGS } from '../sql/mysql-settings.js';

/**
 * The variables the classifier says shape results (a SET of one makes the
 * session read them all again), read with one `SELECT @@session.x, …` and
 * keyed on, in this order. Named as the server spells them: MariaDB before
 * 11.1 knows only `tx_isolation`, MySQL 8 only `transaction_isolation` and no
 * `old_mode`.
 */
const MARIADB_ONLY = new Set(['old_mode', 'system_versioning_asof', 'default_regex_flags', 'max_recursive_iterations']);

export function keyedVariables(mariadb: boolean): string[] {
  return MYSQL_KEYED_SETTINGS.flatMap((v) => {
    if (v === 'transaction_isolation') return [mariadb ? 'tx_isolation' : v];
    if (MARIADB_ONLY.has(v) && !mariadb) return [];
    return [v];
  });
}

export interface Taint {
  reason: BypassReason;
  detail: string;
}

export class MysqlSessionContext {
  database: string | null;
  user: string;
  /** What the settings look-up read: the variables, then DATABASE(), CURRENT_USER() (last two). */
  private looked: string[] | null = null;
  taint: Taint | null = null;
  private cachedKey: string | null = null;
  /** Bumped on every change, so a session can keep its view until then. */
  version = 0;

  constructor(
    user: string,
    database: string | null,
    /** Negotiated capabilities and handshake character set: fixed for the connection. */
    private readonly connectionPart: string,
  ) {
    this.user = user;
    this.database = database;
  }

  /** True once the settings look-up has answered since the last change. */
  get settingsKnown(): boolean {
    return this.looked !== null;
  }

  /** The character set statements arrive in (null until looked up). */
  get clientCharset(): string | null {
    return this.looked === null ? null : this.charsetClient;
  }

  /** Whether sql_mode has ANSI_QUOTES ("…" is an identifier); null until read. */
  get ansiQuotes(): boolean | null {
    return this.looked === null ? null : this.ansiQuotesOn;
  }

  // Both read by decodeText on every statement: derived once per look-up,
  // not by an indexOf and a regex per query.
  private charsetClient: string | null = null;
  private ansiQuotesOn = false;

  settingsLookedUp(values: string[]): void {
    this.looked = values;
    this.charsetClient = values[MYSQL_KEYED_SETTINGS.indexOf('character_set_client')] ?? null;
    this.ansiQuotesOn = /(^|,)(ANSI_QUOTES|ANSI)(,|$)/.test(values[MYSQL_KEYED_SETTINGS.indexOf('sql_mode')] ?? '');
    // DATABASE() follows the variables: the server's word wins over ours
    // (a USE inside a procedure, a failed COM_INIT_DB).
    const db = values[values.length - 2];
    this.database = db === undefined || db === '\0NULL' ? null : db;
    this.changed();
  }

  /** Something may have changed the variables: read them again before caching. */
  forgetSettings(): void {
    if (this.looked === null) return;
    this.looked = null;
    this.changed();
  }

  useDatabase(db: string | null): void {
    this.database = db;
    this.changed();
  }

  apply(e: SessionEffect): void {
    switch (e.type) {
      case 'none':
        return;
      case 'set':
        this.forgetSettings();
        return;
      case 'use':
        this.useDatabase(e.database);
        return;
      case 'taint':
        this.taint ??= { reason: e.reason, detail: e.detail };
        this.changed();
        return;
      default:
        // PostgreSQL-only effects (RESET ALL, DEALLOCATE…): not produced for MySQL.
        return;
    }
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: session variables and taint are gone. */
  reset(user: string, database: string | null): void {
    this.user = user;
    this.database = database;
    this.taint = null;
    this.looked = null;
    this.changed();
  }

  contextKey(): string {
    if (this.cachedKey === null) {
      const parts = [this.connectionPart, this.database ?? '\0', ...(this.looked ?? ['\0unknown'])];
      // A digest, not a counter: every proxy instance sharing a store names a context alike.
      this.cachedKey = createHash('sha256').update(parts.map((p) => `${p.length}:${p}`).join('')).digest('base64');
    }
    return this.cachedKey;
  }

  private changed(): void {
    this.cachedKey = null;
    this.version++;
  }
}
