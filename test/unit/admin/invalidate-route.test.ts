// POST /invalidate bodies, without a socket: exactly three forms are accepted,
// and every other body is refused with a sentence saying what is wrong.

import { describe, expect, it } from 'vitest';
import { readInvalidateRequest } from '../../../src/admin/invalidate-route.js';

const read = (text: string) => readInvalidateRequest(Buffer.from(text));

describe('readInvalidateRequest', () => {
  it('accepts a table alone, meaning that table in every database', () => {
    expect(read('{"table":"users"}')).toEqual({ table: 'users' });
  });

  it('accepts a database and a table', () => {
    expect(read('{"database":"app","table":"users"}')).toEqual({ database: 'app', table: 'users' });
  });

  it('accepts {"all":true}', () => {
    expect(read('{"all":true}')).toEqual({ all: true });
  });

  it('keeps table names as sent (case and schema are the store’s business)', () => {
    expect(read('{"table":"Public.Users"}')).toEqual({ table: 'Public.Users' });
  });

  it.each([
    ['', 'empty body'],
    ['{', 'the body is not JSON'],
    ['"users"', 'the body is not a JSON object'],
    ['null', 'the body is not a JSON object'],
    ['{"database":"app"}', 'missing "table"'],
    ['{"table":"  "}', '"table" must be a non-empty string'],
    ['{"all":"yes"}', '"all" must be true'],
    ['{"all":true,"database":"app"}', '"all" cannot be combined with "database" or "table"'],
    ['{"table":"users","ttl":5}', 'unknown key "ttl"'],
  ])('refuses %j: %s', (body, reason) => {
    expect(read(body)).toBe(reason);
  });
});
