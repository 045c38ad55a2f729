// A raw MySQL client over net.Socket for tests that must send what no client
// library would (garbage, wrong lengths, truncated and oversize packets).
// It pretends to be the client side: frames server packets (3-byte length +
// sequence id, https://mariadb.com/kb/en/0-packet/) and reads ERR packets
// (https://mariadb.com/kb/en/err_packet/); rows are never decoded.

import net from 'node:net';

/** Capability flags a minimal protocol-41 client sends (https://mariadb.com/kb/en/connection/#capabilities). */
export const CLIENT = {
  LONG_PASSWORD: 0x1,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
} as const;

export const COM_QUERY = 0x03;

/** One packet: a 3-byte little-endian length (or `lengthOverride`), the sequence id, the payload. */
export function packet(seq: number, payload: Buffer, lengthOverride?: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(lengthOverride ?? payload.length, 0, 3);
  header[3] = seq & 0xff;
  return Buffer.concat([header, payload]);
}

/**
 * HandshakeResponse41 for a user with an empty password (auth response of
 * length 0), optionally with a database, always naming mysql_native_password.
 */
export function handshakeResponse(user: string, database: string | null, seq = 1): Buffer {
  let caps = CLIENT.LONG_PASSWORD | CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION | CLIENT.MULTI_RESULTS | CLIENT.PLUGIN_AUTH;
  if (database !== null) caps |= CLIENT.CONNECT_WITH_DB;
  const fixed = Buffer.alloc(32); // capabilities, max packet, charset, 23 filler bytes (MariaDB: extended caps in the last 4)
  fixed.writeUInt32LE(caps >>> 0, 0);
  fixed.writeUInt32LE(16 * 1024 * 1024, 4);
  fixed[8] = 45; // utf8mb4_general_ci
  const parts = [fixed, Buffer.from(`${user}\0`), Buffer.from([0])];
  if (database !== null) parts.push(Buffer.from(`${database}\0`));
  parts.push(Buffer.from('mysql_native_password\0'));
  return packet(seq, Buffer.concat(parts));
}

/** COM_QUERY with sequence id 0 (a new command). */
export function comQuery(sql: string, lengthOverride?: number): Buffer {
  return packet(0, Buffer.concat([Buffer.from([COM_QUERY]), Buffer.from(sql, 'utf8')]), lengthOverride);
}

export interface ServerPacket {
  seq: number;
  payload: Buffer;
}

export interface ErrPacket {
  code: number;
  sqlState: string | null;
  message: string;
}

/** Decode an ERR packet's payload (0xff, code, optional '#' + 5-byte SQLSTATE, message); null if not one. */
export function decodeErr(payload: Buffer): ErrPacket | null {
  if (payload.length < 3 || payload[0] !== 0xff) return null;
  const code = payload.readUInt16LE(1);
  if (payload[3] === 0x23 /* # */ && payload.length >= 9) {
    return { code, sqlState: payload.subarray(4, 9).toString('latin1'), message: payload.subarray(9).toString('utf8') };
  }
  return { code, sqlState: null, message: payload.subarray(3).toString('utf8') };
}

export class RawMysql {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** Server packets framed so far, in order. */
  readonly packets: ServerPacket[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      while (this.buffered.length >= 4) {
        const len = this.buffered.readUIntLE(0, 3);
        if (this.buffered.length < 4 + len) break;
        this.packets.push({ seq: this.buffered[3]!, payload: Buffer.from(this.buffered.subarray(4, 4 + len)) });
        this.buffered = this.buffered.subarray(4 + len);
      }
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

  static connect(port: number, host = '127.0.0.1'): Promise<RawMysql> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('connect', () => resolve(new RawMysql(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
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
    return Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs))]);
  }

  /** ERR packets received so far. */
  errors(): ErrPacket[] {
    return this.packets.map((p) => decodeErr(p.payload)).filter((e): e is ErrPacket => e !== null);
  }

  /** The server's first packet (Handshake v10, or an ERR); throws on a timeout. */
  async greeting(timeoutMs = 5_000): Promise<ServerPacket> {
    if (!(await this.until(() => this.packets.length > 0, timeoutMs))) throw new Error('no greeting from the server');
    return this.packets[0]!;
  }

  /** Greeting, then a HandshakeResponse for a password-less user, up to the OK; throws on ERR or a timeout. */
  async login(user: string, database: string | null, timeoutMs = 5_000): Promise<void> {
    const g = await this.greeting(timeoutMs);
    if (g.payload[0] !== 0x0a) throw new Error(`greeting is not a Handshake v10: ${JSON.stringify(decodeErr(g.payload))}`);
    const seen = this.packets.length;
    this.write(handshakeResponse(user, database, g.seq + 1));
    if (!(await this.until(() => this.packets.length > seen, timeoutMs))) throw new Error('login: no answer');
    const answer = this.packets[seen]!;
    if (answer.payload[0] !== 0x00) throw new Error(`login failed: ${JSON.stringify(decodeErr(answer.payload) ?? answer.payload.subarray(0, 16))}`);
  }

  /** Send a COM_QUERY and wait for `n` more packets (or an ERR, or a close); returns what came. */
  async query(sql: string, timeoutMs = 5_000): Promise<ServerPacket[]> {
    const from = this.packets.length;
    this.write(comQuery(sql));
    // Enough for a one-column one-row text result: count, column, EOF, row, EOF — or a single OK/ERR.
    await this.until(() => {
      const got = this.packets.slice(from);
      const first = got[0]?.payload[0];
      if (first === 0x00 || first === 0xff) return true;
      return got.filter((p) => p.payload[0] === 0xfe && p.payload.length < 9).length >= 2;
    }, timeoutMs);
    return this.packets.slice(from);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
