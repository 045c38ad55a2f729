// libmariadb (sysbench, the C connector, PHP's mysqlnd) sends a prepared
// statement's parameter types only with its first COM_STMT_EXECUTE and
// "same types as before" after that. When that first execute is answered
// from cache, the server never learns the types: the next execute that goes
// upstream must still work (MariaDB answered ERR 1210 "Incorrect arguments to
// mysqld_stmt_execute" before the fix), and must return the right row.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, dropMyTables, endMyDirect } from '../../helpers/mysql.js';
import { execute, prepare, responseLength, type Kind } from '../../helpers/mysql-proto.js';
import { RawMysql, decodeErr, packet } from '../../helpers/mysql-wire.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

const T = uniqueName('my_ptypes');
let proxy: TestProxy;

beforeAll(async () => {
  await directSql(`CREATE TABLE ${T} (id INT PRIMARY KEY, v VARCHAR(20))`);
  await directSql(`INSERT INTO ${T} VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  proxy = await startMysqlProxy();
});

afterAll(async () => {
  await proxy?.stop();
  await dropMyTables(T);
  await endMyDirect();
});

/** Send one command and wait for its whole response. */
async function roundTrip(raw: RawMysql, buf: Buffer, kind: Kind): Promise<Buffer[]> {
  const from = raw.packets.length;
  raw.write(buf);
  const ok = await raw.until(() => {
    const first = raw.packets[from];
    if (first !== undefined && first.payload[0] === 0xff) return true;
    return responseLength(raw.packets, from, kind) !== null;
  }, 5_000);
  expect(ok, 'a whole response').toBe(true);
  const first = raw.packets[from]!;
  const n = first.payload[0] === 0xff ? 1 : responseLength(raw.packets, from, kind)!;
  return raw.packets.slice(from, from + n).map((p) => p.payload);
}

/** COM_STMT_EXECUTE of one string parameter, "same types as before" (new-params-bound flag 0). */
function executeSameTypes(id: number, value: string): Buffer {
  const v = Buffer.from(value);
  const body = Buffer.concat([Buffer.from([0x17]), u32(id), Buffer.from([0]), u32(1), Buffer.from([0x00, 0x00]), Buffer.from([v.length]), v]);
  return packet(0, body);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

async function session(): Promise<{ raw: RawMysql; id: number }> {
  const raw = await RawMysql.connect(proxy.port);
  await raw.login('root', 'test');
  const ok = await roundTrip(raw, prepare(`SELECT v FROM ${T} WHERE id = ?`), 'prepare');
  expect(ok[0]![0], 'PREPARE_OK').toBe(0x00);
  return { raw, id: ok[0]!.readUInt32LE(1) };
}

const rowText = (payloads: Buffer[]): string => {
  const err = payloads[0] !== undefined ? decodeErr(payloads[0]) : null;
  if (err !== null) return `ERR ${err.code} ${err.message}`;
  // Binary row: 0x00, null bitmap (1 byte for one column), then a length-prefixed string.
  const row = payloads.find((p, i) => i > 1 && p[0] === 0x00 && p.length > 2)!;
  return row.toString('utf8', 3, 3 + row[2]!);
};

describe('prepared statements whose types the server never saw', () => {
  it('first execute answered from cache, the next "same types" execute goes upstream and returns the right row', async () => {
    // Another connection caches the result of id = 1.
    const a = await session();
    for (let i = 0; i < 3; i++) expect(rowText(await roundTrip(a.raw, execute(a.id, ['1']), 'result'))).toBe('one');
    a.raw.destroy();

    const b = await session();
    try {
      expect(rowText(await roundTrip(b.raw, execute(b.id, ['1']), 'result'))).toBe('one');
      expect(rowText(await roundTrip(b.raw, executeSameTypes(b.id, '2'), 'result'))).toBe('two');
      expect(rowText(await roundTrip(b.raw, executeSameTypes(b.id, '1'), 'result'))).toBe('one');
      expect(rowText(await roundTrip(b.raw, executeSameTypes(b.id, '3'), 'result'))).toBe('three');
    } finally {
      b.raw.destroy();
    }
  });
});
