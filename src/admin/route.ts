// The admin server's vocabulary: what a route receives, what it answers, and
// what the rest of the proxy lends it (AdminDeps). Routes are plain functions
// from request to response; http-server.ts does all the node:http work.

import type { IncomingHttpHeaders } from 'node:http';
import type { Dialect } from '../core/types.js';

/** What the admin views need from the running proxy (server.ts builds it). */
export interface AdminDeps {
  /** True while the proxy is listening and able to serve. */
  healthy(): boolean;
  /** A JSON-ready snapshot: hits, misses, bypasses, hit_ratio, entries, tables, queries… */
  stats(): unknown;
  /** Drop cached results: one table (in one database, or in all), or everything. */
  invalidate(req: { database?: string; table?: string; all?: boolean }): Promise<{ invalidated: string[] }>;
  /** What the proxy would do with a statement (GET /explain, same as `sqlcached explain`). */
  explain?(sql: string, dialect?: Dialect, database?: string): unknown;
  /** Prometheus text (GET /metrics). */
  metrics?(): Promise<{ contentType: string; text: string }>;
  /** Re-read the config file (POST /reload, same as SIGHUP). */
  reload?(): Promise<ReloadOutcome>;
  /** Drop cached results whose shape matches a pattern (`%` = any run of characters). */
  invalidatePattern?(pattern: string): Promise<{ invalidated: string[]; shapes: number }>;
  /** admin.token in force now (a reload may change it); null = no token required. */
  token?(): string | null;
}

/** What a reload did: applied (with the sections that changed), or refused and why. */
export type ReloadOutcome =
  | { ok: true; file: string | null; changed: string[]; restart_required: string[] }
  | { ok: false; file: string | null; error: string };

export interface AdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The request body (at most MAX_BODY_BYTES); empty for GET. */
  body: Buffer;
}

export type AdminResponse =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; html: string; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> };

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  handle(req: AdminRequest, deps: AdminDeps): AdminResponse | Promise<AdminResponse>;
}

/** The JSON error body every refusal uses: {"error": "...", ...details}. */
export function errorResponse(status: number, error: string, details: Record<string, unknown> = {}): AdminResponse {
  return { status, json: { error, ...details } };
}
