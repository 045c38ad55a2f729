// Decoders for the server messages the proxy must read; the proxy plays the
// client here. Framing is MessageFramer (frontend-codec.ts), which serves both
// directions. A DataRow relayed to a client is never decoded: results are byte ranges.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
//
// Hand-written rather than pg-protocol's Parser: that parser owns the stream and
// decodes every message into objects (rows included), while the relay needs
// offsets into the bytes it forwards unchanged.

import type { Buffer } from 'node:buffer';
import {
  BackendCode,
  MessageReader,
  ProtocolError,
  type Authentication,
  type BackendKeyData,
  type ErrorOrNotice,
  type NotificationResponse,
  type ParameterStatus,
  type RowDescription,
  type RowDescriptionField,
  type TransactionStatus,
} from './messages.js';

// Every decoder takes one whole message, buf[start, end) (type byte included),
// exactly as a Frame gives it, and checks its type byte and length field.

/** Transaction status: 'I' idle, 'T' in a transaction block, 'E' in a failed one. */
export function decodeReadyForQuery(buf: Buffer, start: number, end: number): TransactionStatus {
  const r = MessageReader.open(buf, start, end, BackendCode.ReadyForQuery, 'ReadyForQuery');
  const status = r.byte('transaction status');
  r.done();
  if (status === 0x49) return 'I';
  if (status === 0x54) return 'T';
  if (status === 0x45) return 'E';
  throw new ProtocolError(`ReadyForQuery: invalid transaction status '${String.fromCharCode(status)}'`);
}

/** The command tag, e.g. "SELECT 3", "INSERT 0 1", "UPDATE 2". */
export function decodeCommandComplete(buf: Buffer, start: number, end: number): string {
  const r = MessageReader.open(buf, start, end, BackendCode.CommandComplete, 'CommandComplete');
  const tag = r.cstring('command tag');
  r.done();
  return tag;
}

export function decodeErrorResponse(buf: Buffer, start: number, end: number): ErrorOrNotice {
  return decodeFields(MessageReader.open(buf, start, end, BackendCode.ErrorResponse, 'ErrorResponse'), 'ErrorResponse');
}

export function decodeNoticeResponse(buf: Buffer, start: number, end: number): ErrorOrNotice {
  return decodeFields(MessageReader.open(buf, start, end, BackendCode.NoticeResponse, 'NoticeResponse'), 'NoticeResponse');
}

// https://www.postgresql.org/docs/current/protocol-error-fields.html
function decodeFields(r: MessageReader, type: ErrorOrNotice['type']): ErrorOrNotice {
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte('field type');
    if (code === 0) break;
    const key = String.fromCharCode(code);
    fields.set(key, r.cstring(`field '${key}'`));
  }
  r.done();
  return {
    type,
    // V (PostgreSQL 9.6+) is never localized, so 'FATAL' can be compared; S may be translated.
    severity: fields.get('V') ?? fields.get('S') ?? '',
    code: fields.get('C') ?? '',
    message: fields.get('M') ?? '',
    fields,
  };
}

export function decodeParameterStatus(buf: Buffer, start: number, end: number): ParameterStatus {
  const r = MessageReader.open(buf, start, end, BackendCode.ParameterStatus, 'ParameterStatus');
  const name = r.cstring('parameter name');
  const value = r.cstring('parameter value');
  r.done();
  return { type: 'ParameterStatus', name, value };
}

export function decodeBackendKeyData(buf: Buffer, start: number, end: number): BackendKeyData {
  const r = MessageReader.open(buf, start, end, BackendCode.BackendKeyData, 'BackendKeyData');
  const processId = r.int32('process id');
  const secretKeyBytes = r.rest();
  // 4 bytes in protocol 3.0; protocol 3.2 (PostgreSQL 18) allows up to 256.
  if (secretKeyBytes.length < 4 || secretKeyBytes.length > 256) {
    throw new ProtocolError(`BackendKeyData: secret key of ${secretKeyBytes.length} bytes: expected 4 to 256`);
  }
  return { type: 'BackendKeyData', processId, secretKey: secretKeyBytes.readInt32BE(0), secretKeyBytes };
}

/** The request code and the bytes after it (MD5 salt, SASL mechanisms or SASL data), uncopied. */
export function decodeAuthentication(buf: Buffer, start: number, end: number): Authentication {
  const r = MessageReader.open(buf, start, end, BackendCode.Authentication, 'Authentication');
  const code = r.int32('authentication code');
  return { type: 'Authentication', code, data: r.rest() };
}

/** Used for the proxy's own catalog queries, not for relayed results. */
export function decodeRowDescription(buf: Buffer, start: number, end: number): RowDescription {
  const r = MessageReader.open(buf, start, end, BackendCode.RowDescription, 'RowDescription');
  const count = r.uint16('field count');
  const fields = new Array<RowDescriptionField>(count);
  for (let i = 0; i < count; i++) {
    const what = `field ${i + 1} of ${count}`;
    fields[i] = {
      name: r.cstring(`${what} name`),
      tableOid: r.uint32(`${what} table oid`),
      columnAttr: r.int16(`${what} column number`),
      typeOid: r.uint32(`${what} type oid`),
      typeSize: r.int16(`${what} type size`),
      typeMod: r.int32(`${what} type modifier`),
      format: r.int16(`${what} format`),
    };
  }
  r.done();
  return { type: 'RowDescription', fields };
}

/**
 * Decodes a text-format DataRow into strings. ONLY for the proxy's own internal
 * queries (catalog lookups): relayed rows are byte ranges and are never decoded.
 */
export function decodeDataRowText(buf: Buffer, start: number, end: number): (string | null)[] {
  const r = MessageReader.open(buf, start, end, BackendCode.DataRow, 'DataRow');
  const count = r.uint16('column count');
  const values = new Array<string | null>(count);
  for (let i = 0; i < count; i++) {
    const length = r.int32(`length of column ${i + 1} of ${count}`);
    if (length === -1) {
      values[i] = null;
    } else if (length < 0) {
      throw new ProtocolError(`DataRow: column ${i + 1} has invalid length ${length}`);
    } else {
      values[i] = r.bytes(length, `column ${i + 1} of ${count}`).toString('utf8');
    }
  }
  r.done();
  return values;
}

export function decodeNotificationResponse(buf: Buffer, start: number, end: number): NotificationResponse {
  const r = MessageReader.open(buf, start, end, BackendCode.NotificationResponse, 'NotificationResponse');
  const processId = r.int32('process id');
  const channel = r.cstring('channel');
  const payload = r.cstring('payload');
  r.done();
  return { type: 'NotificationResponse', processId, channel, payload };
}
