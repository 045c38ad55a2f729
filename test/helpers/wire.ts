// A raw PostgreSQL frontend over net.Socket for tests that must send what
// no client library would (garbage, truncated and oversize messages) or
// look at bytes libraries hide (the one-byte SSLRequest answer).
// Server messages are decoded with pg-protocol's Parser.

import net from 'node:net';
import { serialize } from 'pg-protocol';
import type { BackendMessage, DatabaseError } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** An 8-byte request with no type byte: SSLRequest, GSSENCRequest. */
export function negotiationRequest(code: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
}

export function startupMessage(params: Record<string, string>): Buffer {
  return serialize.startup(params);
}

/** A typed frontend message: type byte, Int32 length (itself included), body. */
export function frontendMessage(type: string, body: Buffer = Buffer.alloc(0), lengthOverride?: number): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(lengthOverride ?? body.length + 4, 1);
  return Buffer.concat([header, body]);
}

export const terminateMessage = (): Buffer => frontendMessage('X');

export class RawClient {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private received = 0;
  private parser: Parser | null;
  private waiters: Array<() => void> = [];
  /** Server messages decoded so far (when `keep` is on), in order. */
  readonly messages: BackendMessage[] = [];
  /** How many messages of each name were decoded. */
  readonly counts = new Map<string, number>();
  /** Store decoded messages (off for 200 000-row streams: count only). */
  keep = true;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket, parse: boolean) {
    this.socket = socket;
    this.parser = parse ? new Parser() : null;
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.received += d.length;
      this.feed(d);
      this.wake();
    });
    socket.on('error', () => {}); // ECONNRESET from a proxy that closes is an outcome, not a crash
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
  }

  /** Connect; `parse: false` keeps raw bytes only until `startParsing` (the one-byte SSLRequest answer is not a message). */
  static connect(port: number, opts: { host?: string; parse?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: opts.host ?? '127.0.0.1' });
      socket.once('connect', () => resolve(new RawClient(socket, opts.parse ?? true)));
      socket.once('error', reject);
    });
  }

  private feed(d: Buffer): void {
    this.parser?.parse(d, (m) => {
      this.counts.set(m.name, (this.counts.get(m.name) ?? 0) + 1);
      if (this.keep) this.messages.push(m);
    });
  }

  /** Decode server messages from byte `offset` of what was received (and from then on). */
  startParsing(offset: number): void {
    this.parser = new Parser();
    this.feed(this.bytes().subarray(offset));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Every byte received so far. */
  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get byteCount(): number {
    return this.received;
  }

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Wait until `check` holds (or the socket closed); false on timeout. */
  async until(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.closed) return check();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Wait for the server to close the connection; false on timeout. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    if (this.closed) return true;
    return Promise.race([
      this.closedPromise.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
    ]);
  }

  /** ErrorResponses received so far. */
  errors(): DatabaseError[] {
    return this.messages.filter((m): m is DatabaseError => m.name === 'error');
  }

  /** Send `buf` and wait for the next ReadyForQuery; resolves to every byte received meanwhile. */
  async request(buf: Buffer, timeoutMs = 10_000): Promise<Buffer> {
    const fromByte = this.received;
    const ready = this.count('readyForQuery');
    this.write(buf);
    if (!(await this.until(() => this.count('readyForQuery') > ready, timeoutMs))) {
      throw new Error(`no ReadyForQuery within ${timeoutMs} ms${this.closed ? ' (connection closed)' : ''}`);
    }
    return Buffer.from(this.bytes().subarray(fromByte));
  }

  /** Startup through trust auth up to the first ReadyForQuery; throws on an error or timeout. */
  async startup(params: Record<string, string>, timeoutMs = 5_000): Promise<void> {
    this.write(startupMessage(params));
    const ok = await this.until(() => this.count('readyForQuery') > 0 || this.count('error') > 0, timeoutMs);
    const err = this.errors()[0];
    if (err !== undefined) throw new Error(`startup failed: ${err.code ?? '?'} ${err.message}`);
    if (!ok) throw new Error('startup: no ReadyForQuery');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Send a CancelRequest for (pid, secret) on a fresh connection, as libpq does. */
export function sendCancel(port: number, processID: number, secretKey: number, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host }, () => socket.end(serialize.cancel(processID, secretKey)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}
