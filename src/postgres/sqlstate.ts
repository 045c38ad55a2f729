// SQLSTATE codes the proxy itself reports, and a shortcut for its ErrorResponses.
// Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
// Message format: https://www.postgresql.org/docs/current/protocol-message-formats.html

import type { Buffer } from 'node:buffer';
import { errorResponse as encodeErrorResponse } from './writer.js';

export const PROTOCOL_VIOLATION = '08P01';
export const CONNECTION_FAILURE = '08006';
export const CONNECTION_EXCEPTION = '08000';
export const QUERY_CANCELED = '57014';
export const ADMIN_SHUTDOWN = '57P01';
export const CANNOT_CONNECT_NOW = '57P03';
export const FEATURE_NOT_SUPPORTED = '0A000';
export const INTERNAL_ERROR = 'XX000';
export const TOO_MANY_CONNECTIONS = '53300';

/** An encoded ErrorResponse; FATAL by default, since the proxy mostly reports errors that end a session. */
export function errorResponse(
  code: string,
  message: string,
  severity: 'ERROR' | 'FATAL' = 'FATAL',
): Buffer {
  return encodeErrorResponse({ severity, code, message });
}
