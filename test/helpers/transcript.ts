// Differential protocol scripts for the differential tests: the same client
// messages sent over a raw socket to the proxy and to the database, the
// replies normalised (backend pid and other per-connection values dropped)
// so the two transcripts can be compared with toEqual.

import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { serialize } from 'pg-protocol';
import { PG_PORT, uniqueName } from './db.js';
import { RawClient } from './wire.js';

export type Msg = Record<string, unknown> & { name: string };

/** The parts of a server message a client can observe, minus per-connection noise. */
export function normalise(m: BackendMessage): Msg {
  const any = m as unknown as Record<string, unknown>;
  switch (m.name) {
    case 'error':
    case 'notice':
      return {
        name: m.name,
        severity: any['severity'],
        code: any['code'],
        message: any['message'],
        detail: any['detail'],
        hint: any['hint'],
        position: any['position'],
      };
    case 'dataRow':
      return { name: m.name, fields: any['fields'] };
    case 'rowDescription':
      return {
        name: m.name,
        fields: (any['fields'] as Array<Record<string, unknown>>).map((f) => ({
          name: f['name'],
          tableID: f['tableID'],
          columnID: f['columnID'],
          dataTypeID: f['dataTypeID'],
          format: f['format'],
        })),
      };
    case 'parameterDescription':
      return { name: m.name, dataTypeIDs: any['dataTypeIDs'] };
    case 'commandComplete':
      return { name: m.name, text: any['text'] };
    case 'readyForQuery':
      return { name: m.name, status: any['status'] };
    case 'parameterStatus':
      return { name: m.name, parameterName: any['parameterName'], parameterValue: any['parameterValue'] };
    case 'notification':
      return { name: m.name, channel: any['channel'], payload: any['payload'] };
    case 'copyInResponse':
    case 'copyOutResponse':
      return { name: m.name, binary: any['binary'], columnTypes: any['columnTypes'] };
    case 'copyData':
      return { name: m.name, length: (any['chunk'] as Buffer).length };
    default:
      return { name: m.name };
  }
}

export const names = (msgs: Msg[]): string[] => msgs.map((m) => m.name);

export class Wire {
  private constructor(
    readonly raw: RawClient,
    readonly app: string,
  ) {}

  static async open(port: number, app = uniqueName('rv_wire'), extra: Record<string, string> = {}): Promise<Wire> {
    const raw = await RawClient.connect(port);
    await raw.startup({ user: 'postgres', database: 'test', application_name: app, ...extra });
    return new Wire(raw, app);
  }

  /** The BackendKeyData the session got at startup. */
  get key(): { processID: number; secretKey: number } {
    const k = this.raw.messages.find((m) => m.name === 'backendKeyData') as unknown as { processID: number; secretKey: number };
    return { processID: k.processID, secretKey: k.secretKey };
  }

  /**
   * Send `buf`, then wait until `readies` more ReadyForQuery arrived (or
   * `until` holds on the new messages); the messages received meanwhile,
   * normalised, with a final `{name: 'TIMEOUT'}` if the wait ran out and
   * `{name: 'CLOSED'}` if the connection closed.
   */
  async send(buf: Buffer | Buffer[], readies = 1, opts: { timeoutMs?: number; until?: (msgs: Msg[]) => boolean } = {}): Promise<Msg[]> {
    const from = this.raw.messages.length;
    const ready = this.raw.count('readyForQuery');
    this.raw.write(Array.isArray(buf) ? Buffer.concat(buf) : buf);
    const done = opts.until
      ? () => opts.until!(this.raw.messages.slice(from).map(normalise))
      : () => this.raw.count('readyForQuery') >= ready + readies;
    const ok = await this.raw.until(done, opts.timeoutMs ?? 5_000);
    // Let anything that would follow (a stray reply) arrive too.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const out = this.raw.messages.slice(from).map(normalise).filter((m) => m.name !== 'parameterStatus');
    if (!ok && !this.raw.closed) out.push({ name: 'TIMEOUT' });
    if (this.raw.closed) out.push({ name: 'CLOSED' });
    return out;
  }

  query(sql: string): Promise<Msg[]> {
    return this.send(serialize.query(sql));
  }

  close(): void {
    this.raw.destroy();
  }
}

/** One step of a script: the bytes to send and how many ReadyForQuery end it. */
export interface Step {
  send: Buffer | Buffer[];
  readies?: number;
  timeoutMs?: number;
  /** Wait for this instead of ReadyForQuery (a Flush's replies). */
  until?: (msgs: Msg[]) => boolean;
}

/** Run the same script on a fresh session to `port`; the transcript of each step. */
export async function transcript(port: number, steps: Step[], before: string[] = []): Promise<Msg[][]> {
  const w = await Wire.open(port);
  try {
    for (const sql of before) await w.query(sql);
    const out: Msg[][] = [];
    for (const s of steps) {
      const opts: { timeoutMs?: number; until?: (msgs: Msg[]) => boolean } = {};
      if (s.timeoutMs !== undefined) opts.timeoutMs = s.timeoutMs;
      if (s.until !== undefined) opts.until = s.until;
      out.push(await w.send(s.send, s.readies ?? 1, opts));
    }
    return out;
  } finally {
    w.close();
  }
}

/** The script's transcript through the proxy and directly, in that order. */
export async function differential(proxyPort: number, steps: Step[], before: string[] = []): Promise<{ proxy: Msg[][]; db: Msg[][] }> {
  const proxy = await transcript(proxyPort, steps, before);
  const db = await transcript(PG_PORT, steps, before);
  return { proxy, db };
}

// Short builders over pg-protocol's serializer.
export const P = (text: string, name = '', types: number[] = []): Buffer => serialize.parse({ name, text, types });
export const B = (statement = '', values: unknown[] = [], portal = ''): Buffer => serialize.bind({ statement, values, portal });
export const E = (portal = '', rows = 0): Buffer => serialize.execute({ portal, rows });
export const DS = (name = ''): Buffer => serialize.describe({ type: 'S', name });
export const DP = (name = ''): Buffer => serialize.describe({ type: 'P', name });
export const CS = (name = ''): Buffer => serialize.close({ type: 'S', name });
export const CP = (name = ''): Buffer => serialize.close({ type: 'P', name });
export const H = (): Buffer => serialize.flush();
export const S = (): Buffer => serialize.sync();
export const Q = (sql: string): Buffer => serialize.query(sql);

/**
 * A reader that keeps nothing: it frames server messages as they stream by
 * and counts them, so a 100 MB result costs this side no memory. Pausing
 * its socket makes it a slow reader.
 */
export class CountingReader {
  readonly counts = new Map<string, number>();
  bytes = 0;
  private header = Buffer.alloc(5);
  private headerFill = 0;
  private remaining = 0;
  private waiters: Array<() => void> = [];
  closed = false;

  constructor(readonly socket: import('node:net').Socket) {
    socket.on('data', (d: Buffer) => this.feed(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  count(type: string): number {
    return this.counts.get(type) ?? 0;
  }

  private feed(d: Buffer): void {
    this.bytes += d.length;
    let i = 0;
    while (i < d.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, d.length - i);
        this.remaining -= take;
        i += take;
        continue;
      }
      this.header[this.headerFill++] = d[i++]!;
      if (this.headerFill === 5) {
        const type = String.fromCharCode(this.header[0]!);
        this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
        this.remaining = this.header.readInt32BE(1) - 4;
        this.headerFill = 0;
      }
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.closed || Date.now() >= deadline) return check();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(100, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }
}

/**
 * Send `buf` on a fresh proxy session until the proxy counts a hit for it
 * (at most `tries` times): the entry is in the cache afterwards.
 */
export async function warmWire(
  port: number,
  stats: () => Promise<{ hits: number }>,
  buf: Buffer | Buffer[],
  tries = 4,
): Promise<Msg[]> {
  const w = await Wire.open(port);
  try {
    for (let i = 0; i < tries; i += 1) {
      const before = (await stats()).hits;
      const reply = await w.send(buf);
      if ((await stats()).hits > before) return reply;
    }
    throw new Error(`warmWire: never answered from cache after ${tries} tries`);
  } finally {
    w.close();
  }
}
