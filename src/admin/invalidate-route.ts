// POST /invalidate: drop cached results by table or all at once — the
// admin-side twin of a write through the proxy (DESIGN.md "Admin contract").
// Bodies: {"table":"users"}, {"database":"app","table":"users"}, {"all":true},
// {"pattern":"SELECT * FROM articles%"} (shapes: literals as ?, `%` any run).

import { errorResponse, type AdminDeps, type Route } from './route.js';

export const INVALIDATE_EXPECTED =
  '{"table":"users"}, {"database":"app","table":"users"}, {"pattern":"SELECT * FROM articles%"} or {"all":true}';

/** Patterns longer than this are refused: shapes are statement-sized. */
const MAX_PATTERN_LENGTH = 16 * 1024;

type InvalidateRequest = Parameters<AdminDeps['invalidate']>[0] | { pattern: string };

export const invalidateRoute: Route = {
  method: 'POST',
  path: '/invalidate',
  async handle(req, deps) {
    const parsed = readInvalidateRequest(req.body);
    if (typeof parsed === 'string') {
      return errorResponse(400, 'bad request', { detail: parsed, expected: INVALIDATE_EXPECTED });
    }
    if ('pattern' in parsed) {
      if (deps.invalidatePattern === undefined) return errorResponse(501, 'not implemented', { detail: 'invalidation by pattern' });
      const { invalidated, shapes } = await deps.invalidatePattern(parsed.pattern);
      return { status: 200, json: shapes < 0 ? { invalidated, detail: 'shapes not all known: everything was invalidated' } : { invalidated, shapes } };
    }
    const { invalidated } = await deps.invalidate(parsed);
    return { status: 200, json: { invalidated } };
  },
};

/** The request, or a sentence saying what is wrong with the body. Any
 * Content-Type is accepted: `curl -d '{"all":true}'` sends a form type. */
export function readInvalidateRequest(body: Buffer): InvalidateRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return body.length === 0 ? 'empty body' : 'the body is not JSON';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'the body is not a JSON object';
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !['database', 'table', 'all', 'pattern'].includes(key));
  if (unknown !== undefined) return `unknown key "${unknown}"`;

  const { database, table, all, pattern } = fields;
  if (pattern !== undefined) {
    if (!isName(pattern)) return '"pattern" must be a non-empty string';
    if (pattern.length > MAX_PATTERN_LENGTH) return `"pattern" is longer than ${MAX_PATTERN_LENGTH} characters`;
    if (database !== undefined || table !== undefined || all !== undefined) return '"pattern" cannot be combined with "database", "table" or "all"';
    return { pattern };
  }
  if (all !== undefined) {
    if (all !== true) return '"all" must be true';
    if (database !== undefined || table !== undefined) return '"all" cannot be combined with "database" or "table"';
    return { all: true };
  }
  if (!isName(table)) return table === undefined ? 'missing "table"' : '"table" must be a non-empty string';
  if (database === undefined) return { table };
  if (!isName(database)) return '"database" must be a non-empty string';
  return { database, table };
}

const isName = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
