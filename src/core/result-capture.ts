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

  /**
   * The whole response, or null if it was refused. Copied into an
   * ArrayBuffer of its own: Buffer.from and Buffer.concat cut anything under
   * 4 KiB from Node's shared 8 KiB pool, and a cached slice pins its whole
   * slab for as long as the entry lives, more than the store weighs it at.
   */
  take(): Buffer | null {
    if (this.refused !== null) return null;
    const out = Buffer.allocUnsafeSlow(this.size);
    let at = 0;
    for (const piece of this.pieces) at += piece.copy(out, at);
    this.pieces = [];
    return out;
  }
}
