// The cheap parts of the MySQL hit path keep its promises: a replayed result
// carries the session's own status flags without changing the stored entry;
// what is memoised per prepared statement, per look-up or per classification
// is what would have been computed again.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import type { Classification, CacheDecision, Analysis } from '../../../src/core/types.js';
import { MYSQL_KEYED_SETTINGS } from '../../../src/sql/mysql-settings.js';
import { Status } from '../../../src/mysql/protocol.js';
import { qualify } from '../../../src/mysql/qualify.js';
import { QueryPath } from '../../../src/mysql/query-path.js';
import type { MysqlSession } from '../../../src/mysql/session.js';
import { MysqlSessionContext } from '../../../src/mysql/session-context.js';
import { PreparedStatements, readsConnectionState } from '../../../src/mysql/statements.js';

const DECISION: CacheDecision = { action: 'cache', database: 'test', reads: ['t'], ttlMs: 0, shape: 'SELECT v FROM t', rule: null };

/** A cached text result: column count, one column definition, a row, then OK-as-EOF whose status flags sit at `at`. */
function entry(status: number): { head: Buffer; body: Buffer; at: number } {
  const packets = [Buffer.from('0100000101', 'hex'), Buffer.from('05000002aabbccddee', 'hex'), Buffer.from('0200000301', 'hex').subarray(0, 5)];
  const eof = Buffer.from([0x07, 0, 0, 4, 0xfe, 0, 0, status & 0xff, status >> 8, 0, 0]);
  const body = Buffer.concat([...packets, eof]);
  const at = body.length - 4;
  const head = Buffer.alloc(4);
  head.writeUInt32LE(at, 0);
  return { head, body, at };
}

/** The parts of a session serveHit touches: the client socket, the status, the counters. */
function fakeSession(status: number): { s: MysqlSession; writes: Buffer[]; hits: number[] } {
  const writes: Buffer[] = [];
  const hits: number[] = [];
  const s = {
    status,
    debug: false,
    meter: null,
    client: {
      write: (b: Buffer) => writes.push(b) > 0,
      cork: () => undefined,
      uncork: () => undefined,
    },
    qc: { stats: { hit: (_d: CacheDecision, us: number) => hits.push(us) } },
  };
  return { s: s as unknown as MysqlSession, writes, hits };
}

describe('serveHit', () => {
  it('sends the stored bytes as they are, in one write, when the session flags are those stored', () => {
    const e = entry(Status.Autocommit);
    const { s, writes, hits } = fakeSession(Status.Autocommit);
    new QueryPath(s).serveHit(DECISION, e.head, e.body, performance.now());
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(e.body);
    expect(hits).toHaveLength(1);
  });

  it('patches a copy with the session flags (in a transaction) in one write, leaving the entry as stored', () => {
    const e = entry(Status.Autocommit | 0x0010 /* a result bit, kept */);
    const before = Buffer.from(e.body);
    const session = Status.InTrans | Status.Autocommit | Status.InTransReadonly;
    const { s, writes } = fakeSession(session);
    new QueryPath(s).serveHit(DECISION, e.head, e.body, performance.now());
    expect(writes).toHaveLength(1);
    expect(writes[0]).not.toBe(e.body);
    expect(writes[0]!.readUInt16LE(e.at)).toBe(session | 0x0010);
    expect(writes[0]!.subarray(0, e.at)).toEqual(e.body.subarray(0, e.at));
    expect(writes[0]!.subarray(e.at + 2)).toEqual(e.body.subarray(e.at + 2));
    expect(e.body).toEqual(before);
  });

  it('clears SESSION_STATE_CHANGED and NO_BACKSLASH_ESCAPES from the entry and takes the session\'s', () => {
    const e = entry(Status.Autocommit | Status.SessionStateChanged);
    const { s, writes } = fakeSession(Status.Autocommit | Status.NoBackslashEscapes);
    new QueryPath(s).serveHit(DECISION, e.head, e.body, performance.now());
    expect(writes[0]!.readUInt16LE(e.at)).toBe(Status.Autocommit | Status.NoBackslashEscapes);
  });
});

/** An execute payload: id, no cursor, iteration count 1, bitmap, bound flag, [types], values. */
function execute(id: number, bitmap: number, types: Buffer | null, values: Buffer): Buffer {
  const head = Buffer.alloc(10);
  head[0] = 0x17;
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(1, 6);
  return Buffer.concat([head, Buffer.from([bitmap, types === null ? 0 : 1]), types ?? Buffer.alloc(0), values]);
}

describe('PreparedStatements: types bound again', () => {
  it('keeps the buffer it holds when an execute binds the same types (so "the server knows them" stays an identity check)', () => {
    const ps = new PreparedStatements();
    ps.prepared(1, 'SELECT ?', 1);
    const long = Buffer.from('0300', 'hex');
    ps.execute(execute(1, 0, long, Buffer.from('01000000', 'hex')));
    const held = ps.get(1)!.types;
    ps.get(1)!.upstreamTypes = held; // the first execute went upstream
    const again = ps.execute(execute(1, 0, Buffer.from(long), Buffer.from('02000000', 'hex')));
    expect(ps.get(1)!.types).toBe(held);
    expect(ps.get(1)!.upstreamTypes).toBe(ps.get(1)!.types);
    expect(again.params).toBe(`${long.toString('latin1')}\0\0\0${Buffer.from('02000000', 'hex').toString('latin1')}`);
  });

  it('replaces the buffer when the types differ: the key and the "teach the server" check see the new ones', () => {
    const ps = new PreparedStatements();
    ps.prepared(1, 'SELECT ?', 1);
    ps.execute(execute(1, 0, Buffer.from('0300', 'hex'), Buffer.from('01000000', 'hex')));
    const held = ps.get(1)!.types!;
    ps.get(1)!.upstreamTypes = held;
    const r = ps.execute(execute(1, 0, Buffer.from('fd00', 'hex'), Buffer.from('0131', 'hex')));
    const now = ps.get(1)!.types!;
    expect(now).not.toBe(held);
    expect(now.toString('hex')).toBe('fd00');
    expect(held.toString('hex')).toBe('0300'); // what the server was sent is not rewritten
    expect(r.params!.startsWith(Buffer.from('fd00', 'hex').toString('latin1'))).toBe(true);
  });
});

describe('readsConnectionState', () => {
  it('answers per statement text, as the regex over the text does', () => {
    const ps = new PreparedStatements();
    ps.prepared(1, 'SELECT ROW_COUNT()', 0);
    ps.prepared(2, 'SELECT v FROM t WHERE id = ?', 1);
    ps.prepared(3, 'show warnings', 0);
    expect(readsConnectionState(ps.get(1)!)).toBe(true);
    expect(readsConnectionState(ps.get(1)!)).toBe(true);
    expect(readsConnectionState(ps.get(2)!)).toBe(false);
    expect(readsConnectionState(ps.get(3)!)).toBe(true);
  });

  it('a statement prepared again under the same id is asked afresh', () => {
    const ps = new PreparedStatements();
    ps.prepared(1, 'SELECT v FROM t', 0);
    expect(readsConnectionState(ps.get(1)!)).toBe(false);
    ps.prepared(1, 'SELECT FOUND_ROWS()', 0);
    expect(readsConnectionState(ps.get(1)!)).toBe(true);
    expect(ps.get(1)!.analysed).toBeNull();
  });
});

describe('MysqlSessionContext: character set and ANSI_QUOTES from the look-up', () => {
  const values = (charset: string, sqlMode: string): string[] => {
    const v = MYSQL_KEYED_SETTINGS.map(() => '');
    v[MYSQL_KEYED_SETTINGS.indexOf('character_set_client')] = charset;
    v[MYSQL_KEYED_SETTINGS.indexOf('sql_mode')] = sqlMode;
    return [...v, 'test', 'root@%'];
  };

  it('are unknown before a look-up and after forgetSettings, and follow each new look-up', () => {
    const ctx = new MysqlSessionContext('root', 'test', 'caps');
    expect(ctx.clientCharset).toBeNull();
    expect(ctx.ansiQuotes).toBeNull();
    ctx.settingsLookedUp(values('utf8mb4', 'STRICT_TRANS_TABLES,ANSI_QUOTES'));
    expect(ctx.clientCharset).toBe('utf8mb4');
    expect(ctx.ansiQuotes).toBe(true);
    ctx.forgetSettings();
    expect(ctx.clientCharset).toBeNull();
    expect(ctx.ansiQuotes).toBeNull();
    ctx.settingsLookedUp(values('latin1', 'ANSI_QUOTESX,STRICT_ALL_TABLES'));
    expect(ctx.clientCharset).toBe('latin1');
    expect(ctx.ansiQuotes).toBe(false);
    ctx.reset('root', 'test');
    expect(ctx.clientCharset).toBeNull();
  });
});

describe('qualify: shared results are frozen', () => {
  it('a qualified classification and its table lists cannot be changed by a caller', () => {
    const c: Classification = Object.freeze({
      kind: 'read', reads: ['t'], writes: [], relations: [{ schema: null, name: 't' }], writesUnknown: false, cacheable: true,
      functions: [], builtins: [], operators: [], sessionEffects: [], statementCount: 1, txnControl: false,
    }) as Classification;
    const a: Analysis = { shaped: { shape: 'SELECT v FROM t', keyText: 'SELECT v FROM t', hints: {}, volatileLiteral: false }, classification: c };
    const q = qualify(a, 'Test', false).classification;
    expect(q.reads).toEqual(['test.t']);
    expect(Object.isFrozen(q)).toBe(true);
    expect(Object.isFrozen(q.reads)).toBe(true);
    expect(() => (q.reads as string[]).push('x')).toThrow();
    expect(qualify(a, 'Test', false).classification).toBe(q);
  });
});
