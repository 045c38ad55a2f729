// GET /explain?sql=…[&dialect=postgres|mysql]. STUB: filled in by the explain work.

import { errorResponse, type Route } from './route.js';

export const explainRoute: Route = {
  method: 'GET',
  path: '/explain',
  handle() {
    return errorResponse(501, 'not implemented');
  },
};
