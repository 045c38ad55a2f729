// GET /explain?sql=…[&dialect=postgres|mysql][&database=…]: what the proxy would do with a
// statement (the same answer as `sqlcached explain --json`).

import type { Dialect } from '../core/types.js';
import { errorResponse, type Route } from './route.js';

/** Longest statement accepted, in UTF-8 bytes. */
export const MAX_EXPLAIN_SQL_BYTES = 64 * 1024;

function isDialect(s: string): s is Dialect {
  return s === 'postgres' || s === 'mysql';
}

export const explainRoute: Route = {
  method: 'GET',
  path: '/explain',
  handle(req, deps) {
    if (deps.explain === undefined) return errorResponse(501, 'explain is not available in this proxy');
    const sql = req.query.get('sql');
    if (sql === null || sql.trim() === '') {
      return errorResponse(400, 'missing sql', { expected: 'a statement in the sql query parameter: /explain?sql=SELECT…' });
    }
    const bytes = Buffer.byteLength(sql, 'utf8');
    if (bytes > MAX_EXPLAIN_SQL_BYTES) return errorResponse(400, 'sql too long', { limit_bytes: MAX_EXPLAIN_SQL_BYTES, got_bytes: bytes });
    // No dialect: the proxy's own (postgres, or mysql when it has only MySQL listeners), as the CLI does.
    const dialect = req.query.get('dialect');
    if (dialect !== null && !isDialect(dialect)) return errorResponse(400, 'bad dialect', { expected: 'postgres or mysql', got: dialect });
    // database: answer with that database's live dependency graph.
    const database = req.query.get('database') ?? undefined;
    return { status: 200, json: deps.explain(sql, dialect ?? undefined, database) };
  },
};
