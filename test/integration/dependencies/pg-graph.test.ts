// Issue 7 on PostgreSQL: a write changes more than the table it names. For
// each kind of dependency a read through the dependant (view, nested view,
// parent, referencing table, trigger target, function) is first answered
// from cache (a counted hit: the test could fail), then a write through the
// proxy reaches the dependency, and the next read through the proxy must
// equal the database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { warm } from '../../helpers/compare.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';
import { Clients, expectSameAsDatabase, rows, sleep } from '../../helpers/stale-checks.js';

const P = uniqueName('dg'); // every object here starts with it
const APP = `${P}_app`;

let proxy: TestProxy;
const clients = new Clients();
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  await directQuery(`
    CREATE TABLE ${P}_t (id int PRIMARY KEY, v int);
    INSERT INTO ${P}_t SELECT g, g FROM generate_series(1, 5) g;
    CREATE TABLE ${P}_u (id int PRIMARY KEY, w text);
    INSERT INTO ${P}_u VALUES (1, 'one'), (2, 'two');
    CREATE VIEW ${P}_v AS SELECT id, v FROM ${P}_t WHERE v < 100;
    CREATE VIEW ${P}_vv AS SELECT id, v * 2 AS v2 FROM ${P}_v;
    CREATE VIEW ${P}_vj AS SELECT t.id, t.v, u.w FROM ${P}_t t JOIN ${P}_u u USING (id);
    CREATE VIEW ${P}_vnow AS SELECT id, now() AS at FROM ${P}_t;

    CREATE TABLE ${P}_p (id int, region text, v int) PARTITION BY LIST (region);
    CREATE TABLE ${P}_p_eu PARTITION OF ${P}_p FOR VALUES IN ('eu');
    CREATE TABLE ${P}_p_us PARTITION OF ${P}_p FOR VALUES IN ('us');
    INSERT INTO ${P}_p VALUES (1, 'eu', 1), (2, 'us', 2);
    CREATE TABLE ${P}_p_asia (id int, region text, v int);
    INSERT INTO ${P}_p_asia VALUES (3, 'asia', 3);

    CREATE TABLE ${P}_ip (id int, v int);
    CREATE TABLE ${P}_ic (extra text) INHERITS (${P}_ip);
    INSERT INTO ${P}_ip VALUES (1, 1);
    INSERT INTO ${P}_ic VALUES (2, 2, 'child');

    CREATE TABLE ${P}_fa (id int PRIMARY KEY);
    CREATE TABLE ${P}_fb (id int PRIMARY KEY, a int REFERENCES ${P}_fa ON DELETE CASCADE);
    CREATE TABLE ${P}_fc (id int PRIMARY KEY, b int REFERENCES ${P}_fb ON DELETE CASCADE);
    CREATE VIEW ${P}_fcv AS SELECT count(*)::int AS n FROM ${P}_fc;
    INSERT INTO ${P}_fa VALUES (1), (2);
    INSERT INTO ${P}_fb VALUES (10, 1), (20, 2);
    INSERT INTO ${P}_fc VALUES (100, 10), (200, 20);

    CREATE TABLE ${P}_orders (id int PRIMARY KEY, amount int);
    CREATE TABLE ${P}_audit (op text, id int);
    CREATE FUNCTION ${P}_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${P}_audit VALUES (TG_OP, NEW.id);
        RETURN NEW;
      END $$;
    CREATE TRIGGER ${P}_audit_trg AFTER INSERT OR UPDATE ON ${P}_orders FOR EACH ROW EXECUTE FUNCTION ${P}_audit_fn();
    CREATE TABLE ${P}_other (v int);
    INSERT INTO ${P}_other VALUES (1);

    CREATE TABLE ${P}_dyn (id int);
    CREATE TABLE ${P}_dyn_log (n int);
    CREATE FUNCTION ${P}_dyn_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        EXECUTE 'INSERT INTO ' || quote_ident('${P}_dyn_log') || ' VALUES (1)';
        RETURN NEW;
      END $$;
    CREATE TRIGGER ${P}_dyn_trg AFTER INSERT ON ${P}_dyn FOR EACH ROW EXECUTE FUNCTION ${P}_dyn_fn();

    CREATE TABLE ${P}_late (id int);
    CREATE TABLE ${P}_late_log (n int);
    CREATE FUNCTION ${P}_late_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO ${P}_late_log VALUES (NEW.id); RETURN NEW; END $$;

    CREATE TABLE ${P}_f (id int, v int);
    INSERT INTO ${P}_f VALUES (1, 10);
    CREATE FUNCTION ${P}_total_sql() RETURNS bigint STABLE LANGUAGE sql AS $$ SELECT sum(v) FROM ${P}_f $$;
    CREATE FUNCTION ${P}_total_atomic() RETURNS bigint STABLE LANGUAGE sql BEGIN ATOMIC SELECT sum(v) FROM ${P}_f; END;
    CREATE FUNCTION ${P}_total_plpgsql(k int) RETURNS bigint STABLE LANGUAGE plpgsql AS $$
      DECLARE s bigint;
      BEGIN
        SELECT sum(v) INTO s FROM ${P}_f WHERE id >= k;
        RETURN coalesce(s, 0);
      END $$;
    CREATE FUNCTION ${P}_total_dyn() RETURNS bigint STABLE LANGUAGE plpgsql AS $$
      DECLARE s bigint;
      BEGIN EXECUTE 'SELECT sum(v) FROM ${P}_f' INTO s; RETURN s; END $$;

    CREATE TABLE ${P}_mv_base (v int);
    INSERT INTO ${P}_mv_base VALUES (1);
    CREATE MATERIALIZED VIEW ${P}_mv AS SELECT sum(v)::int AS s FROM ${P}_mv_base;

    CREATE SCHEMA ${APP};
    CREATE TABLE ${APP}.${P}_s (id int, v text);
    INSERT INTO ${APP}.${P}_s VALUES (1, 'app');
    CREATE VIEW ${APP}.${P}_sv AS SELECT id, v FROM ${APP}.${P}_s;

    CREATE TABLE ${P}_ext (id int, v int);
    CREATE TABLE ${P}_ext_totals (n int);
    INSERT INTO ${P}_ext_totals VALUES (0);
  `);
  proxy = await startProxy({ dependencies: [{ writes: `${P}_ext`, invalidates: [`${P}_ext_totals`] }] });
  c = await clients.open(proxy.url());
  d = await clients.direct();
});

afterAll(async () => {
  await clients.closeAll();
  await proxy?.stop();
  await directQuery(`DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname LIKE '${P}%' AND c.relkind IN ('r','p') AND NOT c.relispartition LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I CASCADE', r.nspname, r.relname);
      END LOOP;
    END $$`);
  await directQuery(`DROP SCHEMA IF EXISTS ${APP} CASCADE`);
  await directQuery(`DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT oid::regprocedure AS f FROM pg_proc WHERE proname LIKE '${P}%' LOOP EXECUTE 'DROP FUNCTION ' || r.f; END LOOP;
    END $$`);
  await endDirect();
});

/** A counted hit, or the test fails: only a cached read can go stale. */
async function hit(sql: string, via: pg.Client = c): Promise<{ fields: string[]; rows: unknown[] }> {
  try {
    return await warm(proxy, () => rows(via, sql));
  } catch (err) {
    const deps = (await proxy.stats()) as unknown as { dependencies?: unknown };
    throw new Error(`${(err as Error).message}; dependencies: ${JSON.stringify(deps.dependencies)}`);
  }
}

/** Cache every read, run `write` through the proxy, then each read equals
 * the database and shows the change. */
async function invalidates(reads: string[], write: string, via: pg.Client = c, truth: pg.Client = d): Promise<void> {
  const before = [];
  for (const sql of reads) before.push(await hit(sql, via));
  await c.query(write);
  for (const [i, sql] of reads.entries()) {
    await expectSameAsDatabase(via, truth, sql, `fresh after: ${write}`);
    expect(await rows(via, sql), `the write changed ${sql}`).not.toEqual(before[i]);
  }
}

async function hitsOf(sql: string): Promise<number> {
  const before = (await proxy.stats()).hits;
  await rows(c, sql);
  return (await proxy.stats()).hits - before;
}

describe('views', () => {
  it('a write to the base table invalidates a read of the view', () =>
    invalidates([`SELECT id, v FROM ${P}_v ORDER BY id`], `UPDATE ${P}_t SET v = v + 1 WHERE id = 1`));

  it('a nested view (a view over a view) follows the write down two levels', () =>
    invalidates([`SELECT id, v2 FROM ${P}_vv ORDER BY id`], `UPDATE ${P}_t SET v = v + 1 WHERE id = 2`));

  it('a view over a join: a write to either table', async () => {
    await invalidates([`SELECT * FROM ${P}_vj ORDER BY id`], `UPDATE ${P}_u SET w = 'uno' WHERE id = 1`);
    await invalidates([`SELECT * FROM ${P}_vj ORDER BY id`], `UPDATE ${P}_t SET v = v + 1 WHERE id = 2`);
  });

  it('a write through an auto-updatable view invalidates reads of the view and of its base table', () =>
    invalidates([`SELECT id, v FROM ${P}_v ORDER BY id`, `SELECT id, v FROM ${P}_t ORDER BY id`], `UPDATE ${P}_v SET v = v + 10 WHERE id = 3`));

  it('a view whose own query calls now() is never cached', async () => {
    await rows(c, `SELECT id FROM ${P}_vnow WHERE at IS NOT NULL ORDER BY id`);
    expect(await hitsOf(`SELECT id FROM ${P}_vnow WHERE at IS NOT NULL ORDER BY id`)).toBe(0);
  });

  it('CREATE OR REPLACE VIEW through the proxy: the cached read shows the new definition', async () => {
    const sql = `SELECT * FROM ${P}_v ORDER BY id`;
    await hit(sql);
    await c.query(`CREATE OR REPLACE VIEW ${P}_v AS SELECT id, v FROM ${P}_t WHERE v < 3`);
    await expectSameAsDatabase(c, d, sql, 'the view was replaced');
    await invalidates([sql], `UPDATE ${P}_t SET v = 0 WHERE id = 5`);
  });

  it('a materialized view changes on REFRESH only', async () => {
    const sql = `SELECT s FROM ${P}_mv`;
    await hit(sql);
    await c.query(`INSERT INTO ${P}_mv_base VALUES (10)`);
    await expectSameAsDatabase(c, d, sql, 'not refreshed yet: still the old sum');
    expect(await hitsOf(sql), 'a write to its base table does not invalidate it').toBe(1);
    await invalidates([sql], `REFRESH MATERIALIZED VIEW ${P}_mv`);
  });

  it('schema-qualified writes reach an unqualified read of a view under another search_path', async () => {
    const reader = await clients.open(proxy.url(), { options: `-c search_path=${APP},public` });
    const truth = await clients.direct({ options: `-c search_path=${APP},public` });
    const sql = `SELECT id, v FROM ${P}_sv`;
    await hit(sql, reader);
    await c.query(`UPDATE ${APP}.${P}_s SET v = 'app 2'`);
    await expectSameAsDatabase(reader, truth, sql, `${APP}.${P}_s written under the default search_path`);
  });
});

describe('partitions and inheritance', () => {
  it('a write to a partition invalidates a read of the partitioned parent', () =>
    invalidates([`SELECT * FROM ${P}_p ORDER BY id`], `INSERT INTO ${P}_p_us VALUES (20, 'us', 20)`));

  it('a write through the parent invalidates a read of the partition it lands in', () =>
    invalidates([`SELECT * FROM ${P}_p_eu ORDER BY id`], `INSERT INTO ${P}_p VALUES (10, 'eu', 10)`));

  it('a partition attached after the cache was warm shows up in the parent; detached, it leaves', async () => {
    await invalidates([`SELECT * FROM ${P}_p ORDER BY id`], `ALTER TABLE ${P}_p ATTACH PARTITION ${P}_p_asia FOR VALUES IN ('asia')`);
    await invalidates([`SELECT * FROM ${P}_p ORDER BY id`, `SELECT * FROM ${P}_p_asia ORDER BY id`], `INSERT INTO ${P}_p VALUES (30, 'asia', 30)`);
    await invalidates([`SELECT * FROM ${P}_p ORDER BY id`], `ALTER TABLE ${P}_p DETACH PARTITION ${P}_p_asia`);
  });

  it('old-style INHERITS: a write to the child invalidates the parent, a write through the parent the child', async () => {
    await invalidates([`SELECT id, v FROM ${P}_ip ORDER BY id`], `INSERT INTO ${P}_ic VALUES (3, 3, 'child')`);
    await invalidates([`SELECT id, v, extra FROM ${P}_ic ORDER BY id`], `UPDATE ${P}_ip SET v = v + 1`);
  });
});

describe('foreign-key actions', () => {
  it('ON DELETE CASCADE two levels deep reaches the grandchild and a view over it', () =>
    invalidates([`SELECT id, b FROM ${P}_fc ORDER BY id`, `SELECT n FROM ${P}_fcv`], `DELETE FROM ${P}_fa WHERE id = 1`));
});

describe('triggers', () => {
  it('a PL/pgSQL trigger that inserts into an audit table: the audit read is fresh, unrelated tables stay cached', async () => {
    const unrelated = `SELECT v FROM ${P}_other`;
    await hit(unrelated);
    await invalidates([`SELECT op, id FROM ${P}_audit ORDER BY id, op`], `INSERT INTO ${P}_orders VALUES (1, 100)`);
    expect(await hitsOf(unrelated), 'the trigger body was analysed: only what it writes was invalidated').toBe(1);
  });

  it('a trigger running dynamic SQL: a write to its table invalidates everything in the database', async () => {
    const unrelated = `SELECT v FROM ${P}_other`;
    await invalidates([`SELECT count(*)::int AS n FROM ${P}_dyn_log`], `INSERT INTO ${P}_dyn VALUES (1)`);
    await hit(unrelated);
    await c.query(`INSERT INTO ${P}_dyn VALUES (2)`);
    expect(await hitsOf(unrelated), 'the whole database was invalidated').toBe(0);
    const stats = await proxy.stats();
    expect(JSON.stringify(stats)).toContain('dynamic SQL');
  });

  it('a trigger created through the proxy after start-up is followed at once', async () => {
    const sql = `SELECT count(*)::int AS n FROM ${P}_late_log`;
    await c.query(`INSERT INTO ${P}_late VALUES (1)`);
    await hit(sql);
    await c.query(`CREATE TRIGGER ${P}_late_trg AFTER INSERT ON ${P}_late FOR EACH ROW EXECUTE FUNCTION ${P}_late_fn()`);
    await invalidates([sql], `INSERT INTO ${P}_late VALUES (2)`);
    await c.query(`DROP TRIGGER ${P}_late_trg ON ${P}_late`);
  });
});

describe('functions called in a SELECT', () => {
  it.each(['sql', 'atomic'])('a STABLE %s function reading a table is cached and invalidated by writes to that table', (kind) =>
    invalidates([`SELECT ${P}_total_${kind}() AS total`], `UPDATE ${P}_f SET v = v + 1`));

  it('a STABLE PL/pgSQL function: the same', () => invalidates([`SELECT ${P}_total_plpgsql(1) AS total`], `INSERT INTO ${P}_f VALUES (2, 5)`));

  it('a function whose body cannot be analysed (EXECUTE) is never cached, and says why', async () => {
    const sql = `SELECT ${P}_total_dyn() AS total`;
    await rows(c, sql);
    expect(await hitsOf(sql)).toBe(0);
    const stats = await proxy.stats();
    expect(JSON.stringify(stats.bypass_reasons)).toContain('user-function');
  });
});

describe('dependencies: in the config', () => {
  it('a write to the edge\'s table invalidates what the edge names (changed where the catalog cannot see)', async () => {
    const sql = `SELECT n FROM ${P}_ext_totals`;
    await hit(sql);
    await d.query(`UPDATE ${P}_ext_totals SET n = n + 1`); // an external job, behind the proxy
    await c.query(`INSERT INTO ${P}_ext VALUES (1, 1)`);
    await expectSameAsDatabase(c, d, sql, 'the YAML edge invalidated it');
  });
});

describe('DDL made behind the proxy', () => {
  it('a trigger and a view created directly, after the graph was read, are safe before any refresh', async () => {
    await rows(c, `SELECT v FROM ${P}_other`); // the graph is loaded by now
    await directQuery(`CREATE TABLE ${P}_nb (id int); CREATE TABLE ${P}_nb_log (n int); CREATE VIEW ${P}_nb_v AS SELECT count(*)::int AS n FROM ${P}_nb;
      CREATE FUNCTION ${P}_nb_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${P}_nb_log VALUES (1); RETURN NEW; END $$;
      CREATE TRIGGER ${P}_nb_trg AFTER INSERT ON ${P}_nb FOR EACH ROW EXECUTE FUNCTION ${P}_nb_fn()`);
    const log = `SELECT count(*)::int AS n FROM ${P}_nb_log`;
    const view = `SELECT n FROM ${P}_nb_v`;
    await rows(c, log);
    await rows(c, view);
    await rows(c, log);
    await rows(c, view);
    await c.query(`INSERT INTO ${P}_nb VALUES (1)`);
    await expectSameAsDatabase(c, d, log, 'the new trigger wrote it');
    await expectSameAsDatabase(c, d, view, 'the new view reads the written table');
  });

  it('a trigger added directly on the database is followed after dependencies.refresh', async () => {
    const quick = await startProxy({ dependencyRefreshMs: 300 });
    const via = await clients.open(quick.url());
    try {
      await directQuery(`CREATE TABLE ${P}_bh (id int); CREATE TABLE ${P}_bh_log (n int)`);
      const sql = `SELECT count(*)::int AS n FROM ${P}_bh_log`;
      await warm(quick, () => rows(via, sql));
      await via.query(`INSERT INTO ${P}_bh VALUES (1)`);
      await directQuery(`CREATE FUNCTION ${P}_bh_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${P}_bh_log VALUES (1); RETURN NEW; END $$;
        CREATE TRIGGER ${P}_bh_trg AFTER INSERT ON ${P}_bh FOR EACH ROW EXECUTE FUNCTION ${P}_bh_fn()`);
      await sleep(400);
      await via.query(`INSERT INTO ${P}_bh VALUES (2)`);
      await expectSameAsDatabase(via, d, sql, 'the refreshed graph knows the trigger');
    } finally {
      await quick.stop();
    }
  });
});

describe('explain with the live graph', () => {
  const explain = async (sql: string): Promise<{ invalidates: unknown; read_tables: string[] | null; dependency_graph: string; cacheable: boolean }> => {
    const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/explain?database=test&sql=${encodeURIComponent(sql)}`);
    expect(res.status).toBe(200);
    return (await res.json()) as { invalidates: unknown; read_tables: string[] | null; dependency_graph: string; cacheable: boolean };
  };

  it('shows the closure of a write and the tables under a read', async () => {
    await rows(c, `SELECT id FROM ${P}_vv`); // the graph is loaded by now
    const w = await explain(`UPDATE ${P}_t SET v = 1 WHERE id = 1`);
    expect(w.dependency_graph).toMatch(/^database test, read \d+ s ago$/);
    expect(w.invalidates).toEqual(expect.arrayContaining([`${P}_t`, `${P}_v`, `${P}_vv`, `${P}_vj`]));
    const r = await explain(`SELECT * FROM ${P}_vv`);
    expect(r.cacheable).toBe(true);
    expect(r.read_tables).toEqual(expect.arrayContaining([`${P}_vv`, `${P}_v`, `${P}_t`]));
    const t = await explain(`INSERT INTO ${P}_orders VALUES (9, 9)`);
    expect(t.invalidates).toEqual(expect.arrayContaining([`${P}_orders`, `${P}_audit`]));
    expect(await explain(`INSERT INTO ${P}_dyn VALUES (9)`)).toMatchObject({ invalidates: 'the whole database' });
  });
});
