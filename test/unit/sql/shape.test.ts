// shapeOf: shapes (what stats, rules and the classification memo group by),
// key texts (what the cache key holds: equal only for texts the server treats
// identically), hints and the clock-literal flag.

import { loadModule, scanSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { shapeOf } from '../../../src/sql/shape.js';
import { toStandardStrings } from '../../../src/sql/standard-strings.js';

const pg = (sql: string, backslashEscapes?: boolean) =>
  shapeOf(sql, 'postgres', backslashEscapes === undefined ? undefined : { backslashEscapes });
const my = (sql: string) => shapeOf(sql, 'mysql');

describe('shape: literals fold to ? and nothing else does', () => {
  const rows: [string, string][] = [
    ["SELECT * FROM users WHERE id = 42 AND name = 'bob'", 'SELECT * FROM users WHERE id = ? AND name = ?'],
    ['select 1.5, .5, 1e10, 2.5E-3, 7', 'select ?, ?, ?, ?, ?'],
    ["select E'a\\'b', B'1010', X'ff', U&'d\\0061t', N'nat'", 'select ?, ?, ?, ?, ?'],
    ['select $$a $$, $tag$ $x$ $tag$, $1, $22', 'select ?, ?, $1, $22'],
    ['SELECT true, false, null FROM t', 'SELECT true, false, null FROM t'],
    ['SELECT "Users"."Id", "a""b" FROM "Users"', 'SELECT "Users"."Id", "a""b" FROM "Users"'],
    ['select t1.c2, x$y, _z9 from t1', 'select t1.c2, x$y, _z9 from t1'],
    ["SELECT 'x'::date, CAST('1' AS int), interval '1 day'", 'SELECT ?::date, CAST(? AS int), interval ?'],
    ['select 1..2', 'select ?.?'],
    ["select 'it''s', 'x'''", 'select ?, ?'],
    ['select "a""b"', 'select "a""b"'],
  ];
  it.each(rows)('%j has shape %j', (sql, shape) => {
    expect(pg(sql).shape).toBe(shape);
  });
});

describe('shape: IN lists of literals fold to IN (?...) whatever their length', () => {
  const rows: [string, string][] = [
    ['select * from t where id in (1)', 'select * from t where id in (?...)'],
    ['select * from t where id IN (1, 2, 3, 4, 5, 6)', 'select * from t where id IN (?...)'],
    ["select * from t where s in('a','b')", 'select * from t where s in(?...)'],
    ['select * from t where id not in ( -1 , +2 )', 'select * from t where id not in (?...)'],
    ['select * from t where id in ($1, $2)', 'select * from t where id in ($1, $2)'],
    ['select * from t where id in (1, a)', 'select * from t where id in (?, a)'],
    ['select * from t where id in (select 1)', 'select * from t where id in (select ?)'],
    ['select * from t where min(1, 2) = 1', 'select * from t where min(?, ?) = ?'],
    ['select * from t where id in (1, /* c */ 2)', 'select * from t where id in (?...)'],
    ["select * from t where s in ('a'\n'b', 'c')", 'select * from t where s in (?...)'],
  ];
  it.each(rows)('%j has shape %j', (sql, shape) => {
    expect(pg(sql).shape).toBe(shape);
  });

  it('two IN lists of different lengths share one shape but keep their own key text', () => {
    const a = pg('SELECT * FROM t WHERE id IN (1, 2)');
    const b = pg('SELECT * FROM t WHERE id IN (1, 2, 3)');
    expect(a.shape).toBe(b.shape);
    expect(a.keyText).not.toBe(b.keyText);
  });
});

describe('key text: comments and whitespace go, literals stay byte-exact', () => {
  const rows: [string, string][] = [
    ['  SELECT   *\n\tFROM t  ;  ', 'SELECT * FROM t'],
    ['SELECT/**/1', 'SELECT 1'],
    ['SELECT/* a */-/* b */1', 'SELECT - 1'],
    ['select 1 -- trailing\n', 'select 1'],
    ['/* sqlcommenter=x */ select 1 /* controller=y */', 'select 1'],
    ['select /* outer /* nested */ still comment */ 1', 'select 1'],
    ["select 'a  b', '/* not */', '-- not', 'x''y'", "select 'a  b', '/* not */', '-- not', 'x''y'"],
    ["select 'it''s  /* not */  ''-- no'", "select 'it''s  /* not */  ''-- no'"],
    ['select "a""  /* b */"', 'select "a""  /* b */"'],
    ["select $q$ two  spaces -- $q$, $$/*$$", "select $q$ two  spaces -- $q$, $$/*$$"],
    ['select "two  spaces", "/* x */"', 'select "two  spaces", "/* x */"'],
    ["select E'\\' /* still string */'", "select E'\\' /* still string */'"],
    ['select 1;;  ;', 'select 1'],
    ['select 1; select 2;', 'select 1; select 2'],
    ['select a<--comment\nb', 'select a< b'],
  ];
  it.each(rows)('%j has key text %j', (sql, key) => {
    expect(pg(sql).keyText).toBe(key);
  });

  it('a string continued across a newline keeps the newline (it is one literal; on one line it is an error)', () => {
    expect(pg("select 'a'\n  'b'").keyText).toBe("select 'a'\n'b'");
    expect(pg("select 'a' -- c\n'b'").keyText).toBe("select 'a'\n'b'");
    expect(pg("select 'a'  'b'").keyText).toBe("select 'a' 'b'");
    // A block comment ends the literal: the server rejects this text.
    expect(pg("select 'a' /* c */\n'b'").keyText).toBe("select 'a' 'b'");
  });

  it('an unterminated literal or comment keeps the rest verbatim, never sharing the complete text’s key', () => {
    expect(pg("select 'abc;").keyText).toBe("select 'abc;");
    expect(pg('select 1 /* open').keyText).toBe('select 1 /* open');
    expect(pg('select 1 /* open').keyText).not.toBe(pg('select 1').keyText);
    expect(pg('select "open;  x').keyText).toBe('select "open;  x');
    expect(pg('select $a$ open').keyText).toBe('select $a$ open');
  });

  it('standard strings end at the quote after a backslash; with backslash escapes they do not', () => {
    const text = "select 'a\\' or 1=1 --'";
    expect(pg(text).keyText).toBe("select 'a\\' or 1=1");
    expect(pg(text, true).keyText).toBe(text);
    expect(pg(text, true).shape).toBe('select ?');
  });

  it('$1 is a parameter, $tag$ a dollar quote, and a $ inside a word is part of the word', () => {
    expect(pg('select $1, a$b$c from t').shape).toBe('select $1, a$b$c from t');
    expect(pg('select $a$x y$a$').shape).toBe('select ?');
  });
});

describe('hints are read from comments and ignored when malformed', () => {
  const rows: [string, object][] = [
    ['/* sqlcached:nocache */ select 1', { nocache: true }],
    ['select 1 /* sqlcached:ttl=30s */', { ttlMs: 30_000 }],
    ['select 1 -- sqlcached:ttl=5m,nocache', { ttlMs: 300_000, nocache: true }],
    ['/*sqlcached:ttl=250ms*/select 1', { ttlMs: 250 }],
    ['/* sqlcached:ttl=2h */ select 1', { ttlMs: 7_200_000 }],
    ['/* sqlcached:ttl=1d */ select 1', { ttlMs: 86_400_000 }],
    ['/* sqlcached:ttl=soon */ select 1', {}],
    ['/* sqlcached:ttl=30 */ select 1', {}],
    ['/* sqlcached:bogus */ select 1', {}],
    ['/* not sqlcached:nocache */ select 1', {}],
    ["select '/* sqlcached:nocache */'", {}],
  ];
  it.each(rows)('%j has hints %j', (sql, hints) => {
    expect(pg(sql).hints).toEqual(hints);
  });
});

describe("volatile literal: 'now' and friends are flagged, whatever their spelling", () => {
  const rows: [string, boolean][] = [
    ["select 'now'::timestamptz", true],
    ["select '  NOW '::timestamp", true],
    ["select date 'today'", true],
    ["select 'tomorrow'::date, 'Yesterday'::date", true],
    ["select 'tomorrow 13:00'::timestamp", true],
    ["select E'\\x6eow'::timestamp", true],
    ["select E'\\156ow'::timestamp", true],
    ["select 'no'\n'w'::timestamp", true],
    ["select $$now$$::timestamp", true],
    ["select U&'\\006eow'::timestamp", true],
    ["select U&'!006eow' UESCAPE '!'", true],
    ["select 'n\\x6fw'", false],
    ["select 'snow', 'known', 'nowhere'", false],
    ["select '2024-01-01'::date", false],
    ['select now_col from t', false],
  ];
  it.each(rows)('%j → %s', (sql, flagged) => {
    expect(pg(sql).volatileLiteral).toBe(flagged);
  });

  it('with backslash escapes a plain string is decoded before the check', () => {
    expect(pg("select 'n\\x6fw'", true).volatileLiteral).toBe(true);
  });
});

describe('mysql dialect', () => {
  const rows: [string, string, string][] = [
    ["SELECT `a` FROM t WHERE s = 'it\\'s' AND d = \"dq\"", 'SELECT `a` FROM t WHERE s = ? AND d = ?', "SELECT `a` FROM t WHERE s = 'it\\'s' AND d = \"dq\""],
    ['SELECT 1 # hash comment\nFROM t', 'SELECT ? FROM t', 'SELECT 1 FROM t'],
    ['SELECT 1 -- dash comment\nFROM t', 'SELECT ? FROM t', 'SELECT 1 FROM t'],
    ['SELECT 1--1 FROM t', 'SELECT ?--? FROM t', 'SELECT 1--1 FROM t'],
    ['SELECT /*!40101 SQL_NO_CACHE */ a FROM t', 'SELECT /*!40101 SQL_NO_CACHE */ a FROM t', 'SELECT /*!40101 SQL_NO_CACHE */ a FROM t'],
    ['SELECT /*M!100101 1, */ a FROM t', 'SELECT /*M!100101 ?, */ a FROM t', 'SELECT /*M!100101 1, */ a FROM t'],
    ['SELECT /*+ SET_VAR(sort_buffer_size = 16M) */ a FROM t', 'SELECT /*+ SET_VAR(sort_buffer_size = 16M) */ a FROM t', 'SELECT /*+ SET_VAR(sort_buffer_size = 16M) */ a FROM t'],
    ['SELECT /* plain */ a FROM 1t WHERE x IN (1,2)', 'SELECT a FROM 1t WHERE x IN (?...)', 'SELECT a FROM 1t WHERE x IN (1,2)'],
    ["SELECT 0x1F, 0b101, 1e5, x'ab', _utf8mb4'x'", 'SELECT ?, ?, ?, ?, _utf8mb4?', "SELECT 0x1F, 0b101, 1e5, x'ab', _utf8mb4'x'"],
    ['SELECT $1 FROM t', 'SELECT $1 FROM t', 'SELECT $1 FROM t'],
  ];
  it.each(rows)('%j → shape %j, key %j', (sql, shape, key) => {
    const s = my(sql);
    expect(s.shape).toBe(shape);
    expect(s.keyText).toBe(key);
    expect(s.volatileLiteral).toBe(false);
  });

  it('NO_BACKSLASH_ESCAPES ends a string at the quote after a backslash', () => {
    expect(shapeOf("SELECT 'a\\' = 1", 'mysql', { backslashEscapes: false }).shape).toBe('SELECT ? = ?');
  });
});

describe('toStandardStrings: libpg-query sees the server’s token boundaries when escapes are on', () => {
  const rows: [string, string][] = [
    ["select 'a\\'b'", "select E'a\\'b'"],
    ["select date'2020-01-01', N'x'", "select date E'2020-01-01', N E'x'"],
    ["select 'a'\n'b'", "select E'a'\n'b'"],
    ["select E'x', $$'$$, \"'\" -- '\n", "select E'x', $$'$$, \"'\" -- '\n"],
  ];
  it.each(rows)('%j → %j', (sql, out) => {
    expect(toStandardStrings(sql)).toBe(out);
  });
});

// ---------------------------------------------------------------------------
// Property: two texts share a key text only if they differ in nothing but
// comments and whitespace outside literals — checked against libpg-query's
// own scanner (the PostgreSQL lexer) on generated statements.

const TOKENS = [
  'SELECT', 'select', 'FROM', 'WHERE', 'AND', 'users', 'id', '"Quoted  Id"', '"a""b"', '"--x"', '=', '<>', '+', '::', ',',
  '(', ')', '1', '42', '3.5', '1e3', '$1', "'x'", "'x '", "'a  b'", "'it''s'", "'a'' -- b'", "'q''  /* ''c'",
  '"x""  y"', "'/* no */'", "'-- no'", "E'\\''",
  "E'q\\\\'", '$$ -- $$', '$t$ /* */ $t$', "'line\nbreak'",
];
const SEPARATORS = [' ', '  ', '\t', '\n', '\r\n', '/* c */', ' -- note\n', '/* /* nested */ */', ' /**/ '];
const isStringToken = (t: string) => t.includes("'") && !t.startsWith('"');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function tokenList(rand: () => number): string[] {
  const out: string[] = [];
  const len = 1 + Math.floor(rand() * 8);
  while (out.length < len) {
    const t = TOKENS[Math.floor(rand() * TOKENS.length)]!;
    // Adjacent strings would be one literal across a newline: not this property.
    if (out.length > 0 && isStringToken(t) && isStringToken(out[out.length - 1]!)) continue;
    out.push(t);
  }
  return out;
}

function render(tokens: string[], rand: () => number): string {
  const sep = () => SEPARATORS[Math.floor(rand() * SEPARATORS.length)]!;
  return (rand() < 0.5 ? sep() : '') + tokens.join(sep()) + (rand() < 0.5 ? sep() : '');
}

function serverTokens(sql: string): string[] {
  return scanSync(sql)
    .tokens.filter((t) => t.tokenName !== 'C_COMMENT' && t.tokenName !== 'SQL_COMMENT')
    .map((t) => t.text);
}

describe('key text property (against the PostgreSQL lexer)', () => {
  beforeAll(async () => {
    await loadModule();
  });

  it('a key text lexes to exactly the tokens of its text, for 3000 generated statements', () => {
    const rand = rng(7);
    for (let i = 0; i < 3000; i++) {
      const text = render(tokenList(rand), rand);
      expect(serverTokens(pg(text).keyText), JSON.stringify(text)).toEqual(serverTokens(text));
    }
  });

  it('texts differing only in comments/whitespace share a key text; any other difference separates them', () => {
    const rand = rng(42);
    const byKey = new Map<string, string>();
    for (let i = 0; i < 1500; i++) {
      const tokens = tokenList(rand);
      const canonical = JSON.stringify(tokens);
      const keys = new Set([0, 1, 2].map(() => pg(render(tokens, rand)).keyText));
      expect(keys.size, canonical).toBe(1);
      const key = [...keys][0]!;
      const seen = byKey.get(key);
      if (seen !== undefined) expect(seen, key).toBe(canonical);
      byKey.set(key, canonical);
    }
    expect(byKey.size).toBeGreaterThan(1000);
  });
});
