// Deterministic byte-level fuzzing of PostgreSQL client streams: a seeded
// PRNG, mutations of a recorded corpus (a stream is a list of messages, so
// message-level mutations are possible), a raw socket run that sends the
// mutated bytes in random chunks, and a tolerant scan of what came back.

import net from 'node:net';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** A recorded client stream: messages in order; the first may be untyped (startup, cancel, SSLRequest). */
export interface CorpusStream {
  name: string;
  messages: Buffer[];
  /** How many leading messages are untyped (length at offset 0, no type byte). */
  untyped: number;
}

export interface Mutant {
  corpus: string;
  ops: string[];
  /** The exact bytes to send. */
  bytes: Buffer;
  /** Chunk sizes to send them in, and the delay (ms) before each chunk. */
  chunks: { size: number; delayMs: number }[];
  /** How the client leaves after sending: FIN or RST. */
  close: 'end' | 'destroy';
  /**
   * When > 0: the first `handshake` bytes (an intact startup) are sent first and
   * the rest only after ReadyForQuery (or a close, or 500 ms), as real clients do.
   */
  handshake: number;
}

const LENGTHS = [0, 3, 4, 0x7fffffff, -1, -0x80000000, 5, 8, 10_001, 1 << 24] as const;

/** Mutate one corpus stream into a mutant, driven only by `rng`. */
export function mutate(stream: CorpusStream, rng: Rng): Mutant {
  const msgs = stream.messages.map((m) => Buffer.from(m));
  let untyped = stream.untyped;
  const ops: string[] = [];
  let tail: Buffer | null = null; // byte-level results after flattening
  const nOps = 1 + rng.int(3);
  for (let k = 0; k < nOps; k++) {
    const op = rng.int(10);
    // Later messages are where the deep code is: bias picks away from the startup packet.
    const idx = msgs.length > 1 && rng.int(4) !== 0 ? 1 + rng.int(msgs.length - 1) : rng.int(msgs.length);
    const m = msgs[idx]!;
    const isUntyped = idx < untyped;
    switch (op) {
      case 0: {
        const flips = 1 + rng.int(8);
        for (let i = 0; i < flips && m.length > 0; i++) {
          const at = rng.int(m.length);
          m[at] = m[at]! ^ (1 << rng.int(8));
        }
        ops.push(`bitflip(msg ${idx}, ${flips})`);
        break;
      }
      case 1: {
        const dup = rng.int(3) + 1;
        msgs.splice(idx, 0, ...Array.from({ length: dup }, () => Buffer.from(m)));
        if (isUntyped) untyped += dup;
        ops.push(`duplicate(msg ${idx} x${dup})`);
        break;
      }
      case 2: {
        const j = rng.int(msgs.length);
        [msgs[idx], msgs[j]] = [msgs[j]!, msgs[idx]!];
        ops.push(`swap(msg ${idx}, msg ${j})`);
        break;
      }
      case 3: {
        if (msgs.length > 1) {
          msgs.splice(idx, 1);
          if (isUntyped) untyped -= 1;
          ops.push(`drop(msg ${idx})`);
        }
        break;
      }
      case 4:
      case 5: {
        const at = isUntyped ? 0 : 1;
        if (m.length >= at + 4) {
          const real = m.length - at;
          const len = rng.int(3) === 0 ? real + rng.pick([-2, -1, 1, 2, 100]) : rng.pick(LENGTHS);
          m.writeInt32BE(len | 0, at);
          ops.push(`length(msg ${idx}, ${len | 0})`);
        }
        break;
      }
      case 6: {
        if (!isUntyped && m.length > 0) {
          const t = rng.int(3) === 0 ? rng.pick([0x00, 0xff, 0x45, 0x70, 0x66, 0x64, 0x63, 0x58, 0x48, 0x46]) : rng.int(256);
          m[0] = t;
          ops.push(`type(msg ${idx}, 0x${t.toString(16)})`);
        }
        break;
      }
      case 7: {
        const body = rng.bytes(rng.int(40));
        const t = rng.pick([0x51, 0x50, 0x42, 0x44, 0x45, 0x53, 0x43, 0x48, 0x64, 0x63, 0x66, 0x46, 0x70, rng.int(256)]);
        const ins = Buffer.alloc(5 + body.length);
        ins[0] = t;
        ins.writeInt32BE(4 + body.length, 1);
        body.copy(ins, 5);
        const at = untyped + rng.int(msgs.length - untyped + 1);
        msgs.splice(at, 0, ins);
        ops.push(`insert(at ${at}, type 0x${t.toString(16)}, ${body.length} bytes)`);
        break;
      }
      case 8: {
        tail = rng.bytes(1 + rng.int(64));
        ops.push(`append(${tail.length} random bytes)`);
        break;
      }
      default: {
        ops.push('truncate');
        break;
      }
    }
  }
  let bytes = Buffer.concat(tail === null ? msgs : [...msgs, tail]);
  if (ops.includes('truncate') && bytes.length > 1) {
    const cut = rng.int(bytes.length);
    bytes = bytes.subarray(0, cut);
    ops[ops.indexOf('truncate')] = `truncate(at ${cut})`;
  }
  // Split into chunks: usually few, sometimes byte by byte, small delays.
  const chunks: Mutant['chunks'] = [];
  const style = rng.int(4);
  let left = bytes.length;
  while (left > 0) {
    const size = style === 0 ? left : style === 1 ? 1 + rng.int(Math.min(left, 3)) : 1 + rng.int(Math.min(left, 64));
    chunks.push({ size: Math.min(size, left), delayMs: style === 1 ? 0 : rng.int(3) === 0 ? rng.int(3) : 0 });
    left -= size;
    if (chunks.length > 40) {
      if (left > 0) chunks.push({ size: left, delayMs: 0 });
      break;
    }
  }
  return { corpus: stream.name, ops, bytes, chunks, close: rng.int(2) === 0 ? 'end' : 'destroy', handshake: 0 };
}

/** Mutate only what follows the startup: the session is authenticated first, so the mutations reach the session code. */
export function mutateAfterHandshake(stream: CorpusStream, rng: Rng): Mutant {
  const prefix = Buffer.concat(stream.messages.slice(0, stream.untyped));
  const body: CorpusStream = { name: stream.name, messages: stream.messages.slice(stream.untyped), untyped: 0 };
  const m = mutate(body, rng);
  return {
    ...m,
    ops: ['handshake first', ...m.ops],
    bytes: Buffer.concat([prefix, m.bytes]),
    chunks: [{ size: prefix.length, delayMs: 0 }, ...m.chunks],
    handshake: prefix.length,
  };
}

/** True once `buf` holds a complete ReadyForQuery frame (scanning frames from `from`). */
function hasReadyForQuery(buf: Buffer, from: number): boolean {
  let off = from;
  while (buf.length - off >= 5) {
    const len = buf.readInt32BE(off + 1);
    if (len < 4) return false;
    if (buf[off] === 0x5a && off + 1 + len <= buf.length) return true;
    off += 1 + len;
  }
  return false;
}

export interface RunOutcome {
  /** Every byte the proxy sent. */
  received: Buffer;
  /** The proxy closed (or reset) the connection before we did. */
  closedByProxy: boolean;
  /** The socket failed to connect or errored (ECONNRESET and the like): not a crash in itself. */
  socketError: string | null;
}

/** Send a mutant over a fresh socket, read until the proxy closes or `idleMs` passes with nothing new, then close. */
export function runMutant(port: number, m: Mutant, idleMs: number, maxMs: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let socketError: string | null = null;
    let closedByProxy = false;
    let done = false;
    let idle: NodeJS.Timeout | null = null;
    let sending = true;
    const socket = net.connect({ port, host: '127.0.0.1' });
    const overall = setTimeout(() => finish(), maxMs);
    const armIdle = (): void => {
      if (idle !== null) clearTimeout(idle);
      if (!sending) idle = setTimeout(() => finish(), idleMs);
    };
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(overall);
      if (idle !== null) clearTimeout(idle);
      if (!socket.destroyed) {
        if (m.close === 'end') {
          socket.end();
          setTimeout(() => socket.destroy(), 50).unref();
        } else socket.destroy();
      }
      resolve({ received: Buffer.concat(chunks), closedByProxy, socketError });
    };
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      armIdle();
    });
    socket.on('error', (e) => {
      socketError = e.message;
    });
    socket.on('close', () => {
      if (!done) closedByProxy = true;
      finish();
    });
    socket.on('end', () => {
      if (!done) closedByProxy = true;
    });
    let ready: (() => void) | null = null;
    const checkReady = (): void => {
      if (ready === null) return;
      const all = Buffer.concat(chunks);
      const skip = all.length > 0 && (all[0] === 0x4e || all[0] === 0x53) ? 1 : 0; // an SSLRequest's answer
      if (hasReadyForQuery(all, skip)) ready();
    };
    socket.on('data', checkReady);
    socket.on('close', () => ready?.());
    socket.once('connect', async () => {
      let off = 0;
      for (const c of m.chunks) {
        if (m.handshake > 0 && off === m.handshake) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 500);
            ready = () => {
              clearTimeout(t);
              ready = null;
              resolve();
            };
            checkReady(); // it may be here already
          });
        }
        if (socket.destroyed || done) break;
        if (c.delayMs > 0) await new Promise((r) => setTimeout(r, c.delayMs));
        if (socket.destroyed || done) break;
        socket.write(m.bytes.subarray(off, off + c.size));
        off += c.size;
      }
      sending = false;
      armIdle();
    });
  });
}

export interface ScannedError {
  fields: Record<string, string>;
}

/**
 * The ErrorResponses in a server byte stream, tolerant of anything: a
 * leading one-byte SSL/GSS answer is skipped; scanning stops at the first
 * frame that does not parse (reported in `garbage`).
 */
export function scanReplies(buf: Buffer, skipNegotiationByte: boolean): { types: string[]; errors: ScannedError[]; garbage: string | null } {
  let off = 0;
  // One 'N' per SSLRequest / GSSENCRequest (a mutant may send several); a NoticeResponse 'N' has a sane length.
  while (skipNegotiationByte && off < buf.length && buf[off] === 0x4e && !(buf.length - off >= 5 && buf.readInt32BE(off + 1) >= 4 && buf.readInt32BE(off + 1) < 1 << 20)) off += 1;
  const types: string[] = [];
  const errors: ScannedError[] = [];
  while (off < buf.length) {
    if (buf.length - off < 5) return { types, errors, garbage: `${buf.length - off} trailing bytes at ${off}` };
    const type = String.fromCharCode(buf[off]!);
    const len = buf.readInt32BE(off + 1);
    if (len < 4 || !/[A-Za-z0-9]/.test(type)) return { types, errors, garbage: `bad frame at ${off}: type 0x${buf[off]!.toString(16)} length ${len}` };
    const end = off + 1 + len;
    if (end > buf.length) return { types, errors, garbage: `truncated ${type} frame at ${off}: length ${len}, ${buf.length - off - 1} there` };
    types.push(type);
    if (type === 'E' || type === 'N') {
      const fields: Record<string, string> = {};
      let p = off + 5;
      while (p < end && buf[p] !== 0) {
        const code = String.fromCharCode(buf[p]!);
        const z = buf.indexOf(0, p + 1);
        if (z < 0 || z >= end) break;
        fields[code] = buf.toString('utf8', p + 1, z);
        p = z + 1;
      }
      if (type === 'E') errors.push({ fields });
    }
    off = end;
  }
  return { types, errors, garbage: null };
}

/** A valid SQLSTATE: five characters of digits and upper-case letters. */
export const isSqlState = (s: string | undefined): boolean => s !== undefined && /^[0-9A-Z]{5}$/.test(s);

export const hex = (b: Buffer): string => b.toString('hex');
