// PostgreSQL wire-protocol vocabulary: message type codes, startup codes and the
// shapes the codecs decode into. Shared by both sides of the proxy.
// Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html

/** Type byte of a message sent by a client (frontend) to the server. */
export const enum FrontendCode {
  Query = 0x51, // Q
  Parse = 0x50, // P
  Bind = 0x42, // B
  Describe = 0x44, // D
  Execute = 0x45, // E
  Close = 0x43, // C
  Sync = 0x53, // S
  Flush = 0x48, // H
  Terminate = 0x58, // X
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  FunctionCall = 0x46, // F
  /** PasswordMessage, GSSResponse, SASLInitialResponse and SASLResponse all use 'p'. */
  PasswordMessage = 0x70, // p
}

/** Type byte of a message sent by the server (backend) to a client. */
export const enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  ParameterStatus = 0x53, // S
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
  DataRow = 0x44, // D
  CommandComplete = 0x43, // C
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
}

/** Authentication request sub-codes (the int32 after 'R'). */
export const enum AuthenticationCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

// Startup-phase codes: the int32 after the length of an untyped first packet.
export const PROTOCOL_3_0 = 196608; // 3 << 16 | 0
export const SSL_REQUEST_CODE = 80877103; // 1234 << 16 | 5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234 << 16 | 5680
export const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678
/** Largest startup packet the server accepts (MAX_STARTUP_PACKET_LENGTH in pqcomm.h). */
export const MAX_STARTUP_PACKET_LENGTH = 10000;

/**
 * Malformed bytes on the wire. The session answers with an ErrorResponse
 * carrying SQLSTATE 08P01 (protocol_violation) and closes the connection.
 */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** One complete typed message: `buf.subarray(start, end)` is type byte + length + body. */
export interface Frame {
  type: number;
  buf: Buffer;
  start: number;
  end: number;
}

// ---- startup phase (untyped packets) ----

export interface SSLRequest {
  type: 'ssl-request';
}
export interface GSSENCRequest {
  type: 'gssenc-request';
}
export interface CancelRequest {
  type: 'cancel-request';
  processId: number;
  /** The key as a signed int32 (its first 4 bytes); exact for protocol 3.0. */
  secretKey: number;
  /** The key as sent: 4 bytes in protocol 3.0, up to 256 in 3.2. Compare this one. */
  secretKeyBytes: Buffer;
}
export interface StartupMessage {
  type: 'startup';
  protocolVersion: number;
  parameters: Map<string, string>;
}
export type StartupPacket = SSLRequest | GSSENCRequest | CancelRequest | StartupMessage;

// ---- frontend messages the proxy decodes ----

export interface Query {
  type: 'Query';
  sql: string;
}
export interface Parse {
  type: 'Parse';
  name: string;
  sql: string;
  paramTypes: number[];
}
export interface Bind {
  type: 'Bind';
  portal: string;
  statement: string;
  paramFormats: number[];
  /** Subarrays of the received buffer (no copy); null is SQL NULL. */
  params: (Buffer | null)[];
  resultFormats: number[];
  /** `buf[keyStart, keyEnd)` is everything after the statement name: the parameter part of a cache key. */
  keyStart: number;
  keyEnd: number;
}
export interface Describe {
  type: 'Describe';
  target: 'S' | 'P';
  name: string;
}
export interface Execute {
  type: 'Execute';
  portal: string;
  maxRows: number;
}
export interface Close {
  type: 'Close';
  target: 'S' | 'P';
  name: string;
}
export type FrontendMessage = Query | Parse | Bind | Describe | Execute | Close;

// ---- backend messages the proxy decodes ----

export type TransactionStatus = 'I' | 'T' | 'E';

export interface Authentication {
  type: 'Authentication';
  /** An AuthenticationCode: 0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASL continue, 12 SASL final… */
  code: number;
  /** Bytes after the code (MD5 salt, SASL mechanism list or data), a subarray (no copy). */
  data: Buffer;
}
export interface BackendKeyData {
  type: 'BackendKeyData';
  processId: number;
  /** The key as a signed int32 (its first 4 bytes); exact for protocol 3.0. */
  secretKey: number;
  /** The key as sent: 4 bytes in protocol 3.0, up to 256 in 3.2. */
  secretKeyBytes: Buffer;
}
export interface ParameterStatus {
  type: 'ParameterStatus';
  name: string;
  value: string;
}
/** ErrorResponse and NoticeResponse share one layout of (code byte, string) fields. */
export interface ErrorOrNotice {
  type: 'ErrorResponse' | 'NoticeResponse';
  /** Non-localized severity (field V) when the server sends it, else field S. */
  severity: string;
  /** SQLSTATE (field C). */
  code: string;
  /** Primary message (field M). */
  message: string;
  /** Every field by its code letter: S V C M D H P p q W s t c d n F L R. */
  fields: Map<string, string>;
}
export interface RowDescriptionField {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeMod: number;
  /** 0 text, 1 binary. */
  format: number;
}
export interface RowDescription {
  type: 'RowDescription';
  fields: RowDescriptionField[];
}
export interface NotificationResponse {
  type: 'NotificationResponse';
  processId: number;
  channel: string;
  payload: string;
}

// ---- reading message bodies ----

/**
 * Bounds-checked cursor over one message body, `buf[pos, end)`. The only code
 * that reads offsets; every overrun is a ProtocolError naming the message.
 */
export class MessageReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
    readonly message: string,
  ) {}

  /** Checks the header of `buf[start, end)` and returns a reader over its body. */
  static open(buf: Buffer, start: number, end: number, code: number, message: string): MessageReader {
    if (start < 0 || end > buf.length || end - start < 5) {
      throw new ProtocolError(`${message}: message is ${end - start} bytes, shorter than its 5-byte header`);
    }
    if (buf[start] !== code) {
      throw new ProtocolError(`${message}: expected type '${String.fromCharCode(code)}', got '${String.fromCharCode(buf[start]!)}'`);
    }
    const length = buf.readInt32BE(start + 1);
    if (length !== end - start - 1) {
      throw new ProtocolError(`${message}: length field says ${length} but the message holds ${end - start - 1} bytes`);
    }
    return new MessageReader(buf, start + 5, end, message);
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new ProtocolError(`${this.message}: ${what} needs ${n} bytes but only ${this.end - this.pos} are left`);
    }
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  int16(what: string): number {
    this.need(2, what);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  /** Counts are unsigned 16-bit on the wire (the server reads them with pq_getmsgint(…, 2)). */
  uint16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated UTF-8 string; the NUL must lie inside the message. */
  cstring(what: string): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) {
      throw new ProtocolError(`${this.message}: ${what} has no NUL terminator before the end of the message`);
    }
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** `n` bytes as a subarray of the message (no copy). */
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** The rest of the body as a subarray (no copy). */
  rest(): Buffer {
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }

  /** The server rejects trailing bytes (pq_getmsgend); so do we. */
  done(): void {
    if (this.pos !== this.end) {
      throw new ProtocolError(`${this.message}: ${this.end - this.pos} unexpected bytes after the last field`);
    }
  }
}
