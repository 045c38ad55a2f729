// The request a MySQL session has in flight, and what it will store.

import type { VersionSnapshot } from '../cache/store.js';
import type { ResultCapture } from '../core/result-capture.js';
import type { Analysis, CacheDecision } from '../core/types.js';
import type { WriteSet } from './qualify.js';
import type { ResponseReader } from './responses.js';

export interface FillPlan {
  decision: CacheDecision;
  key: string;
  snapshot: VersionSnapshot;
  capture: ResultCapture;
  /** Offset in the capture of the final status flags. */
  statusAt: number;
  sentAt: number;
}

export interface Request {
  command: number;
  reader: ResponseReader;
  fill: FillPlan | null;
  writes: WriteSet | null;
  analysis: Analysis | null;
  /** The text was not lexed as the server lexes it: it may have changed settings or the database. */
  unsafeText?: boolean;
  /** COM_STMT_PREPARE: the text, registered when the server accepts it. */
  prepareSql?: string;
  prepareDb?: string | null;
  /** COM_INIT_DB / COM_CHANGE_USER / COM_RESET_CONNECTION: applied on OK. */
  onOk?: () => void;
}

/** Statements that read what the previous statement left on the connection. */
export const READS_CONNECTION_STATE = /ROW_COUNT|FOUND_ROWS|WARNINGS|ERRORS|warning_count|error_count|DIAGNOSTICS|OPTIMIZER_TRACE|PROFILE/i;

/** The text of a statement prepared in a command too large to read: unknown. */
export const UNREAD = '\0unread';
