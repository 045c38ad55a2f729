// What the session has sent upstream and is waiting for, in order. The
// server answers requests strictly in order, so one FIFO routes every reply:
// the head item consumes server messages until its ReadyForQuery. Answers
// served from cache wait in the same FIFO as `local` items, so a client that
// pipelines sees its replies in the order it asked.

import type { CacheDecision, Classification, SessionEffect } from '../core/types.js';
import type { VersionSnapshot } from '../cache/store.js';
import type { LookupRequest } from './catalog-lookup.js';
import type { ResultCapture } from '../core/result-capture.js';

/** A response being captured for the cache: stored when its request ends well. */
export interface FillPlan {
  decision: CacheDecision;
  key: string;
  snapshot: VersionSnapshot;
  capture: ResultCapture;
  sentAt: number;
}

/** Tables a request writes; bumped when acknowledged and again after commit. */
export interface WriteSet {
  tables: Set<string>;
  unknown: boolean;
  ddl: boolean;
}

export function emptyWrites(): WriteSet {
  return { tables: new Set(), unknown: false, ddl: false };
}

export function hasWrites(w: WriteSet): boolean {
  return w.unknown || w.tables.size > 0;
}

export function mergeWrites(into: WriteSet, from: WriteSet): void {
  for (const t of from.tables) into.tables.add(t);
  into.unknown ||= from.unknown;
  into.ddl ||= from.ddl;
}

/** Cannot change the transaction status or the session context. */
export function isNeutral(c: Classification): boolean {
  return !c.txnControl && c.sessionEffects.every((e) => e.type === 'none') && !mayChangeSettings(c);
}

/** A user function can set_config() anything (search_path, role…), and
 * UPDATE pg_settings is SET by another name: the settings the key holds
 * must be read again afterwards. */
export function mayChangeSettings(c: Classification): boolean {
  return c.functions.length > 0 || c.writes.includes('pg_settings');
}

/** The reply each forwarded extended-protocol message will get. */
export type ExpectKind = 'parse' | 'lazy-parse' | 'bind' | 'describe' | 'execute' | 'close' | 'query' | 'sync';

export interface Expectation {
  kind: ExpectKind;
  fill: FillPlan | null;
  /** Tables this Execute or Query writes (bumped at its CommandComplete). */
  writes: WriteSet | null;
  /** What the message changes (a statement's name now means its text):
   * applied only when the server confirms it, never when it failed or was
   * skipped after an error. */
  commit?: () => void;
}

interface RequestBase {
  writes: WriteSet;
  /** The server commits before its CommandComplete (one statement in a
   * simple Query): the bump there was after the commit, no second needed. */
  committedAtCommandComplete: boolean;
  effects: SessionEffect[];
  /** Cannot change the transaction status or the session context (no
   * BEGIN/COMMIT, no SET…): later requests may be decided before it ends. */
  neutral: boolean;
  errored: boolean;
  /** Stored only if the request ends outside a transaction, as it began. */
  fills: FillPlan[];
  /** See mayChangeSettings: read the settings again when it ends. */
  settingsMayChange?: boolean;
}

export interface SimpleQueryItem extends RequestBase {
  type: 'simple';
  fill: FillPlan | null;
}

export interface BatchItem extends RequestBase {
  type: 'batch';
  expect: Expectation[];
  /** Index of the next expected reply in `expect`. */
  next: number;
  /** The proxy's own batch (statements the client believes exist, prepared
   * before a Query that may name them): nothing of it reaches the client. */
  internal: boolean;
  /** After an error in an extended message the server ignores everything
   * up to the Sync: the next ReadyForQuery is the Sync's. */
  skipping?: boolean;
}

export interface LookupItem {
  type: 'lookup';
  req: LookupRequest;
  rows: Array<Array<string | null>>;
  errored: boolean;
  /** The server's error, when it failed. */
  error?: string;
  /** The catalog's generation for the database when it was sent (CatalogMemo.generation). */
  generation: number;
  done: () => void;
}

export interface LocalItem {
  type: 'local';
  bytes: Buffer[];
}

/** A request that reaches the server outside the simple/extended flows
 * (FunctionCall): its replies are relayed until ReadyForQuery. */
export interface RelayItem extends RequestBase {
  type: 'relay';
}

export type InFlight = SimpleQueryItem | BatchItem | LookupItem | LocalItem | RelayItem;
