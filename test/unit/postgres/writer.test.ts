// What the proxy emits: server messages read back by pg-protocol's Parser (what
// `pg` itself would see), client messages byte-equal to pg-protocol's serializer
// and round-tripped through our own decoders.
import { Buffer } from 'node:buffer';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { decodeCommandComplete, decodeErrorResponse, decodeReadyForQuery } from '../../../src/postgres/backend-codec.js';
import {
  decodeBind,
  decodeDescribe,
  decodeExecute,
  decodeParse,
  decodeQuery,
  decodeStartupPacket,
} from '../../../src/postgres/frontend-codec.js';
import * as sqlstate from '../../../src/postgres/sqlstate.js';
import * as w from '../../../src/postgres/writer.js';

/** Parses server bytes exactly as the `pg` client does. */
function parsed(bytes: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  return out;
}

const one = (bytes: Buffer): Record<string, unknown> => {
  const msgs = parsed(bytes);
  expect(msgs).toHaveLength(1);
  return msgs[0] as unknown as Record<string, unknown>;
};

const whole = (b: Buffer): [Buffer, number, number] => [b, 0, b.length];

describe('server messages the proxy emits parse as pg reads them', () => {
  it('the empty completions parse as their own message', () => {
    expect(one(w.parseComplete()).name).toBe('parseComplete');
    expect(one(w.bindComplete()).name).toBe('bindComplete');
    expect(one(w.closeComplete()).name).toBe('closeComplete');
    expect(one(w.noData()).name).toBe('noData');
    expect(one(w.emptyQueryResponse()).name).toBe('emptyQuery');
    expect(one(w.portalSuspended()).name).toBe('portalSuspended');
  });

  it('ReadyForQuery carries each transaction status', () => {
    for (const s of ['I', 'T', 'E'] as const) {
      expect(one(w.readyForQuery(s))).toMatchObject({ name: 'readyForQuery', status: s });
      expect(decodeReadyForQuery(...whole(w.readyForQuery(s)))).toBe(s);
    }
  });

  it('ErrorResponse carries severity, SQLSTATE, message, detail and hint to the client', () => {
    const bytes = w.errorResponse({
      severity: 'ERROR', code: '0A000', message: 'COPY TO STDOUT is not cached', detail: 'a detail', hint: 'a hint',
    });
    expect(one(bytes)).toMatchObject({
      name: 'error', severity: 'ERROR', code: '0A000', message: 'COPY TO STDOUT is not cached', detail: 'a detail', hint: 'a hint',
    });
    const e = decodeErrorResponse(...whole(bytes));
    expect(Object.fromEntries(e.fields)).toEqual({
      S: 'ERROR', V: 'ERROR', C: '0A000', M: 'COPY TO STDOUT is not cached', D: 'a detail', H: 'a hint',
    });
  });

  it('ErrorResponse omits detail and hint when not given', () => {
    const e = decodeErrorResponse(...whole(w.errorResponse({ severity: 'FATAL', code: '57P01', message: 'bye' })));
    expect([...e.fields.keys()]).toEqual(['S', 'V', 'C', 'M']);
  });

  it('ErrorResponse never throws on a NUL in its text: the error path must not fail', () => {
    const bytes = w.errorResponse({ severity: 'ERROR', code: 'XX000', message: 'bad\0byte', detail: '\0' });
    expect(one(bytes)).toMatchObject({ message: 'badbyte', detail: '' });
  });

  it('sqlstate.errorResponse is FATAL by default and ERROR on request', () => {
    expect(one(sqlstate.errorResponse(sqlstate.TOO_MANY_CONNECTIONS, 'too many clients'))).toMatchObject({
      severity: 'FATAL', code: '53300', message: 'too many clients',
    });
    expect(one(sqlstate.errorResponse(sqlstate.QUERY_CANCELED, 'canceled', 'ERROR'))).toMatchObject({
      severity: 'ERROR', code: '57014',
    });
  });

  it('CommandComplete carries the tag, including non-ASCII and long ones', () => {
    expect(one(w.commandComplete('SELECT 42'))).toMatchObject({ name: 'commandComplete', text: 'SELECT 42' });
    const long = 'SELECT ' + '9'.repeat(3000) + ' é';
    expect(decodeCommandComplete(...whole(w.commandComplete(long)))).toBe(long);
  });

  it('a stream of emitted messages parses in order', () => {
    const stream = Buffer.concat([w.parseComplete(), w.bindComplete(), w.commandComplete('SELECT 1'), w.readyForQuery('I')]);
    expect(parsed(stream).map((m) => m.name)).toEqual(['parseComplete', 'bindComplete', 'commandComplete', 'readyForQuery']);
  });

  it('sslResponse is the single byte S or N', () => {
    expect([...w.sslResponse('S')]).toEqual([0x53]);
    expect([...w.sslResponse('N')]).toEqual([0x4e]);
  });
});

describe('client messages the proxy sends upstream', () => {
  it('Query is byte-equal to pg-protocol and decodes back', () => {
    const sql = "SELECT relname FROM pg_class WHERE relname = 'é'";
    expect(w.encodeQuery(sql)).toEqual(serialize.query(sql));
    expect(decodeQuery(...whole(w.encodeQuery(sql))).sql).toBe(sql);
  });

  it('Parse is byte-equal to pg-protocol and decodes back, OIDs unsigned', () => {
    expect(w.encodeParse('s', 'SELECT $1', [23])).toEqual(serialize.parse({ name: 's', text: 'SELECT $1', types: [23] }));
    expect(decodeParse(...whole(w.encodeParse('', 'SELECT $1, $2', [25, 4294967295])))).toEqual({
      type: 'Parse', name: '', sql: 'SELECT $1, $2', paramTypes: [25, 4294967295],
    });
  });

  it('Bind round-trips text, binary and NULL parameters with their formats', () => {
    const bytes = w.encodeBind('p', 's', ['1', null, Buffer.from([0xde, 0xad])], [0, 0, 1], [1]);
    const b = decodeBind(...whole(bytes));
    expect(b).toMatchObject({ portal: 'p', statement: 's', paramFormats: [0, 0, 1], resultFormats: [1] });
    expect(b.params.map((p) => (p === null ? null : p.toString('hex')))).toEqual(['31', null, 'dead']);
  });

  it('Describe and Execute round-trip', () => {
    expect(decodeDescribe(...whole(w.encodeDescribe('P', 'cur')))).toMatchObject({ target: 'P', name: 'cur' });
    expect(w.encodeDescribe('S', 'x')).toEqual(serialize.describe({ type: 'S', name: 'x' }));
    expect(decodeExecute(...whole(w.encodeExecute('', 10)))).toMatchObject({ portal: '', maxRows: 10 });
    expect(w.encodeExecute('pp', 3)).toEqual(serialize.execute({ portal: 'pp', rows: 3 }));
  });

  it('Sync, Flush and Terminate are byte-equal to pg-protocol', () => {
    expect(w.encodeSync()).toEqual(serialize.sync());
    expect(w.encodeFlush()).toEqual(serialize.flush());
    expect(w.encodeTerminate()).toEqual(serialize.end());
  });

  it('CancelRequest is byte-equal to pg-protocol and decodes back, also with a long key', () => {
    expect(w.encodeCancelRequest(4242, -17)).toEqual(serialize.cancel(4242, -17));
    expect(w.encodeCancelRequest(1, 0xfffffffe)).toEqual(serialize.cancel(1, -2)); // unsigned accepted
    const key = Buffer.alloc(32, 3);
    expect(decodeStartupPacket(w.encodeCancelRequest(5, key))).toMatchObject({ type: 'cancel-request', processId: 5, secretKeyBytes: key });
  });

  it('a NUL inside SQL is refused, and the next message is unaffected', () => {
    expect(() => w.encodeQuery('SELECT 1\0; DROP TABLE x')).toThrow(/cannot contain a NUL/);
    expect(w.encodeQuery('SELECT 2')).toEqual(serialize.query('SELECT 2'));
  });

  it('the writer grows for messages larger than its buffer', () => {
    const sql = 'SELECT ' + "'ü'".repeat(20000);
    // Buffer.equals: vitest's deep equality walks 80 KB byte by byte.
    expect(w.encodeQuery(sql).equals(serialize.query(sql))).toBe(true);
  });

  it('an emitted buffer is never overwritten by later encodes', () => {
    const first = w.encodeQuery('SELECT 1');
    const kept = Buffer.from(first);
    for (let i = 0; i < 2000; i++) w.encodeQuery(`SELECT ${i} -- filling slabs`);
    expect(first.equals(kept)).toBe(true);
  });

  it('a message begun near the end of a slab survives the move to a new one', () => {
    const mw = new w.MessageWriter(16);
    expect(mw.begin(0x53).end().flush()).toEqual(serialize.sync());
    mw.begin(0x50).cstring('').cstring('SELECT $1 FROM a_table_with_a_long_name').int16(1).int32(23).end();
    expect(mw.flush()).toEqual(serialize.parse({ name: '', text: 'SELECT $1 FROM a_table_with_a_long_name', types: [23] }));
    expect(mw.beginUntyped().int32(80877102).int32(9).int32(-9).end().flush()).toEqual(serialize.cancel(9, -9));
  });

  it('a MessageWriter can batch several messages into one buffer', () => {
    const mw = new w.MessageWriter(8);
    mw.begin(0x51).cstring('SELECT 1').end();
    mw.begin(0x53).end();
    expect(mw.flush()).toEqual(Buffer.concat([serialize.query('SELECT 1'), serialize.sync()]));
    expect(mw.flush()).toHaveLength(0);
  });
});
