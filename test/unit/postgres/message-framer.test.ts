// MessageFramer: the same frames however the stream is chunked, zero-copy inside
// a chunk, and a ProtocolError for lengths that cannot be right.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { MessageFramer, ProtocolError, isContiguous, type Frame } from '../../../src/postgres/frontend-codec.js';
import { clientStream, server, serverStream } from '../../fixtures/pg-messages.js';

const MAX = 1 << 20;

/** Drains, then pushes the chunks in order, draining after each; returns every frame. */
function frameAll(chunks: Buffer[], framer = new MessageFramer({ maxMessageLength: MAX })): Frame[] {
  const frames: Frame[] = [];
  const drain = (): void => {
    for (let f = framer.next(); f !== null; f = framer.next()) frames.push(f);
  };
  drain();
  for (const chunk of chunks) {
    framer.push(chunk);
    drain();
  }
  return frames;
}

/** What a frame means: its type and its exact bytes. */
const bytesOf = (frames: Frame[]): string[] =>
  frames.map((f) => `${String.fromCharCode(f.type)}:${f.buf.subarray(f.start, f.end).toString('hex')}`);

const expected = (messages: Buffer[]): string[] =>
  messages.map((m) => `${String.fromCharCode(m[0]!)}:${m.toString('hex')}`);

describe.each([
  ['server', serverStream()],
  ['client', clientStream()],
])('framing a %s stream', (_side, messages) => {
  const stream = Buffer.concat(messages);
  const want = expected(messages);

  it('has at least 8 mixed messages', () => {
    expect(messages.length).toBeGreaterThanOrEqual(8);
    expect(new Set(messages.map((m) => m[0])).size).toBeGreaterThanOrEqual(8);
  });

  it('yields every message from one chunk', () => {
    expect(bytesOf(frameAll([stream]))).toEqual(want);
  });

  it('yields the same frames when split at every byte offset', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const frames = frameAll([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(bytesOf(frames), `split at ${cut}`).toEqual(want);
    }
  });

  it('yields the same frames when split at every pair of offsets 7 bytes apart', () => {
    for (let cut = 0; cut + 7 <= stream.length; cut++) {
      const frames = frameAll([stream.subarray(0, cut), stream.subarray(cut, cut + 7), stream.subarray(cut + 7)]);
      expect(bytesOf(frames), `split at ${cut} and ${cut + 7}`).toEqual(want);
    }
  });

  it('yields the same frames from 1-byte pushes', () => {
    const ones = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(bytesOf(frameAll(ones))).toEqual(want);
  });

  it('yields the same frames when many chunks are pushed before draining', () => {
    const framer = new MessageFramer({ maxMessageLength: MAX });
    for (let i = 0; i < stream.length; i += 3) framer.push(stream.subarray(i, i + 3));
    expect(framer.pending()).toBe(stream.length);
    expect(bytesOf(frameAll([], framer))).toEqual(want);
    expect(framer.isEmpty()).toBe(true);
  });
});

describe('zero-copy framing', () => {
  it('frames inside one chunk are that chunk object, and consecutive ones are contiguous', () => {
    const chunk = Buffer.concat(serverStream());
    const frames = frameAll([chunk]);
    for (const f of frames) expect(f.buf).toBe(chunk);
    for (let i = 1; i < frames.length; i++) expect(isContiguous(frames[i - 1]!, frames[i]!)).toBe(true);
    expect(frames[0]!.start).toBe(0);
    expect(frames.at(-1)!.end).toBe(chunk.length);
  });

  it('only a message straddling chunks gets its own buffer; its neighbours stay in their chunks', () => {
    const [a, b, c] = [server.readyForQuery('I'), server.dataRow(['straddles']), server.commandComplete('SELECT 1')];
    const first = Buffer.concat([a, b.subarray(0, 6)]);
    const second = Buffer.concat([b.subarray(6), c]);
    const frames = frameAll([first, second]);
    expect(frames.map((f) => f.buf)).toEqual([first, expect.any(Buffer), second]);
    expect(frames[0]!.buf).toBe(first);
    expect(frames[1]!.buf).not.toBe(first);
    expect(frames[1]!.buf).not.toBe(second);
    expect(frames[2]!.buf).toBe(second);
    expect(isContiguous(frames[0]!, frames[1]!)).toBe(false);
    expect(isContiguous(frames[1]!, frames[2]!)).toBe(false);
  });

  it('pending counts bytes not yet framed, including a partial message', () => {
    const framer = new MessageFramer({ maxMessageLength: MAX });
    const row = server.dataRow(['abc']);
    framer.push(Buffer.concat([server.noData(), row.subarray(0, 4)]));
    expect(framer.next()?.type).toBe(0x6e);
    expect(framer.next()).toBeNull();
    expect(framer.pending()).toBe(4);
    expect(framer.isEmpty()).toBe(false);
    framer.push(row.subarray(4));
    expect(framer.next()?.end).toBe(row.length);
    expect(framer.isEmpty()).toBe(true);
    expect(framer.next()).toBeNull();
  });

  it('a message with no body (length 4) is a frame of 5 bytes', () => {
    const f = frameAll([server.parseComplete()]);
    expect(f).toHaveLength(1);
    expect(f[0]!.end - f[0]!.start).toBe(5);
  });
});

describe('impossible lengths are refused with a ProtocolError', () => {
  const header = (type: string, length: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = type.charCodeAt(0);
    b.writeInt32BE(length, 1);
    return b;
  };

  it('a length under 4 is refused', () => {
    const framer = new MessageFramer({ maxMessageLength: MAX });
    framer.push(header('Q', 3));
    expect(() => framer.next()).toThrow(ProtocolError);
    expect(() => framer.next()).toThrow(/invalid message length 3: must be at least 4/);
  });

  it('a negative length is refused', () => {
    const framer = new MessageFramer({ maxMessageLength: MAX });
    framer.push(header('D', -1));
    expect(() => framer.next()).toThrow(/invalid message length -1/);
  });

  it('a length over maxMessageLength is refused before the body is buffered', () => {
    const framer = new MessageFramer({ maxMessageLength: 1000 });
    framer.push(header('D', 1001));
    expect(() => framer.next()).toThrow(/message length 1001 exceeds the limit of 1000 bytes/);
  });

  it('a length exactly maxMessageLength is accepted', () => {
    const msg = Buffer.concat([header('d', 1000), Buffer.alloc(996)]);
    expect(frameAll([msg], new MessageFramer({ maxMessageLength: 1000 }))).toHaveLength(1);
  });

  it('a bad length is caught even when its header straddles chunks', () => {
    const bad = header('D', 1 << 30);
    for (let cut = 1; cut < 5; cut++) {
      const framer = new MessageFramer({ maxMessageLength: MAX });
      expect(() => frameAll([server.noData(), bad.subarray(0, cut), bad.subarray(cut)], framer), `cut ${cut}`).toThrow(
        /message length 1073741824 exceeds/,
      );
    }
  });

  it('after an error the framer keeps refusing: the stream cannot resynchronise', () => {
    const framer = new MessageFramer({ maxMessageLength: MAX });
    framer.push(header('Q', 2));
    expect(() => framer.next()).toThrow(ProtocolError);
    framer.push(server.noData());
    expect(() => framer.next()).toThrow(/invalid message length 2/);
  });
});
