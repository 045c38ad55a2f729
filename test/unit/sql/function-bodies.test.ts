import { beforeAll, describe, expect, it } from 'vitest';
import { loadPostgresParser } from '../../../src/sql/postgres-parser.js';
import { functionReads, readGraphRows, writesOf } from '../../../src/postgres/dependency-lookup.js';
import { functionBodyStatements } from '../../../src/sql/postgres-parser.js';

beforeAll(() => loadPostgresParser());

/** The statements, or the test fails with why the body was refused. */
function analysed(x: ReturnType<typeof functionBodyStatements>) {
  if (typeof x === 'string') throw new Error(`refused: ${x}`);
  return x;
}

const plpgsql = (body: string, returns = 'trigger') => `CREATE OR REPLACE FUNCTION public.f() RETURNS ${returns} LANGUAGE plpgsql AS $function$ ${body} $function$`;

describe('function bodies (pg_get_functiondef text)', () => {
  it('a PL/pgSQL trigger: what it writes, assignments and conditions read as SELECTs', () => {
    const statements = functionBodyStatements(
      'plpgsql',
      plpgsql(`DECLARE n int; BEGIN
        n := (SELECT count(*) FROM counted);
        IF n > 3 THEN UPDATE stats SET c = n; END IF;
        INSERT INTO audit VALUES (TG_OP, NEW.id);
        RETURN NEW; END`),
    );
    expect(writesOf(analysed(statements))).toEqual(['stats', 'audit']);
  });

  it('dynamic SQL, a call of a user function and DDL make a body opaque', () => {
    expect(functionBodyStatements('plpgsql', plpgsql(`BEGIN EXECUTE 'DELETE FROM x'; RETURN NEW; END`))).toMatch(/dynamic SQL/);
    expect(writesOf(analysed(functionBodyStatements('plpgsql', plpgsql('BEGIN PERFORM other_fn(); RETURN NEW; END'))))).toMatch(/calls other_fn/);
    expect(writesOf(analysed(functionBodyStatements('plpgsql', plpgsql('BEGIN CREATE TEMP TABLE t (a int); RETURN NEW; END'))))).toMatch(/DDL/);
    expect(functionBodyStatements('plpython3u', 'CREATE FUNCTION f() …')).toBe('it is written in plpython3u');
  });

  it('a STABLE SQL function (quoted body, BEGIN ATOMIC, RETURN) reads its tables', () => {
    expect(functionReads('sql', `CREATE FUNCTION public.f() RETURNS bigint LANGUAGE sql STABLE AS $function$ SELECT sum(v) FROM a $function$`)).toEqual(['a']);
    expect(functionReads('sql', 'CREATE FUNCTION public.f() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT sum(v) FROM b; END')).toEqual(['b']);
    expect(functionReads('sql', 'CREATE FUNCTION public.f() RETURNS bigint LANGUAGE sql STABLE RETURN (SELECT max(v) FROM c)')).toEqual(['c']);
  });

  it('a function that reads now() or writes cannot be cached', () => {
    expect(functionReads('sql', `CREATE FUNCTION public.f() RETURNS timestamptz LANGUAGE sql STABLE AS $function$ SELECT now() FROM a $function$`)).toMatch(/volatile-function/);
    expect(functionReads('sql', `CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $function$ DELETE FROM a $function$`)).toMatch(/write/);
  });

  it('graph rows: a view over now() is refused, a trigger with EXECUTE is opaque, edges are kept', () => {
    const e = readGraphRows([
      ['gk', 'v', 'v', null, null],
      ['gv', 'v', ' SELECT now() AS at FROM t;', null, null],
      ['ge', 'v', 't', null, null],
      ['gi', 'p1', 'p', null, null],
      ['gf', 'a', 'b', null, null],
      ['gt', 'orders', 'trg', 'plpgsql', plpgsql(`BEGIN EXECUTE 'x'; RETURN NEW; END`)],
      ['gr', 'ru', 'ru_also', null, null],
    ]);
    expect(e.viewRefusals.get('v')).toMatch(/volatile/);
    expect([...(e.viewReads.get('v') ?? [])]).toEqual(['t']);
    expect([...(e.parents.get('p1') ?? [])]).toEqual(['p']);
    expect([...(e.cascades.get('a') ?? [])]).toEqual(['b']);
    expect(e.opaqueWrites.get('orders')).toMatch(/dynamic SQL/);
    expect(e.opaqueWrites.get('ru')).toBe('rule ru_also on ru');
  });
});
