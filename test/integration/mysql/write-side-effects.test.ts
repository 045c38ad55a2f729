// Writes whose effects reach tables the statement does not name: foreign
// keys with ON DELETE/UPDATE CASCADE and SET NULL, triggers, views over a
// written table, and a stored function called from a SELECT that writes.
// After each, through the proxy, every affected read equals the database.

import { afterAll, beforeAll, describe, it } from 'vitest';
import { uniqueName } from '../../helpers/db.js';
import { directSql, endMyDirect, type MyConnection } from '../../helpers/mysql.js';
import { expectWriteInvalidates, MyClients } from '../../helpers/mysql-checks.js';
import { startMysqlProxy, type TestProxy } from '../../helpers/proxy.js';

let proxy: TestProxy;
const clients = new MyClients();
let writer: MyConnection;
let other: MyConnection;
const drops: string[] = []; // statements for afterAll, run in reverse order

const name = (prefix: string): string => uniqueName(prefix);
const check = (reads: string[], write: () => Promise<unknown>) => expectWriteInvalidates(proxy, [writer, other], reads, write);

beforeAll(async () => {
  proxy = await startMysqlProxy();
  writer = await clients.open(proxy.port);
  other = await clients.open(proxy.port);
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  for (const d of drops.reverse()) await directSql(d).catch(() => {});
  await endMyDirect();
});

/** parent(id) and child(id, parent_id → parent.id with `action`), 3 parents with 2 children each. */
async function parentChild(action: string): Promise<{ parent: string; child: string }> {
  const parent = name('se_parent');
  const child = name('se_child');
  drops.push(`DROP TABLE IF EXISTS ${parent}`, `DROP TABLE IF EXISTS ${child}`);
  await directSql(`CREATE TABLE ${parent} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB`);
  await directSql(
    `CREATE TABLE ${child} (id INT PRIMARY KEY, parent_id INT NULL, FOREIGN KEY (parent_id) REFERENCES ${parent}(id) ${action}) ENGINE=InnoDB`,
  );
  await directSql(`INSERT INTO ${parent} VALUES (1, 'p1'), (2, 'p2'), (3, 'p3')`);
  await directSql(`INSERT INTO ${child} SELECT seq, (seq + 1) DIV 2 FROM seq_1_to_6`);
  return { parent, child };
}

describe('foreign keys', () => {
  it('ON DELETE CASCADE: deleting a parent makes reads of the child fresh', async () => {
    const { parent, child } = await parentChild('ON DELETE CASCADE');
    await check([`SELECT id, parent_id FROM ${child} ORDER BY id`, `SELECT COUNT(*) AS c FROM ${child} WHERE parent_id = 2`], () =>
      writer.query(`DELETE FROM ${parent} WHERE id = 2`),
    );
  });

  it('ON UPDATE CASCADE: changing a parent key makes reads of the child fresh', async () => {
    const { parent, child } = await parentChild('ON UPDATE CASCADE');
    await check([`SELECT id, parent_id FROM ${child} ORDER BY id`], () => writer.query(`UPDATE ${parent} SET id = 30 WHERE id = 3`));
  });

  it('ON DELETE SET NULL: deleting a parent makes reads of the child fresh', async () => {
    const { parent, child } = await parentChild('ON DELETE SET NULL');
    await check([`SELECT id, parent_id FROM ${child} ORDER BY id`], () => writer.query(`DELETE FROM ${parent} WHERE id = 1`));
  });

  it('a cascade two levels deep', async () => {
    const { parent, child } = await parentChild('ON DELETE CASCADE');
    const grandchild = name('se_grand');
    drops.push(`DROP TABLE IF EXISTS ${grandchild}`);
    await directSql(`CREATE TABLE ${grandchild} (id INT PRIMARY KEY, child_id INT, FOREIGN KEY (child_id) REFERENCES ${child}(id) ON DELETE CASCADE)`);
    await directSql(`INSERT INTO ${grandchild} SELECT seq, seq FROM seq_1_to_6`);
    await check([`SELECT id FROM ${grandchild} ORDER BY id`], () => writer.query(`DELETE FROM ${parent} WHERE id = 3`));
  });
});

describe('triggers, views and functions', () => {
  it('a trigger that writes another table: reads of that table are fresh after the triggering INSERT', async () => {
    const t = name('se_trig_t');
    const log = name('se_trig_log');
    const trig = name('se_trig');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP TABLE IF EXISTS ${log}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE ${log} (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))`);
    await directSql(`CREATE TRIGGER ${trig} AFTER INSERT ON ${t} FOR EACH ROW INSERT INTO ${log} (what) VALUES (CONCAT('inserted ', NEW.id))`);
    await check([`SELECT id, what FROM ${log} ORDER BY id`], () => writer.query(`INSERT INTO ${t} VALUES (1, 'x')`));
    await check([`SELECT COUNT(*) AS c FROM ${log}`], () => writer.execute(`INSERT INTO ${t} VALUES (?, ?)`, [2, 'y']));
  });

  it('a view over a written table: reads of the view are fresh', async () => {
    const t = name('se_view_t');
    const v = name('se_view');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP VIEW IF EXISTS ${v}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${t} VALUES (1, 'a'), (2, 'b')`);
    await directSql(`CREATE VIEW ${v} AS SELECT id, UPPER(v) AS big FROM ${t} WHERE id < 100`);
    await expectWriteInvalidates(proxy, [writer, other], [`SELECT id, big FROM ${v} ORDER BY id`], () => writer.query(`UPDATE ${t} SET v = 'changed' WHERE id = 2`), [
      'relation-kind',
    ]);
  });

  it('a SELECT calling a stored function that writes: reads of the written table are fresh', async () => {
    const t = name('se_fn_t');
    const fn = name('se_fn');
    drops.push(`DROP TABLE IF EXISTS ${t}`, `DROP FUNCTION IF EXISTS ${fn}`);
    await directSql(`CREATE TABLE ${t} (id INT PRIMARY KEY, n INT); INSERT INTO ${t} VALUES (1, 0)`);
    await directSql(`CREATE FUNCTION ${fn}() RETURNS INT MODIFIES SQL DATA BEGIN UPDATE ${t} SET n = n + 1 WHERE id = 1; RETURN 1; END`);
    // A stored function may also change session settings: the session calling
    // it stops caching, so the calls come from a connection of their own.
    const caller = await clients.open(proxy.port);
    await check([`SELECT n FROM ${t} WHERE id = 1`], () => caller.query(`SELECT ${fn}() AS r`));
    await check([`SELECT n FROM ${t} WHERE id = 1`], () => caller.query(`SELECT ${fn}() AS r`));
  });
});
