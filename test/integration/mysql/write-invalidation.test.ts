// Every write form MySQL/MariaDB has, sent through the proxy: the next read
// of what it wrote, on the writer's connection and on another one, equals
// the database at once (DESIGN promise 2: never staler than a write you made).

import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, dropMyTables, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { expectWriteInvalidates, MyClients } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
let writer: MyConnection; // through the proxy; writes and reads
let other: MyConnection; // through the proxy; reads only
const created: string[] = [];
const procedures: string[] = [];
let infile = Buffer.alloc(0); // what LOAD DATA LOCAL INFILE reads next

/** A fresh table `(id INT PRIMARY KEY, v VARCHAR(40), n INT)` with rows 1..k (v = 'r<id>', n = id). */
async function table(prefix: string, k = 5): Promise<string> {
  const t = uniqueName(prefix);
  created.push(t);
  await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40), n INT NOT NULL DEFAULT 0)`);
  if (k > 0) await directSql(`INSERT INTO ${t} SELECT seq, CONCAT('r', seq), seq FROM seq_1_to_${k}`);
  return t;
}

const all = (t: string): string => `SELECT id, v, n FROM ${t} ORDER BY id`;
const one = (t: string, id: number): string => `SELECT v FROM ${t} WHERE id = ${id}`;
const check = (reads: string[], write: () => Promise<unknown>) => expectWriteInvalidates(proxy, [writer, other], reads, write);

beforeAll(async () => {
  proxy = await startMysqlProxy();
  writer = await clients.open(proxy.port, { multipleStatements: true, infileStreamFactory: () => Readable.from([infile]) });
  other = await clients.open(proxy.port);
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const p of procedures) await directSql(`DROP PROCEDURE IF EXISTS ${p}`);
  await dropMyTables(...created, ...created.map((t) => `${t}_old`));
  await endMyDirect();
});

describe('DML through the proxy makes the next read fresh', () => {
  it('INSERT', async () => {
    const t = await table('wi_ins');
    await check([all(t), `SELECT COUNT(*) AS c FROM ${t}`], () => writer.query(`INSERT INTO ${t} VALUES (6, 'new', 6)`));
  });

  it('INSERT … SELECT', async () => {
    const src = await table('wi_src', 3);
    const t = await table('wi_inssel', 2);
    await check([all(t)], () => writer.query(`INSERT INTO ${t} SELECT id + 10, v, n FROM ${src}`));
  });

  it('INSERT … ON DUPLICATE KEY UPDATE', async () => {
    const t = await table('wi_odku');
    await check([one(t, 3), all(t)], () => writer.query(`INSERT INTO ${t} VALUES (3, 'dup', 0) ON DUPLICATE KEY UPDATE v = VALUES(v)`));
  });

  it('REPLACE', async () => {
    const t = await table('wi_repl');
    await check([one(t, 2)], () => writer.query(`REPLACE INTO ${t} VALUES (2, 'replaced', 2)`));
  });

  it('INSERT IGNORE that inserts', async () => {
    const t = await table('wi_ign');
    await check([all(t)], () => writer.query(`INSERT IGNORE INTO ${t} VALUES (1, 'ignored', 1), (9, 'kept', 9)`));
  });

  it('UPDATE', async () => {
    const t = await table('wi_upd');
    await check([one(t, 4), all(t)], () => writer.query(`UPDATE ${t} SET v = 'updated' WHERE id = 4`));
  });

  it('UPDATE … ORDER BY … LIMIT', async () => {
    const t = await table('wi_updlim');
    await check([all(t)], () => writer.query(`UPDATE ${t} SET n = n + 100 ORDER BY id DESC LIMIT 2`));
  });

  it('multi-table UPDATE (`UPDATE a JOIN b … SET a.x = …, b.y = …`): both tables', async () => {
    const a = await table('wi_mua');
    const b = await table('wi_mub');
    await check([one(a, 1), one(b, 1)], () => writer.query(`UPDATE ${a} JOIN ${b} ON ${a}.id = ${b}.id SET ${a}.v = 'a-upd', ${b}.v = 'b-upd' WHERE ${a}.id = 1`));
  });

  it('multi-table UPDATE that writes only the joined table', async () => {
    const a = await table('wi_mua2');
    const b = await table('wi_mub2');
    await check([all(b)], () => writer.query(`UPDATE ${a} AS x, ${b} AS y SET y.n = x.n * 7 WHERE x.id = y.id`));
  });

  it('DELETE', async () => {
    const t = await table('wi_del');
    await check([one(t, 5), all(t)], () => writer.query(`DELETE FROM ${t} WHERE id = 5`));
  });

  it('multi-table DELETE (`DELETE a, b FROM a JOIN b …`): both tables', async () => {
    const a = await table('wi_mda');
    const b = await table('wi_mdb');
    await check([all(a), all(b)], () => writer.query(`DELETE ${a}, ${b} FROM ${a} JOIN ${b} ON ${a}.id = ${b}.id WHERE ${a}.id <= 2`));
  });

  it('multi-table DELETE with USING and aliases', async () => {
    const a = await table('wi_mdu');
    const b = await table('wi_mdv', 2);
    await check([all(a)], () => writer.query(`DELETE FROM x USING ${a} AS x JOIN ${b} AS y ON x.id = y.id`));
  });

  it('DELETE … RETURNING (MariaDB)', async () => {
    const t = await table('wi_delret');
    await check([all(t)], () => writer.query(`DELETE FROM ${t} WHERE id = 1 RETURNING id, v`));
  });

  it('LOAD DATA LOCAL INFILE (mysql2 infileStreamFactory)', async () => {
    const t = await table('wi_load');
    infile = Buffer.from('10\tloaded\t10\n11\tloaded\t11\n');
    await check([all(t)], () => writer.query(`LOAD DATA LOCAL INFILE 'rows.tsv' INTO TABLE ${t}`));
  });

  it('LOAD DATA LOCAL INFILE … REPLACE', async () => {
    const t = await table('wi_loadr');
    infile = Buffer.from('1\treplaced-by-load\t1\n');
    await check([one(t, 1)], () => writer.query(`LOAD DATA LOCAL INFILE 'rows.tsv' REPLACE INTO TABLE ${t}`));
  });

  it('a write inside a multi-statement COM_QUERY', async () => {
    const t = await table('wi_multi');
    await check([one(t, 2)], () => writer.query(`SELECT 1; UPDATE ${t} SET v = 'multi' WHERE id = 2; SELECT 2`));
  });
});

describe('prepared-statement writes make the next read fresh', () => {
  it('INSERT, UPDATE and DELETE through execute()', async () => {
    const t = await table('wi_prep');
    await check([all(t)], () => writer.execute(`INSERT INTO ${t} VALUES (?, ?, ?)`, [7, 'p-ins', 7]));
    await check([one(t, 2), all(t)], () => writer.execute(`UPDATE ${t} SET v = ? WHERE id = ?`, ['p-upd', 2]));
    await check([all(t)], () => writer.execute(`DELETE FROM ${t} WHERE id = ?`, [3]));
    await check([one(t, 4)], () => writer.execute(`INSERT INTO ${t} VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = ?`, [4, 'x', 4, 'p-odku']));
  });

  it('the same prepared UPDATE executed twice invalidates both times', async () => {
    const t = await table('wi_prep2');
    await check([one(t, 1)], () => writer.execute(`UPDATE ${t} SET v = ? WHERE id = ?`, ['first', 1]));
    await check([one(t, 1)], () => writer.execute(`UPDATE ${t} SET v = ? WHERE id = ?`, ['second', 1]));
  });
});

describe('DDL and table-level statements make the next read fresh', () => {
  it('TRUNCATE', async () => {
    const t = await table('wi_trunc');
    await check([all(t)], () => writer.query(`TRUNCATE TABLE ${t}`));
  });

  it('RENAME TABLE (a swap: the name now means the other table)', async () => {
    const t = await table('wi_ren');
    const next = await table('wi_rennew', 2);
    await directSql(`UPDATE ${next} SET v = 'from-new-table'`);
    await check([all(t)], () => writer.query(`RENAME TABLE ${t} TO ${t}_old, ${next} TO ${t}`));
  });

  it('ALTER TABLE … RENAME TO (the old name now reads another table)', async () => {
    const t = await table('wi_altren');
    const next = await table('wi_altnew', 1);
    await check([all(t)], () => writer.query(`ALTER TABLE ${t} RENAME TO ${t}_old; ALTER TABLE ${next} RENAME TO ${t}`));
  });

  it('ALTER TABLE ADD COLUMN with a default changes SELECT *', async () => {
    const t = await table('wi_alter');
    await check([`SELECT * FROM ${t} ORDER BY id`], () => writer.query(`ALTER TABLE ${t} ADD COLUMN extra INT NOT NULL DEFAULT 42`));
  });

  it('ALTER TABLE MODIFY changes the values read (INT to DECIMAL)', async () => {
    const t = await table('wi_modify');
    await check([all(t)], () => writer.query(`ALTER TABLE ${t} MODIFY n DECIMAL(6,1) NOT NULL`));
  });

  it('DROP TABLE then CREATE TABLE under the same name', async () => {
    const t = await table('wi_drop');
    await check([all(t)], async () => {
      await writer.query(`DROP TABLE ${t}`);
      await writer.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40), n INT NOT NULL DEFAULT 0)`);
      await writer.query(`INSERT INTO ${t} VALUES (1, 'recreated', 1)`);
    });
  });

  it('CREATE OR REPLACE TABLE … SELECT', async () => {
    const t = await table('wi_corepl');
    await check([all(t)], () => writer.query(`CREATE OR REPLACE TABLE ${t} AS SELECT 1 AS id, 'replaced' AS v, 0 AS n`));
  });

  it('CALL of a procedure that writes the table', async () => {
    const t = await table('wi_call');
    const p = uniqueName('wi_proc');
    procedures.push(p);
    await directSql(`CREATE PROCEDURE ${p}(IN k INT) MODIFIES SQL DATA UPDATE ${t} SET v = CONCAT('called-', k) WHERE id = k`);
    await check([one(t, 2), all(t)], () => writer.query(`CALL ${p}(2)`));
    // A procedure may change session state, so the proxy may stop caching for
    // the session that called it: the prepared CALL gets connections of its own.
    const [w2, o2] = [await clients.open(proxy.port), await clients.open(proxy.port)];
    await expectWriteInvalidates(proxy, [w2, o2], [one(t, 3)], () => w2.execute(`CALL ${p}(?)`, [3]));
  });
});
