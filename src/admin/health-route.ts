// GET /health: 200 {"status":"ok"} while the proxy can serve, 503 otherwise.
// Load balancers and orchestrators poll it; it must answer even when the rest
// of the proxy is in trouble, so a failing check counts as unavailable.

import type { Route } from './route.js';

export const healthRoute: Route = {
  method: 'GET',
  path: '/health',
  handle(_req, deps) {
    let healthy = false;
    try {
      healthy = deps.healthy();
    } catch {
      healthy = false;
    }
    return healthy ? { status: 200, json: { status: 'ok' } } : { status: 503, json: { status: 'unavailable' } };
  },
};
