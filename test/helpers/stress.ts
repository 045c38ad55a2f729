// Building blocks for the pipelined stress tests: a seeded PRNG, a tiny
// query seam both client libraries (postgres.js, pg) plug into, and the
// per-worker model of "what my acknowledged writes say the rows are".

/** Deterministic PRNG (mulberry32): same seed, same sequence of choices. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SEED = Number(process.env['SQLCACHED_SEED'] ?? 0x5eed_2024);

export type RowObj = Record<string, unknown>;

/** One parameterised statement ($1, $2, …) through whatever connection/transaction is bound. */
export type Q = (text: string, params: unknown[]) => Promise<{ rows: RowObj[]; count: number | null }>;

/** Thrown inside a transaction body to make the client roll it back. */
export class Rollback extends Error {
  constructor() {
    super('deliberate rollback');
  }
}

/**
 * A client library seen through the seam: `q` outside transactions (the
 * library may pipeline concurrent calls), `tx` runs `body` inside
 * BEGIN … COMMIT (ROLLBACK if the body throws; the error is re-thrown).
 */
export interface Db {
  label: string;
  q: Q;
  tx(body: (q: Q) => Promise<void>): Promise<void>;
}

/** Plain, comparable copy of driver rows (drops driver-specific prototypes/extras). */
export function plain(rows: RowObj[]): RowObj[] {
  return rows.map((r) => ({ ...r }));
}

/** A bounded ring of the last operations a worker did, for failure reports. */
export class OpLog {
  private readonly buf: string[] = [];
  constructor(private readonly keep = 24) {}
  add(line: string): void {
    this.buf.push(line);
    if (this.buf.length > this.keep) this.buf.shift();
  }
  tail(): string {
    return this.buf.map((l) => `      ${l}`).join('\n');
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A one-slot in-process channel: `send` hands a value to the one `recv` waiting (or the next). */
export class Channel<T> {
  private value: { v: T } | null = null;
  private waiter: ((v: T) => void) | null = null;
  send(v: T): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w(v);
    } else {
      if (this.value !== null) throw new Error('Channel: send without a pending recv twice');
      this.value = { v };
    }
  }
  recv(): Promise<T> {
    if (this.value !== null) {
      const { v } = this.value;
      this.value = null;
      return Promise.resolve(v);
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}
