// The admin HTTP server: node:http and a small route table. Every answer is
// JSON (the page at / aside), every refusal a JSON error body, and no handler
// failure escapes: a broken stats snapshot is a 500, never a crashed proxy.

import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../config/schema.js';
import type { Logger } from '../log.js';
import { dashboardRoute } from './dashboard-route.js';
import { explainRoute } from './explain-route.js';
import { healthRoute } from './health-route.js';
import { invalidateRoute } from './invalidate-route.js';
import { metricsRoute } from './metrics-route.js';
import { reloadRoute } from './reload-route.js';
import { errorResponse, type AdminDeps, type AdminResponse, type Route } from './route.js';
import { statsRoute } from './stats-route.js';

export type { AdminDeps };

/** Request bodies past this are refused with 413: /invalidate needs a few bytes. */
export const MAX_BODY_BYTES = 64 * 1024;
/** How long close() lets in-flight requests finish before cutting them. */
const CLOSE_GRACE_MS = 2_000;

const ROUTES: readonly Route[] = [dashboardRoute, healthRoute, statsRoute, metricsRoute, invalidateRoute, explainRoute, reloadRoute];

/** Routes anyone may call when admin.token is set: /health (load balancers)
 * and the dashboard page, which holds no data and sends the token itself. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/health', '/']);

export interface RunningAdmin {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Start the admin server; resolves once it listens (port 0 = any free port). */
export async function startAdmin(listen: HostPort, deps: AdminDeps, log: Logger): Promise<RunningAdmin> {
  // 80 KiB of headers: GET /explain?sql=… carries a statement of up to 64 KiB in its URL.
  const server = createServer({ maxHeaderSize: 80 * 1024 }, (req, res) => {
    void serve(req, res, deps, log);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const failure = new Error(`admin: cannot listen on ${listen.host}:${listen.port} (${err.code ?? err.message})`);
      Object.assign(failure, { code: 'SQLCACHED_ERR_LISTEN', cause: err });
      reject(failure);
    };
    server.once('error', onError);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'admin server error'));
  const address = server.address() as AddressInfo;

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };
  return { host: address.address, port: address.port, close };
}

async function serve(req: IncomingMessage, res: ServerResponse, deps: AdminDeps, log: Logger): Promise<void> {
  const started = performance.now();
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://admin');
  } catch {
    // A request target URL() refuses (`//a:x`, `//[`): anyone can send one.
    send(req, res, { ...errorResponse(400, 'bad request', { detail: 'the request target is not a valid path' }), headers: { Connection: 'close' } }, log);
    return;
  }
  let response: AdminResponse;
  try {
    const candidates = ROUTES.filter((r) => r.path === url.pathname);
    const route = candidates.find((r) => r.method === method);
    const token = deps.token?.() ?? null;
    if (token !== null && !OPEN_PATHS.has(url.pathname) && !authorised(req.headers.authorization, token)) {
      response = errorResponse(401, 'unauthorized', { detail: 'send the admin token as "Authorization: Bearer <admin.token>"' });
      response.headers = { 'WWW-Authenticate': 'Bearer realm="sqlcached"' };
    } else if (candidates.length === 0) {
      response = errorResponse(404, 'not found', { path: url.pathname });
    } else if (!route) {
      const allow = candidates.map((r) => r.method);
      response = errorResponse(405, 'method not allowed', { allow });
      response.headers = { Allow: allow.join(', ') };
    } else {
      const body = route.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
      response =
        body === null
          ? tooLarge()
          : await route.handle({ method, path: url.pathname, query: url.searchParams, headers: req.headers, body }, deps);
    }
  } catch (err) {
    log.error({ err, method, path: url.pathname }, 'admin handler failed');
    response = errorResponse(500, 'internal error', { detail: (err as Error)?.message ?? String(err) });
  }
  send(req, res, response, log);
  log.debug({ method, path: url.pathname, status: response.status, ms: performance.now() - started }, 'admin request');
}

/** Constant-time comparison of the presented bearer token with the expected one. */
function authorised(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (match === null) return false;
  // Digests first: timingSafeEqual needs equal lengths, and hashing hides the token's length too.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(match[1] as string), digest(token));
}

function tooLarge(): AdminResponse {
  return {
    ...errorResponse(413, 'payload too large', { limit_bytes: MAX_BODY_BYTES }),
    headers: { Connection: 'close' },
  };
}

/** The whole body, or null once it passes MAX_BODY_BYTES (the rest is discarded). */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(req: IncomingMessage, res: ServerResponse, response: AdminResponse, log: Logger): void {
  let payload: string;
  let contentType: string;
  if ('html' in response) {
    payload = response.html;
    contentType = 'text/html; charset=utf-8';
  } else if ('text' in response) {
    payload = response.text;
    contentType = response.contentType;
  } else {
    try {
      payload = `${JSON.stringify(response.json) ?? 'null'}\n`;
    } catch (err) {
      // A snapshot with a BigInt or a cycle: say so rather than hang the client.
      log.error({ err, path: req.url }, 'admin response not serialisable');
      response = { status: 500, json: { error: 'internal error', detail: 'response not serialisable' } };
      payload = `${JSON.stringify(response.json)}\n`;
    }
    contentType = 'application/json; charset=utf-8';
  }
  if (res.headersSent || res.destroyed) return;
  res.writeHead(response.status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...response.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : payload);
}
