// GET /: a placeholder page that links the JSON views. The live dashboard is
// a later release; it replaces `dashboardPage` (and may add routes for its
// assets) without touching the other routes.

import type { Route } from './route.js';

const dashboardPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>sqlcached</title></head>
<body>
<h1>sqlcached</h1>
<p>The live dashboard comes in a later release. Until then:</p>
<ul>
<li><a href="/stats">/stats</a>: hits, misses, bypasses and top queries (JSON)</li>
<li><a href="/health">/health</a>: 200 while the proxy serves, 503 otherwise</li>
<li><code>POST /invalidate</code> with <code>{"table":"users"}</code>, <code>{"database":"app","table":"users"}</code> or <code>{"all":true}</code></li>
</ul>
</body>
</html>
`;

export const dashboardRoute: Route = {
  method: 'GET',
  path: '/',
  handle() {
    return { status: 200, html: dashboardPage };
  },
};
