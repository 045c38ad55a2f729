// Collects the byte ranges of one response as they are relayed, for
// QueryCache.fill. Ranges are references into the received chunks (no copy
// per message); one concat happens only when the response is complete and
// small enough. Past max_entry_size it lets go of everything it held: the
// rest of a large result streams through uncached.

import type { BypassReason } from '../core/types.js';

export class ResultCapture {
  private pieces: Buffer[] = [];
  private size = 0;
  /** Why this capture will not be stored, once it is known. */
  refused: BypassReason | null = null;

  constructor(private readonly maxBytes: number) {}

  add(buf: Buffer, start: number, end: number): void {
    this.size += end - start; // counted even when refused: /stats reports bytes received
    if (this.refused !== null) return;
    if (this.size > this.maxBytes) {
      this.refuse('too-large');
      return;
    }
    this.pieces.push(buf.subarray(start, end));
  }

  refuse(reason: BypassReason): void {
    this.refused ??= reason;
    this.pieces = [];
  }

  get bytes(): number {
    return this.size;
  }

  /** The whole response, or null if it was refused. */
  take(): Buffer | null {
    if (this.refused !== null) return null;
    const out = this.pieces.length === 1 ? Buffer.from(this.pieces[0]!) : Buffer.concat(this.pieces, this.size);
    this.pieces = [];
    return out;
  }
}
