// GET /metrics: Prometheus text in a later release (prom-client, names
// prefixed sqlcached_). Until then a 501 that says where the numbers are.
// The seam: replace this route with one that renders a prom-client registry.

import { errorResponse, type Route } from './route.js';

export const metricsRoute: Route = {
  method: 'GET',
  path: '/metrics',
  handle() {
    return errorResponse(501, 'not implemented', {
      detail: 'Prometheus metrics come in a later release; GET /stats has the same counters as JSON',
    });
  },
};
