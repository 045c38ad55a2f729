// The look-ups a MySQL session runs itself: their SQL and COM_QUERY bytes
// (the captured server answered them with rows, not an ERR), text rows decoded
// exactly (NULL, lenenc 0xfc/0xfd/0xfe lengths), and catalog facts from the
// captured information_schema rows.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import type { RelationInfo } from '../../../src/core/catalog.js';
import type { Packet } from '../../../src/mysql/framer.js';
import { SQL_NULL, decodeTextRow, lookupPacket, relationFacts, relationLookupSql, settingsLookupSql, tableId } from '../../../src/mysql/lookups.js';
import { keyedVariables } from '../../../src/mysql/session-context.js';
import { classicEof, deprecateEof, frame, hex, lenenc, lenencString } from '../../fixtures/mysql-packets.js';

const D = 'sqlcached_capture_tmp';
/** The refs the captured relation look-up asked for, in order. */
const REFS = [
  ...['parent', 'child', 'grandchild', 'restrict_child', 'v', 'trig', 'seq', 'mrg', 'ver', 'mixedcase', 'tmp', 'nope'].map((name) => ({ schema: D, name })),
  { schema: 'information_schema', name: 'tables' },
];

/** A packet as a range of a larger buffer (junk before and after). */
function asPacket(wire: Buffer): Packet {
  const buf = Buffer.concat([Buffer.from([0xfb, 0xfb]), wire, Buffer.from([0x01, 0x41])]);
  return { buf, start: 2, end: 2 + wire.length, seq: wire[3]!, continues: false, continuation: false };
}

const rowOf = (payload: Buffer): string[] => decodeTextRow(asPacket(frame(1, payload)));

/** The row packets of a captured classic-EOF text result: between the two EOFs. */
function rows(response: readonly string[]): string[][] {
  const firstEof = response.findIndex((h) => h.slice(8, 10) === 'fe');
  return response.slice(firstEof + 1, -1).map((h) => decodeTextRow(asPacket(hex(h))));
}

describe('settingsLookupSql', () => {
  it('reads every keyed variable in order, then DATABASE() and CURRENT_USER()', () => {
    expect(settingsLookupSql(true)).toBe(
      'SELECT @@session.sql_mode, @@session.time_zone, @@session.character_set_client, @@session.character_set_connection, ' +
        '@@session.character_set_results, @@session.collation_connection, @@session.sql_auto_is_null, @@session.tx_isolation, ' +
        '@@session.div_precision_increment, @@session.group_concat_max_len, @@session.max_sort_length, @@session.sql_select_limit, ' +
        '@@session.lc_time_names, @@session.default_week_format, @@session.sql_big_selects, @@session.max_join_size, ' +
        '@@session.sql_quote_show_create, @@session.old_mode, @@session.system_versioning_asof, @@session.default_regex_flags, ' +
        '@@session.max_recursive_iterations, DATABASE(), CURRENT_USER()',
    );
  });

  it('frames the captured COM_QUERY (an earlier, 20-column version of this look-up) byte for byte', () => {
    const ex = classicEof['settings-lookup'];
    const capturedSql = hex(ex.request[0]!).toString('utf8', 5);
    expect(lookupPacket(capturedSql).toString('hex')).toBe(ex.request[0]);
    expect(ex.response[0]).toBe('0100000114'); // 20 columns
    expect(settingsLookupSql(true).startsWith(capturedSql.replace(', DATABASE(), CURRENT_USER()', ''))).toBe(true);
    expect(keyedVariables(true).length + 2).toBe(23);
    expect(keyedVariables(false)).not.toContain('old_mode');
    expect(keyedVariables(false)).toContain('transaction_isolation');
  });

  it('decodes the captured answer', () => {
    const [row, ...more] = rows(classicEof['settings-lookup'].response);
    expect(more).toEqual([]);
    expect(row).toEqual([
      'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION',
      'SYSTEM',
      'utf8mb4',
      'utf8mb4',
      'utf8mb4',
      'utf8mb4_general_ci',
      '0',
      'REPEATABLE-READ',
      '4',
      '1048576',
      '1024',
      '18446744073709551615',
      'en_US',
      '0',
      '1',
      '18446744073709551615',
      '1',
      'UTF8_IS_UTF8MB3',
      D,
      'root@127.0.0.1',
    ]);
  });

  it('decodes the same row from the DEPRECATE_EOF session', () => {
    const r = deprecateEof['settings-lookup'].response;
    expect(decodeTextRow(asPacket(hex(r[r.length - 2]!)))).toEqual(rows(classicEof['settings-lookup'].response)[0]);
  });
});

describe('relationLookupSql and lookupPacket', () => {
  it('writes names as hex literals that no sql_mode or quote can change', () => {
    const sql = relationLookupSql([{ schema: "it's", name: 'a\\b`c' }]);
    expect(sql).toContain(
      "WHERE (t.TABLE_SCHEMA = CONVERT(X'69742773' USING utf8mb4) AND t.TABLE_NAME = CONVERT(X'615c626063' USING utf8mb4)) UNION ALL",
    );
    expect(sql).not.toContain("it's");
  });

  it('writes UTF-8 names byte for byte', () => {
    expect(relationLookupSql([{ schema: 'café', name: 't' }])).toContain("CONVERT(X'636166c3a9' USING utf8mb4)");
  });

  it('joins several tables with OR', () => {
    const sql = relationLookupSql([
      { schema: 'a', name: 'x' },
      { schema: 'b', name: 'y' },
    ]);
    expect(sql).toContain("(t.TABLE_SCHEMA = CONVERT(X'61' USING utf8mb4) AND t.TABLE_NAME = CONVERT(X'78' USING utf8mb4)) OR (t.TABLE_SCHEMA");
  });

  it('extends the captured COM_QUERY (which MariaDB answered with rows) with the privilege row and an explicit LIMIT', () => {
    const ex = classicEof['relation-lookup'];
    const capturedSql = hex(ex.request[0]!).toString('utf8', 5);
    expect(lookupPacket(capturedSql).toString('hex')).toBe(ex.request[0]);
    expect(ex.response[0]).toBe('0100000106'); // 6 columns, no ERR
    const sql = relationLookupSql(REFS);
    expect(sql.startsWith(capturedSql)).toBe(true);
    expect(sql).toContain("UNION ALL SELECT 'p', COUNT(DISTINCT u.PRIVILEGE_TYPE)");
    expect(sql.endsWith('LIMIT 18446744073709551615')).toBe(true);
  });

  it('frames a look-up as a COM_QUERY with sequence id 0', () => {
    expect(lookupPacket('SELECT 1').toString('hex')).toBe('090000000353454c4543542031');
    const long = 'x'.repeat(300);
    const p = lookupPacket(long);
    expect(p.readUIntLE(0, 3)).toBe(301);
    expect([p[3], p[4], p.length]).toEqual([0, 0x03, 305]);
  });
});

describe('decodeTextRow', () => {
  it('decodes captured rows, NULL included', () => {
    expect(decodeTextRow(asPacket(hex(classicEof['text-select'].response[4]!)))).toEqual(['1', 'x']);
    expect(decodeTextRow(asPacket(hex(classicEof['text-select'].response[5]!)))).toEqual(['2', SQL_NULL]);
    expect(decodeTextRow(asPacket(hex(classicEof.warning.response[3]!)))).toEqual([SQL_NULL]);
  });

  it('decodes an empty string as empty, and a row of nothing as no columns', () => {
    expect(rowOf(Buffer.from([0x00, 0xfb, 0x00]))).toEqual(['', SQL_NULL, '']);
    expect(rowOf(Buffer.alloc(0))).toEqual([]);
  });

  it('decodes a UTF-8 value', () => {
    expect(rowOf(lenencString('Zürich ✓'))).toEqual(['Zürich ✓']);
  });

  it.each([
    ['0xfc', 300],
    ['0xfd', 70000],
  ])('decodes a value whose length is in the %s form', (form, n) => {
    const v = 'v'.repeat(n);
    const payload = Buffer.concat([lenencString(v), lenencString('end')]);
    expect(payload[0]).toBe(Number(form));
    expect(rowOf(payload)).toEqual([v, 'end']);
  });

  it('decodes a value whose length is in the 0xfe form (a row of a ≥16 MiB logical packet)', () => {
    const n = 0x1000000 + 3;
    const payload = Buffer.concat([lenenc(n), Buffer.alloc(n, 0x61), lenencString('z')]);
    expect(payload[0]).toBe(0xfe);
    // The logical packet as one buffer (a 4-byte header's room, then the payload): decodeTextRow never reads the header.
    const buf = Buffer.concat([Buffer.alloc(4), payload]);
    const row = decodeTextRow({ buf, start: 0, end: buf.length, seq: 0, continues: false, continuation: false });
    expect(row.length).toBe(2);
    expect(row[0]!.length).toBe(n);
    expect(row[1]).toBe('z');
  });

  it.each([
    ['a length past the end', Buffer.from([0x05, 0x61, 0x62])],
    ['a 0xfc length cut short', Buffer.from([0xfc, 0x01])],
    ['a 0xff byte', Buffer.from([0xff])],
  ])('refuses %s', (_n, payload) => {
    expect(() => rowOf(payload)).toThrow('malformed row in a look-up answer');
  });
});

describe('relationFacts from the captured information_schema rows', () => {
  /** The capture predates the privilege row: root sees everything. */
  const SEES_ALL = ['p', '2', '', '', '', '0'];
  const captured = (): string[][] => [...rows(classicEof['relation-lookup'].response), SEES_ALL];
  const facts = new Map(relationFacts(REFS, captured()).map(([ref, info]) => [ref.name, info]));
  const id = (n: string): string => `${D}.${n}`;

  it('answers every ref, keyed as asked', () => {
    const out = relationFacts(REFS, captured());
    expect(out.map(([ref]) => ref)).toEqual(REFS);
  });

  it('follows ON DELETE CASCADE and ON UPDATE SET NULL transitively, and not RESTRICT', () => {
    expect(facts.get('parent')).toEqual({ name: id('parent'), cacheable: true, alsoInvalidates: [id('child'), id('grandchild')], invalidatesAll: false });
    expect(facts.get('child')).toEqual({ name: id('child'), cacheable: true, alsoInvalidates: [id('grandchild')], invalidatesAll: false });
    expect(facts.get('grandchild')!.alsoInvalidates).toEqual([]);
    expect(facts.get('restrict_child')!.alsoInvalidates).toEqual([]);
  });

  it('refuses a view and a sequence as relation kinds', () => {
    // A write through a view lands in tables it does not name: without the
    // dependency graph it invalidates everything; with it, the graph decides.
    expect(facts.get('v')).toMatchObject({
      cacheable: false,
      reason: 'relation-kind',
      detail: `${id('v')} is a view and the dependency graph is not loaded`,
      invalidatesAll: true,
      needsGraph: true,
    });
    expect(facts.get('seq')).toMatchObject({ cacheable: false, reason: 'relation-kind', detail: `${id('seq')} is a sequence` });
  });

  it('refuses a MRG_MyISAM table by its engine', () => {
    expect(facts.get('mrg')).toMatchObject({ cacheable: false, reason: 'relation-kind', detail: `${id('mrg')} uses the mrg_myisam engine` });
  });

  it('lets a table with a trigger be cached, but its writes invalidate everything', () => {
    expect(facts.get('trig')).toEqual({ name: id('trig'), cacheable: true, alsoInvalidates: [], invalidatesAll: true });
  });

  it('caches a system-versioned table and finds a MixedCase table by its lower-case name', () => {
    expect(facts.get('ver')!.cacheable).toBe(true);
    expect(facts.get('mixedcase')).toEqual({ name: id('mixedcase'), cacheable: true, alsoInvalidates: [], invalidatesAll: false });
  });

  it('refuses information_schema.TABLES as a system catalog', () => {
    expect(facts.get('tables')).toMatchObject({ name: 'information_schema.tables', cacheable: false, reason: 'system-catalog' });
  });

  // MariaDB 10.11 did not list the session's TEMPORARY table `tmp` in
  // information_schema.TABLES (see the capture): it falls to "unknown".
  it('refuses a missing table (and the session temporary table MariaDB does not list) as unknown, writes invalidating all', () => {
    for (const n of ['nope', 'tmp']) {
      expect(facts.get(n)).toEqual({ name: id(n), cacheable: false, reason: 'unknown-relation', detail: id(n), alsoInvalidates: [], invalidatesAll: true });
    }
  });

  it('makes every write invalidate everything for a user who cannot see all triggers and foreign keys', () => {
    const limited = new Map(relationFacts(REFS, [...rows(classicEof['relation-lookup'].response), ['p', '1', '', '', '', '0']]).map(([ref, info]) => [ref.name, info]));
    expect(limited.get('parent')!.invalidatesAll).toBe(true);
    expect(limited.get('mixedcase')!.invalidatesAll).toBe(true);
    expect(limited.get('parent')!.cacheable).toBe(true); // reads are unaffected
  });

  it('reads the DEPRECATE_EOF answer to the same facts', () => {
    const r = deprecateEof['relation-lookup'].response;
    const dRows = r.slice(7, -1).map((h) => decodeTextRow(asPacket(hex(h))));
    expect(relationFacts(REFS, [...dRows, SEES_ALL])).toEqual(relationFacts(REFS, captured()));
  });
});

describe('relationFacts, built by hand', () => {
  const t = (schema: string, name: string, type = 'BASE TABLE', engine = 'InnoDB', triggers = '0'): string[] => ['t', schema, name, type, engine, triggers];
  const f = (fromSchema: string, from: string, toSchema: string, to: string): string[] => ['f', fromSchema, from, toSchema, to, '0'];
  /** The facts of the one ref asked for. */
  const only = (ref: { schema: string; name: string }, rows: string[][]): RelationInfo => {
    const out = relationFacts([ref], [...rows, ['p', '2', '', '', '', '0']]);
    expect(out.length).toBe(1);
    return out[0]![1];
  };

  it('ends a cascade cycle and crosses databases', () => {
    const a = only({ schema: 'db1', name: 'a' }, [t('db1', 'a'), f('db1', 'a', 'db2', 'b'), f('db2', 'b', 'db1', 'a'), f('db2', 'b', 'db2', 'c')]);
    expect(a.alsoInvalidates).toEqual(['db2.b', 'db2.c']);
  });

  it('refuses a TEMPORARY table as a temp table', () => {
    const info = only({ schema: 's', name: 'tmp' }, [t('s', 'tmp', 'TEMPORARY', 'MEMORY')]);
    expect(info).toMatchObject({ cacheable: false, reason: 'temp-table', detail: 's.tmp' });
  });

  it('refuses FEDERATED, CONNECT and SPIDER tables, whatever the case of the engine name', () => {
    for (const engine of ['FEDERATED', 'CONNECT', 'SPIDER']) {
      const info = only({ schema: 's', name: 'x' }, [t('s', 'x', 'BASE TABLE', engine)]);
      expect(info).toMatchObject({ cacheable: false, reason: 'relation-kind', detail: `s.x uses the ${engine.toLowerCase()} engine` });
    }
  });

  it('skips a foreign key whose referenced table is NULL', () => {
    const info = only({ schema: 's', name: 'p' }, [t('s', 'p'), ['f', 's', SQL_NULL, 's', 'c', '0'], ['f', SQL_NULL, 'p', 's', 'd', '0']]);
    expect(info.alsoInvalidates).toEqual([]);
  });

  it('counts triggers from the text of the count column', () => {
    const two = only({ schema: 's', name: 'x' }, [t('s', 'x', 'BASE TABLE', 'InnoDB', '2')]);
    expect(two.invalidatesAll).toBe(true);
  });

  it('names tables as `db.table`, lower-case', () => {
    expect(tableId('Shop', 'Users')).toBe('shop.users');
  });
});
