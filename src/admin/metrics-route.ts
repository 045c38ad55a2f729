// GET /metrics: Prometheus text from the proxy's prom-client registry
// (metrics.ts lists the names, which are public).

import { errorResponse, type Route } from './route.js';

export const metricsRoute: Route = {
  method: 'GET',
  path: '/metrics',
  async handle(_req, deps) {
    if (deps.metrics === undefined) return errorResponse(501, 'not implemented', { detail: 'no metrics registry' });
    const { contentType, text } = await deps.metrics();
    return { status: 200, text, contentType };
  },
};
