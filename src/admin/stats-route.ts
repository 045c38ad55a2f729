// GET /stats: the proxy's counters as JSON (DESIGN.md "Admin contract").
// The snapshot is built by core/ stats; this view only serialises it.

import type { Route } from './route.js';

export const statsRoute: Route = {
  method: 'GET',
  path: '/stats',
  handle(_req, deps) {
    return { status: 200, json: deps.stats() };
  },
};
