// The less common MySQL commands on the raw wire, each script run twice —
// against MariaDB itself and through the proxy — and the two transcripts
// compared packet by packet: COM_STMT_SEND_LONG_DATA, COM_STMT_RESET,
// COM_STMT_CLOSE then execute, cursors and COM_STMT_FETCH, COM_SET_OPTION,
// COM_INIT_DB to a missing database, COM_FIELD_LIST, COM_STATISTICS,
// COM_PROCESS_KILL, COM_DEBUG, COM_CHANGE_USER with a wrong password, an
// unknown command byte, pipelined commands, COM_QUIT with data after it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { connectMysql, directSql, dropMyTables, endMyDirect, MY_DB1, MY_DB2, PW_USER, processExists } from '../../helpers/mysql.js';
import { rowsOf } from '../../helpers/mysql-checks.js';
import { packet, RawMysql } from '../../helpers/mysql-wire.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';
import {
  cmd,
  COM,
  describePacket,
  execute,
  fieldList,
  initDb,
  prepare,
  query,
  responseLength,
  runScript,
  sendLongData,
  setOption,
  stmtClose,
  stmtFetch,
  stmtReset,
  type Step,
} from '../../helpers/mysql-proto.js';

const MY_PORT = 3306;
const T = uniqueName('my_proto');
const X = uniqueName('my_px'); // same name in two databases
let proxy: TestProxy;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)`);
  await directSql(`INSERT INTO ${T} VALUES (1,'one'),(2,'two'),(3,'three'),(4,'four'),(5,'five')`);
  await directSql(`CREATE TABLE ${MY_DB1}.${X} (v VARCHAR(10)); INSERT INTO ${MY_DB1}.${X} VALUES ('db1')`);
  await directSql(`CREATE TABLE ${MY_DB2}.${X} (v VARCHAR(10)); INSERT INTO ${MY_DB2}.${X} VALUES ('db2')`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T, `${MY_DB1}.${X}`, `${MY_DB2}.${X}`);
  await endMyDirect();
});

/** The same raw script against MariaDB and through the proxy; the transcripts must be equal. */
async function sameAsMariaDb(steps: Step[], db: string | null = 'test'): Promise<string[]> {
  const direct = await runScript(MY_PORT, steps, { db });
  direct.raw.destroy();
  const via = await runScript(proxy.port, steps, { db });
  via.raw.destroy();
  expect(via.transcript).toEqual(direct.transcript);
  return via.transcript;
}

describe('prepared statements on the raw wire', () => {
  it('COM_STMT_SEND_LONG_DATA then execute; COM_STMT_RESET drops the long data; a repeated execute (maybe a hit) stays right', async () => {
    const t = await sameAsMariaDb([
      { label: 'prepare', send: prepare(`SELECT ? AS a, CONCAT(?, 'x') AS b`), kind: 'prepare' },
      { label: 'exec p,q', send: (st) => execute(st.stmts[0]!, ['p', 'q']), kind: 'result' },
      { label: 'exec p,q again', send: (st) => execute(st.stmts[0]!, ['p', 'q']), kind: 'result' },
      { label: 'long 1', send: (st) => sendLongData(st.stmts[0]!, 0, 'hello '), kind: 'none' },
      { label: 'long 2', send: (st) => sendLongData(st.stmts[0]!, 0, 'world'), kind: 'none' },
      { label: 'exec long,q', send: (st) => execute(st.stmts[0]!, ['', 'q'], 0, [0]), kind: 'result' },
      { label: 'exec p,q after long', send: (st) => execute(st.stmts[0]!, ['p', 'q']), kind: 'result' },
      { label: 'long 3', send: (st) => sendLongData(st.stmts[0]!, 1, 'LONGQ'), kind: 'none' },
      { label: 'exec p,long', send: (st) => execute(st.stmts[0]!, ['p', ''], 0, [1]), kind: 'result' },
      { label: 'long 4', send: (st) => sendLongData(st.stmts[0]!, 0, 'dropped'), kind: 'none' },
      { label: 'reset', send: (st) => stmtReset(st.stmts[0]!), kind: 'one' },
      { label: 'exec p,q after reset', send: (st) => execute(st.stmts[0]!, ['p', 'q']), kind: 'result' },
      { label: 'reset unknown id', send: stmtReset(77), kind: 'one' },
    ]);
    expect(t.find((l) => l.startsWith('exec long,q'))).toContain('hello world');
    expect(t.find((l) => l.startsWith('exec p,long'))).toContain('LONGQx');
  });

  it('COM_STMT_CLOSE then execute of the closed id: MariaDB\'s ERR 1243 — also when the read was cached', async () => {
    const t = await sameAsMariaDb([
      { label: 'prepare', send: prepare(`SELECT v FROM ${T} WHERE id = ?`), kind: 'prepare' },
      { label: 'exec', send: (st) => execute(st.stmts[0]!, ['1']), kind: 'result' },
      { label: 'exec again', send: (st) => execute(st.stmts[0]!, ['1']), kind: 'result' },
      { label: 'close', send: (st) => stmtClose(st.stmts[0]!), kind: 'none' },
      { label: 'exec closed', send: (st) => execute(st.stmts[0]!, ['1']), kind: 'result' },
      { label: 'close again', send: (st) => stmtClose(st.stmts[0]!), kind: 'none' },
      { label: 'prepare again', send: prepare(`SELECT v FROM ${T} WHERE id = ?`), kind: 'prepare' },
      { label: 'exec new', send: (st) => execute(st.stmts[1]!, ['1']), kind: 'result' },
      { label: 'exec last prepared (0xffffffff)', send: execute(0xffffffff, ['2']), kind: 'result' },
    ]);
    expect(t.find((l) => l.startsWith('exec closed:'))).toMatch(/ERR 1243/);
  });

  it('a cursor execute (CURSOR_TYPE_READ_ONLY) and COM_STMT_FETCH in pieces, after the same statement was cached without a cursor', async () => {
    await sameAsMariaDb([
      { label: 'prepare', send: prepare(`SELECT id, v FROM ${T} ORDER BY id`), kind: 'prepare' },
      { label: 'exec plain', send: (st) => execute(st.stmts[0]!), kind: 'result' },
      { label: 'exec plain again', send: (st) => execute(st.stmts[0]!), kind: 'result' },
      { label: 'exec cursor', send: (st) => execute(st.stmts[0]!, [], 1), kind: 'result' },
      { label: 'fetch 2', send: (st) => stmtFetch(st.stmts[0]!, 2), kind: 'fetch' },
      { label: 'fetch 2 more', send: (st) => stmtFetch(st.stmts[0]!, 2), kind: 'fetch' },
      { label: 'fetch 100', send: (st) => stmtFetch(st.stmts[0]!, 100), kind: 'fetch' },
      { label: 'fetch past the end', send: (st) => stmtFetch(st.stmts[0]!, 1), kind: 'fetch' },
      { label: 'exec cursor again', send: (st) => execute(st.stmts[0]!, [], 1), kind: 'result' },
      { label: 'fetch 1', send: (st) => stmtFetch(st.stmts[0]!, 1), kind: 'fetch' },
      { label: 'reset closes the cursor', send: (st) => stmtReset(st.stmts[0]!), kind: 'one' },
      { label: 'fetch after reset', send: (st) => stmtFetch(st.stmts[0]!, 1), kind: 'fetch' },
      { label: 'fetch unknown statement', send: stmtFetch(99, 1), kind: 'fetch' },
      { label: 'exec plain last', send: (st) => execute(st.stmts[0]!), kind: 'result' },
    ]);
  });
});

describe('other commands on the raw wire', () => {
  it('COM_SET_OPTION: multi-statements off, then on', async () => {
    await sameAsMariaDb([
      { label: 'two statements (cap not set)', send: query('SELECT 1; SELECT 2'), kind: 'result' },
      { label: 'option on', send: setOption(true), kind: 'one' },
      { label: 'two statements', send: query(`SELECT v FROM ${T} WHERE id = 1; SELECT 2`), kind: 'result' },
      { label: 'option off', send: setOption(false), kind: 'one' },
      { label: 'two statements again', send: query(`SELECT v FROM ${T} WHERE id = 1; SELECT 2`), kind: 'result' },
      { label: 'one statement', send: query(`SELECT v FROM ${T} WHERE id = 1`), kind: 'result' },
      { label: 'bad option', send: cmd(COM.SET_OPTION, Buffer.from([7, 0])), kind: 'one' },
    ]);
  });

  it('COM_INIT_DB to a missing database: the error, and the session keeps its database (no read from the other database\'s cache)', async () => {
    // Warm both databases' entries for the same unqualified text.
    const c1 = await connectMysql(proxy.port, { database: MY_DB1 });
    const c2 = await connectMysql(proxy.port, { database: MY_DB2 });
    await warm(proxy, () => rowsOf(c1, `SELECT v FROM ${X}`));
    await warm(proxy, () => rowsOf(c2, `SELECT v FROM ${X}`));
    await c1.end();
    await c2.end();
    const t = await sameAsMariaDb(
      [
        { label: 'read db1', send: query(`SELECT v FROM ${X}`), kind: 'result' },
        { label: 'init db2', send: initDb(MY_DB2), kind: 'one' },
        { label: 'read db2', send: query(`SELECT v FROM ${X}`), kind: 'result' },
        { label: 'init missing', send: initDb('sqlcached_no_such_db'), kind: 'one' },
        { label: 'read after failed init', send: query(`SELECT v FROM ${X}`), kind: 'result' },
        { label: 'database()', send: query('SELECT DATABASE()'), kind: 'result' },
        { label: 'use missing', send: query('USE sqlcached_no_such_db'), kind: 'result' },
        { label: 'read after failed use', send: query(`SELECT v FROM ${X}`), kind: 'result' },
        { label: 'init db1', send: initDb(MY_DB1), kind: 'one' },
        { label: 'read db1 again', send: query(`SELECT v FROM ${X}`), kind: 'result' },
        { label: 'init empty name', send: initDb(''), kind: 'one' },
        { label: 'read after empty init', send: query(`SELECT v FROM ${X}`), kind: 'result' },
      ],
      MY_DB1,
    );
    expect(t.find((l) => l.startsWith('read after failed init'))).toContain('db2');
  });

  it('COM_FIELD_LIST, COM_PING, COM_DEBUG', async () => {
    await sameAsMariaDb([
      { label: 'field list', send: fieldList(T), kind: 'field-list' },
      { label: 'field list wildcard', send: fieldList(T, 'i%'), kind: 'field-list' },
      { label: 'field list missing table', send: fieldList('no_such_table_x'), kind: 'field-list' },
      { label: 'ping', send: cmd(COM.PING), kind: 'one' },
      { label: 'debug', send: cmd(COM.DEBUG), kind: 'one' },
      { label: 'after', send: query('SELECT 1'), kind: 'result' },
    ]);
  });

  it('COM_STATISTICS answers one string packet, and the session goes on', async () => {
    const via = await runScript(proxy.port, [
      { label: 'stats', send: cmd(COM.STATISTICS), kind: 'one' },
      { label: 'after', send: query('SELECT 1'), kind: 'result' },
    ]);
    via.raw.destroy();
    expect(via.transcript[0]).toMatch(/^stats: #Uptime: \d+/);
    expect(via.transcript[1]).toMatch(/^after: .*#\.1 \|/);
  });

  it('COM_PROCESS_KILL of another connection: OK, and that connection is gone', async () => {
    const victim = await connectMysql(MY_PORT);
    const id = victim.threadId!;
    const buf = Buffer.alloc(4);
    buf.writeUInt32LE(id, 0);
    const via = await runScript(proxy.port, [
      { label: 'kill', send: cmd(COM.PROCESS_KILL, buf), kind: 'one' },
      { label: 'kill unknown id', send: cmd(COM.PROCESS_KILL, Buffer.from([0xff, 0xff, 0xff, 0x0f])), kind: 'one' },
      { label: 'after', send: query('SELECT 1'), kind: 'result' },
    ]);
    via.raw.destroy();
    victim.destroy();
    expect(via.transcript[0]).toMatch(/^kill: OK/);
    expect(via.transcript[1]).toMatch(/^kill unknown id: ERR 1094/);
    expect(await waitFor(async () => !(await processExists(id)), 5_000)).toBe(true);
  });

  it('COM_CHANGE_USER with a wrong password: the same ERR as MariaDB, and then the same session behaviour', async () => {
    // user NUL, auth length 20 + 20 bytes of a wrong scramble answer, database NUL, charset, plugin NUL
    const body = Buffer.concat([Buffer.from(`${PW_USER}\0`), Buffer.from([20]), Buffer.alloc(20, 7), Buffer.from('test\0'), Buffer.from([45, 0]), Buffer.from('mysql_native_password\0')]);
    await sameAsMariaDb([
      { label: 'cache a read', send: query(`SELECT v FROM ${T} WHERE id = 2`), kind: 'result' },
      { label: 'prepare', send: prepare(`SELECT v FROM ${T} WHERE id = ?`), kind: 'prepare' },
      { label: 'change user', send: cmd(COM.CHANGE_USER, body), kind: 'one' },
      { label: 'wrong auth switch answer', send: packet(2, Buffer.alloc(20, 9)), kind: 'one' },
      { label: 'current_user', send: query('SELECT CURRENT_USER()'), kind: 'result' },
      { label: 'read', send: query(`SELECT v FROM ${T} WHERE id = 2`), kind: 'result' },
      { label: 'exec statement prepared before', send: (st) => execute(st.stmts[0]!, ['3']), kind: 'result' },
    ]);
  });

  it('an unknown command byte (0x99): the server\'s own ERR comes back, and the session goes on', async () => {
    await sameAsMariaDb([
      { label: 'unknown', send: cmd(0x99, 'whatever'), kind: 'one' },
      { label: 'after', send: query(`SELECT v FROM ${T} WHERE id = 1`), kind: 'result' },
    ]);
  });

  it('after an unknown command byte, a write on that connection still invalidates what others have cached (never staler than a write you made)', async () => {
    const reader = await connectMysql(proxy.port);
    try {
      await directSql(`UPDATE ${T} SET v = 'five' WHERE id = 5`);
      const sql = `SELECT v FROM ${T} WHERE id = 5`;
      expect(await warm(proxy, () => rowsOf(reader, sql))).toEqual([{ v: 'five' }]);
      const via = await runScript(proxy.port, [
        { label: 'unknown', send: cmd(0x99), kind: 'one' },
        { label: 'write', send: query(`UPDATE ${T} SET v = 'FIVE!' WHERE id = 5`), kind: 'result' },
      ]);
      via.raw.destroy();
      expect(via.transcript[1]).toMatch(/^write: OK affected=1/);
      expect(await rowsOf(reader, sql), 'the read after the acknowledged write').toEqual([{ v: 'FIVE!' }]);
    } finally {
      await reader.end();
      await directSql(`UPDATE ${T} SET v = 'five' WHERE id = 5`);
    }
  });
});

describe('pipelining and COM_QUIT', () => {
  /** Write all of `packets` at once, then read `kinds.length` whole responses in order. */
  async function pipelined(port: number, packets: Buffer[], kinds: ('result' | 'one')[]): Promise<{ lines: string[]; complete: boolean }> {
    const raw = await RawMysql.connect(port);
    await raw.login('root', 'test');
    const from = raw.packets.length;
    raw.write(Buffer.concat(packets));
    const count = (): number | null => {
      let at = from;
      for (const k of kinds) {
        const n = responseLength(raw.packets, at, k);
        if (n === null) return null;
        at += n;
      }
      return at;
    };
    const complete = await raw.until(() => count() !== null, 4_000);
    const lines: string[] = [];
    let at = from;
    for (const k of kinds) {
      const n = responseLength(raw.packets, at, k);
      if (n === null) {
        lines.push(`<missing: ${raw.packets.slice(at).map((p) => describePacket(p)).join(' | ')}>`);
        break;
      }
      lines.push(raw.packets.slice(at, at + n).map((p) => describePacket(p)).join(' | '));
      at += n;
    }
    raw.destroy();
    return { lines, complete };
  }

  it('several COM_QUERY written before any answer is read: answers complete and in order (misses, errors, writes)', async () => {
    const pk = [
      query(`SELECT v FROM ${T} WHERE id = 3`),
      query('SELECT 2'),
      query('SELEC broken'),
      query(`UPDATE ${T} SET v = 'three' WHERE id = 3`),
      query(`SELECT v FROM ${T} WHERE id = 3`),
      cmd(COM.PING),
      query(`SELECT v FROM ${T} WHERE id = 3`),
    ];
    const kinds: ('result' | 'one')[] = ['result', 'result', 'result', 'result', 'result', 'one', 'result'];
    const direct = await pipelined(MY_PORT, pk, kinds);
    const via = await pipelined(proxy.port, pk, kinds);
    expect(direct.complete).toBe(true);
    expect(via.lines).toEqual(direct.lines);
    expect(via.complete).toBe(true);
  });

  it('pipelined on a fresh connection whose first read is already cached (a hit right after the settings look-up): every answer comes', async () => {
    const sql = `SELECT v FROM ${T} WHERE id = 4`;
    // Warm the entry with a client of the same capabilities (they are part of the key).
    const warmer = await runScript(proxy.port, [
      { label: 'miss', send: query(sql), kind: 'result' },
      { label: 'hit', send: query(sql), kind: 'result' },
    ]);
    warmer.raw.destroy();
    const before = (await proxy.stats()).hits;
    const pk = [query(sql), query('SELECT 2'), query(sql), query('SELECT 3')];
    const kinds: ('result' | 'one')[] = ['result', 'result', 'result', 'result'];
    const direct = await pipelined(MY_PORT, pk, kinds);
    const via = await pipelined(proxy.port, pk, kinds);
    expect(via.lines).toEqual(direct.lines);
    expect(via.complete, 'all four answers arrived').toBe(true);
    expect((await proxy.stats()).hits - before, 'both reads were hits').toBe(2);
  });

  it('COM_QUIT with a query before it and data after it, in one write: the query is answered, then the connection closes, no upstream left', async () => {
    const raw = await RawMysql.connect(proxy.port);
    await raw.login('root', 'test');
    const idPkts = await raw.query('SELECT CONNECTION_ID()');
    const rowPkt = idPkts.filter((p) => p.payload[0] !== 0xfe)[2]!;
    const upstream = Number(rowPkt.payload.subarray(1, 1 + rowPkt.payload[0]!).toString());
    const from = raw.packets.length;
    raw.write(Buffer.concat([query('SELECT 42'), cmd(COM.QUIT), query('SELECT 43'), Buffer.from('garbage after quit')]));
    expect(await raw.waitClosed(5_000), 'closed after COM_QUIT').toBe(true);
    const lines = raw.packets.slice(from).map((p) => describePacket(p));
    expect(lines.some((l) => l === '#.42'), `answered SELECT 42: ${lines.join(' | ')}`).toBe(true);
    expect(lines.some((l) => l.includes('43')), 'nothing after COM_QUIT is run').toBe(false);
    expect(await waitFor(async () => !(await processExists(upstream)), 5_000), 'upstream closed').toBe(true);
  });

  it('COM_QUIT with a wrong sequence id and trailing bytes in the same packet: the connection still closes cleanly', async () => {
    const raw = await RawMysql.connect(proxy.port);
    await raw.login('root', 'test');
    raw.write(packet(5, Buffer.from([COM.QUIT, 1, 2, 3])));
    expect(await raw.waitClosed(5_000)).toBe(true);
  });
});
