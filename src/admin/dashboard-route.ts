// GET /: the live dashboard, one self-contained HTML file (dashboard.html next
// to this module: src/admin/ under vitest, dist/admin/ after `npm run build`,
// which copies it). The page holds no data: it polls /stats itself, so it is
// served without the admin token and reads the token from its URL fragment.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AdminResponse, Route } from './route.js';

const PAGE_URL = new URL('./dashboard.html', import.meta.url);

/** The page and the CSP that lets exactly its inline scripts run. */
function loadPage(): { status: number; html: string; scriptSources: string[] } {
  let html: string;
  try {
    html = readFileSync(PAGE_URL, 'utf8');
  } catch (err) {
    // A build that forgot to copy the file must not keep the proxy from
    // starting: the page says what is missing, the JSON views still work.
    const missing = fileURLToPath(PAGE_URL);
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    return {
      status: 500,
      html: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sqlcached</title></head><body>
<h1>sqlcached</h1><p>The dashboard file is missing (${escapeHtml(missing)}: ${escapeHtml(reason)}); rebuild with <code>npm run build</code>.</p>
<p>The numbers are at <a href="/stats">/stats</a>; <a href="/health">/health</a> answers 200 while the proxy serves.</p>
</body></html>\n`,
      scriptSources: [],
    };
  }
  // A hash per inline script instead of 'unsafe-inline': an injected
  // <script> or onerror= (fingerprints are user SQL) would not run even if
  // the page ever rendered one as markup.
  const scriptSources = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1] ?? '', 'utf8').digest('base64')}'`,
  );
  return { status: 200, html, scriptSources };
}

const page = loadPage();

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${page.scriptSources.length > 0 ? page.scriptSources.join(' ') : "'none'"}`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const response: AdminResponse = {
  status: page.status,
  html: page.html,
  headers: {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  },
};

export const dashboardRoute: Route = {
  method: 'GET',
  path: '/',
  handle() {
    return { ...response, headers: { ...response.headers } };
  },
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
