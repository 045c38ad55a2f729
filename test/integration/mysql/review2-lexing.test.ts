// Adversarial review, round 2: texts the proxy lexes differently from the
// server. The classifier's lexer knows one session flag (NO_BACKSLASH_ESCAPES,
// from the status flags); the server also lexes by sql_mode ANSI_QUOTES
// ("…" is an identifier, in which a backslash is an ordinary character) and
// by the client character set (in gbk, sjis, big5 and cp932 a multibyte
// character may end in the byte 0x5C, the backslash, which then escapes
// nothing). Where the two lexers disagree on where a quoted token ends,
// statements and tables hide inside what the proxy takes for a literal.
//
// Each test asserts MariaDB's own answer, read directly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, endMyDirect, MY_PORT } from '../../helpers/mysql.js';
import { cachedRows, executeRows, MyClients, rowsOf, truth } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
const drops: string[] = [];
const name = (p: string): string => uniqueName(p);

beforeAll(async () => {
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const d of drops.reverse()) await directSql(d).catch(() => {});
  await endMyDirect();
});

/** A table `id INT PRIMARY KEY, v VARCHAR(40)` with rows (1,'a'), (2,'b'), (3,'c'), dropped after. */
async function table(prefix: string): Promise<string> {
  const t = name(prefix);
  drops.push(`DROP TABLE IF EXISTS test.${t}`);
  await directSql(`CREATE TABLE test.${t} (id INT PRIMARY KEY, v VARCHAR(40)) DEFAULT CHARSET=utf8mb4; INSERT INTO test.${t} VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  return t;
}

const ANSI = "SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')";

describe('sql_mode ANSI_QUOTES: a backslash ends a "quoted identifier"', () => {
  it('control: MariaDB reads "x\\" as the identifier x\\ (so `;` after it ends the statement)', async () => {
    const direct = await clients.open(MY_PORT, { multipleStatements: true });
    await direct.query(ANSI);
    const [sets] = await direct.query('SELECT 1 AS "x\\"; SELECT 2 AS "z"');
    expect((sets as unknown[]).length, 'two result sets: two statements').toBe(2);
  });

  it('a write hidden after "x\\" in a multi-statement text is seen: cached reads of its table are fresh', async () => {
    const t = await table('r2_aq_w');
    const reader = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'a' }]);
    const writer = await clients.open(proxy.port, { multipleStatements: true });
    await writer.query(ANSI);
    // MariaDB: SELECT 1 AS `x\`; UPDATE …; -- comment. The proxy (backslash escapes "): one SELECT of a literal.
    await writer.query(`SELECT 1 AS "x\\"; UPDATE ${t} SET v = 'hidden' WHERE id = 1 -- "`);
    expect(await truth(read), 'MariaDB ran the UPDATE').toEqual([{ v: 'hidden' }]);
    expect(await rowsOf(reader, read), 'a reader after the acknowledged write').toEqual([{ v: 'hidden' }]);
  });

  it('a table read hidden after "x\\" is seen: a cached read of it is fresh after a write to that table', async () => {
    const t1 = await table('r2_aq_r1');
    const t2 = await table('r2_aq_r2');
    const c = await clients.open(proxy.port);
    await c.query(ANSI);
    // MariaDB reads t1 and t2; the proxy sees `SELECT 1 AS '…' FROM t1 WHERE id = 1`.
    const read = `SELECT 1 AS "x\\", (SELECT MAX(v) FROM ${t2}) AS m -- "\nFROM ${t1} WHERE id = 1`;
    const direct = await clients.open(MY_PORT);
    await direct.query(ANSI);
    const before = await rowsOf(direct, read);
    expect(before).toEqual([{ 'x\\': 1, m: 'c' }]);
    // Cached or not, it must follow writes to t2.
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(c, read)).toEqual(before);
    const w = await clients.open(proxy.port);
    await w.query(`UPDATE ${t2} SET v = 'zz' WHERE id = 3`);
    const after = await rowsOf(direct, read);
    expect(after).toEqual([{ 'x\\': 1, m: 'zz' }]);
    expect(await rowsOf(c, read), 'the ANSI_QUOTES session after a write to the hidden table').toEqual(after);
  });
});

describe('client character sets whose multibyte characters end in 0x5C', () => {
  // Each character's second byte is 0x5C: 縗 = BF 5C in gbk, 表 = 95 5C in sjis and cp932, 許 = B3 5C in big5.
  const SETS: Array<[string, string]> = [
    ['GBK_CHINESE_CI', '縗'],
    ['SJIS_JAPANESE_CI', '表'],
    ['BIG5_CHINESE_CI', '許'],
    ['CP932_JAPANESE_CI', '表'],
  ];

  it('control: MariaDB ends the literal after the character (the 0x5C escapes nothing)', async () => {
    for (const [charset, ch] of SETS) {
      const direct = await clients.open(MY_PORT, { charset, multipleStatements: true });
      const [sets] = await direct.query(`SELECT '${ch}' AS a; SELECT 2 AS b -- '`);
      expect((sets as unknown[]).length, charset).toBe(2);
    }
  });

  it.each(SETS)('%s: a write after such a literal in a multi-statement text invalidates its table', async (charset, ch) => {
    const t = await table('r2_mb_w');
    const reader = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'a' }]);
    const writer = await clients.open(proxy.port, { charset, multipleStatements: true });
    // Let the proxy learn the session's character set first (a cacheable read makes it look).
    await writer.query(`SELECT v FROM ${t} WHERE id = 2`);
    await writer.query(`SELECT '${ch}' AS a; UPDATE ${t} SET v = 'hidden' WHERE id = 1 -- '`);
    expect(await truth(read), 'MariaDB ran the UPDATE').toEqual([{ v: 'hidden' }]);
    expect(await rowsOf(reader, read), 'a reader after the acknowledged write').toEqual([{ v: 'hidden' }]);
  });

  it('gbk, first statement of the session (character set not looked up yet): the hidden write still invalidates', async () => {
    const t = await table('r2_mb_w0');
    const reader = await clients.open(proxy.port);
    const read = `SELECT v FROM ${t} WHERE id = 1`;
    expect(await cachedRows(proxy, reader, read)).toEqual([{ v: 'a' }]);
    const writer = await clients.open(proxy.port, { charset: 'GBK_CHINESE_CI', multipleStatements: true });
    await writer.query(`SELECT '縗' AS a; UPDATE ${t} SET v = 'hidden0' WHERE id = 1 -- '`);
    expect(await truth(read)).toEqual([{ v: 'hidden0' }]);
    expect(await rowsOf(reader, read)).toEqual([{ v: 'hidden0' }]);
  });

  it('gbk, prepared statement (COM_STMT_PREPARE): a table read after such a literal follows writes to it', async () => {
    const t1 = await table('r2_mb_p1');
    const t2 = await table('r2_mb_p2');
    const c = await clients.open(proxy.port, { charset: 'GBK_CHINESE_CI' });
    // MariaDB reads t1 and t2; a lexer that lets 0x5C escape the quote sees `SELECT id, '…' FROM t1 WHERE id = ?`.
    const read = `SELECT id, '縗' AS a, (SELECT MAX(v) FROM ${t2}) AS m -- '\nFROM ${t1} WHERE id = ?`;
    const direct = await clients.open(MY_PORT, { charset: 'GBK_CHINESE_CI' });
    const before = await executeRows(direct, read, [1]);
    expect(before).toEqual([{ id: 1, a: '縗', m: 'c' }]);
    for (let i = 0; i < 4; i += 1) expect(await executeRows(c, read, [1])).toEqual(before);
    const w = await clients.open(proxy.port);
    await w.query(`UPDATE ${t2} SET v = 'zz' WHERE id = 3`);
    const after = await executeRows(direct, read, [1]);
    expect(after).toEqual([{ id: 1, a: '縗', m: 'zz' }]);
    expect(await executeRows(c, read, [1]), 'the gbk session after a write to the hidden table').toEqual(after);
  });

  it('held up: gbk text-protocol reads are not cached at all (encoding bypass)', async () => {
    const t = await table('r2_mb_nc');
    const c = await clients.open(proxy.port, { charset: 'GBK_CHINESE_CI' });
    const read = `SELECT v, '縗' AS a FROM ${t} WHERE id = 1`;
    await rowsOf(c, read);
    const s0 = await proxy.stats();
    for (let i = 0; i < 3; i += 1) expect(await rowsOf(c, read)).toEqual([{ v: 'a', a: '縗' }]);
    const s1 = await proxy.stats();
    expect(s1.hits - s0.hits).toBe(0);
    expect((s1.bypass_reasons['encoding'] ?? 0) - (s0.bypass_reasons['encoding'] ?? 0)).toBeGreaterThan(0);
  });
});

