// The part of a PostgreSQL session's state that shapes result bytes, folded
// into one string (`contextKey`) that goes into every cache key. Two sessions
// share cached results only when their contextKeys are equal.

import { createHash } from 'node:crypto';
import type { BypassReason, SessionEffect } from '../core/types.js';

/** Reported by the server in ParameterStatus; all but these go in the key. */
const NOT_IN_KEY = new Set(['application_name']);

/** Settings the server does not report (ParameterStatus) in PostgreSQL 15
 * but that shape output, read from pg_settings by the session's own
 * look-up (which also reads current_user: SET ROLE survives RESET ALL). */
export const LOOKED_UP_SETTINGS = [
  'search_path',
  'bytea_output',
  'extra_float_digits',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  'default_text_search_config',
  'xmloption',
  'xmlbinary',
  'row_security',
  'transform_null_equals',
  'array_nulls',
  'quote_all_identifiers',
  'client_min_messages',
  // Inside a transaction: its snapshot rules (read in each new transaction
  // when cache.in_transactions is on).
  'transaction_isolation',
] as const;

/** Context strings run to hundreds of characters; keys carry a digest
 * instead, so hashing a key on the hit path stays cheap. A digest, not a
 * counter, so every proxy instance sharing a store names a context alike. */
function contextDigest(full: string): string {
  return createHash('sha256').update(full).digest('base64');
}

export interface Taint {
  reason: BypassReason;
  detail: string;
}

export class PgSessionContext {
  readonly database: string;
  readonly user: string;
  private readonly startupPart: string;
  private readonly reported = new Map<string, string>();
  private looked = new Map<string, string>();
  /** False until the settings look-up answered since the last change we
   * could not follow exactly (SET of a looked-up setting, RESET ALL…). */
  settingsKnown = false;
  /** A SET LOCAL ends with the transaction: look the settings up again then. */
  relookupAtTransactionEnd = false;
  taint: Taint | null = null;
  private cachedKey: string | null = null;
  /** Bumped on every change, so a session can keep its view until then. */
  version = 0;

  constructor(startup: Map<string, string>) {
    this.user = startup.get('user') ?? '';
    this.database = startup.get('database') ?? this.user;
    // Startup parameters other than the identity (options=-c …, DateStyle…)
    // set the session's initial context.
    const parts: string[] = [];
    for (const [k, v] of [...startup].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (k === 'user' || k === 'database' || NOT_IN_KEY.has(k)) continue;
      parts.push(`${k}=${v}`);
    }
    this.startupPart = parts.join('\u0001');
  }

  get contextKey(): string {
    if (this.cachedKey === null) {
      const parts = [this.startupPart];
      for (const [k, v] of [...this.reported].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        if (!NOT_IN_KEY.has(k)) parts.push(`${k}=${v}`);
      }
      for (const [k, v] of [...this.looked].sort((a, b) => (a[0] < b[0] ? -1 : 1))) parts.push(`${k}=${v}`);
      this.cachedKey = contextDigest(parts.join('\u0001'));
    }
    return this.cachedKey;
  }

  get searchPath(): string {
    return this.looked.get('search_path') ?? '';
  }

  /** The role names resolve for: "$user" in search_path means it. */
  get currentUser(): string {
    return this.looked.get('current_user') ?? this.user;
  }

  /** standard_conforming_strings off: '…' strings take backslash escapes. */
  get backslashEscapes(): boolean {
    return this.reported.get('standard_conforming_strings') === 'off';
  }

  parameterStatus(name: string, value: string): void {
    if (this.reported.get(name) === value) return;
    this.reported.set(name, value);
    this.cachedKey = null;
    this.version++;
  }

  /** Builtin names a user function also takes, and user operators (see LookupResult). */
  shadowed: ReadonlyMap<string, 'immutable' | 'stable' | 'volatile'> = new Map();
  userOperators: ReadonlySet<string> = new Set();

  learnSettings(settings: Map<string, string>): void {
    this.looked = settings;
    this.settingsKnown = true;
    this.cachedKey = null;
    this.version++;
  }

  /** Apply what a statement did, once the server acknowledged it. */
  apply(effect: SessionEffect): void {
    switch (effect.type) {
      case 'none':
      case 'deallocate':
      case 'prepare':
        return; // nothing the key holds
    }
    this.version++;
    switch (effect.type) {
      case 'set':
        // Reported settings come back as ParameterStatus; the others are
        // read again so the key holds the server's own spelling.
        this.settingsKnown = false;
        if (effect.local) this.relookupAtTransactionEnd = true;
        return;
      case 'reset-all':
        // RESET ALL leaves temporary tables in place: that taint stays.
        if (this.taint?.reason !== 'temp-table') this.taint = null;
        this.settingsKnown = false;
        return;
      case 'discard-temp':
        if (this.taint?.reason === 'temp-table') this.taint = null;
        this.settingsKnown = false;
        return;
      case 'taint':
        this.taint ??= { reason: effect.reason, detail: effect.detail };
        return;
    }
  }

  /** Something may have changed settings behind our back: read them again. */
  forgetSettings(): void {
    if (!this.settingsKnown) return;
    this.settingsKnown = false;
    this.version++;
  }

  transactionEnded(): void {
    if (this.relookupAtTransactionEnd) {
      this.relookupAtTransactionEnd = false;
      this.settingsKnown = false;
      this.version++;
    }
  }
}
