// The live dashboard (GET /) in a real headless Chromium (Debian's, driven by
// playwright-core): a real proxy in front of the test PostgreSQL, a known
// workload, and the page must show what /stats says, follow it as queries
// run, render user SQL as text, and send the fragment's token.
//
// SQLCACHED_SCREENSHOT=1 also runs a minute of a shop-like workload with the
// page open and saves docs/dashboard.png (the README's picture); CI leaves
// the tracked file alone.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pg from 'pg';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, directQuery, endDirect, uniqueName } from '../../helpers/db.js';
import { startProxy, type TestProxy } from '../../helpers/proxy.js';

const SCREENSHOT = process.env['SQLCACHED_SCREENSHOT'] === '1';
const SCREENSHOT_PATH = resolve(import.meta.dirname, '../../../docs/dashboard.png');
// Launching and first paint take a few seconds on a loaded 2-core machine.
const BROWSER_TIMEOUT_MS = 60_000;
const PAGE_TIMEOUT_MS = 20_000;

function chromiumPath(): string {
  try {
    const found = execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
    if (found !== '') return found;
  } catch {
    // not on PATH: Debian's location
  }
  return '/usr/bin/chromium';
}

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: BROWSER_TIMEOUT_MS,
  });
}, BROWSER_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await browser?.close();
  await endDirect();
});

interface OpenPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions, as they happen. */
  errors: string[];
  headers: Record<string, string>;
}

async function openDashboard(url: string, prepare?: (page: Page) => Promise<void>): Promise<OpenPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  if (prepare) await prepare(page);
  const res = await page.goto(url, { waitUntil: 'load', timeout: PAGE_TIMEOUT_MS });
  return { context, page, errors, headers: res?.headers() ?? {} };
}

/** The shown hit ratio once it reports exactly `ratio` (data-value is the raw /stats number). */
async function waitForRatio(page: Page, ratio: number): Promise<string> {
  const el = page.locator(`[data-testid="hit-ratio"][data-value="${String(ratio)}"]`);
  await el.waitFor({ state: 'attached', timeout: PAGE_TIMEOUT_MS });
  return (await el.textContent()) ?? '';
}

describe('the dashboard at / in a headless browser', () => {
  let proxy: TestProxy;
  let client: pg.Client;
  let table: string;
  let base: string;
  let open: OpenPage;

  beforeAll(async () => {
    proxy = await startProxy();
    base = `http://127.0.0.1:${proxy.adminPort}`;
    table = uniqueName('dash');
    await directQuery(`create table ${table} (id int primary key, name text)`);
    await directQuery(`insert into ${table} select g, 'item ' || g from generate_series(1, 20) g`);
    client = await connectClient(proxy.url());
  });

  afterAll(async () => {
    await open?.context.close();
    await client?.end();
    await proxy?.stop();
    if (table) await directQuery(`drop table if exists ${table}`);
  });

  it('loads with no console errors and shows the hit ratio /stats reports', async () => {
    // Known workload: the same SELECT ten times is one miss and nine hits.
    for (let i = 0; i < 10; i++) await client.query(`select id, name from ${table} where id = 1`);
    const stats = await proxy.stats();
    expect({ hits: stats.hits, misses: stats.misses }).toEqual({ hits: 9, misses: 1 });

    open = await openDashboard(`${base}/`);
    expect(open.headers['content-security-policy']).toMatch(/default-src 'none'.*script-src 'sha256-/);
    expect(open.headers['x-content-type-options']).toBe('nosniff');

    const shown = await waitForRatio(open.page, stats.hit_ratio);
    expect(shown).toBe(`${(stats.hit_ratio * 100).toFixed(1)}%`);
    expect(shown).toBe('90.0%');
    await expect.poll(() => open.page.locator('#status').getAttribute('data-state')).toBe('live');
    await expect.poll(() => open.page.locator('[data-testid="top-saved"] [data-testid="fingerprint"]').allTextContents()).toContain(
      `select id, name from ${table} where id = ?`,
    );
    expect(await open.page.locator('[data-testid="listeners"]').textContent()).toContain('pg');
    expect(open.errors).toEqual([]);
  });

  it('follows /stats as more queries run', async () => {
    const before = await open.page.locator('[data-testid="hit-ratio"]').getAttribute('data-value');
    // Five new keys: five misses, so the ratio drops from 90% to 60%.
    for (let id = 2; id <= 6; id++) await client.query(`select id, name from ${table} where id = ${id}`);
    const stats = await proxy.stats();
    expect(stats.hit_ratio).toBeCloseTo(9 / 15, 10);
    expect(String(stats.hit_ratio)).not.toBe(before);

    const shown = await waitForRatio(open.page, stats.hit_ratio);
    expect(shown).toBe('60.0%');
    // The per-second numbers come from successive polls: misses happened.
    await expect.poll(async () => Number(await open.page.locator('[data-testid="misses-rate"]').getAttribute('data-value'))).toBeGreaterThan(0);
    expect(await open.page.locator('[data-testid="entries"]').getAttribute('data-value')).toBe(String(stats.entries));
    expect(open.errors).toEqual([]);
  });

  it('shows SQL that looks like markup as text, never as markup', async () => {
    const sql = `select id as "<img src=x onerror=window.__xss=1>", name as "<script>window.__xss=2</script>" from ${table} where id = 1`;
    await client.query(sql);
    await client.query(sql);
    const cell = open.page.locator('[data-testid="fingerprint"]', { hasText: '<img src=x onerror=window.__xss=1>' });
    await cell.first().waitFor({ state: 'attached', timeout: PAGE_TIMEOUT_MS });
    expect(await cell.first().textContent()).toContain('<script>window.__xss=2</script>');
    expect(await cell.first().getAttribute('title')).toContain('<img src=x onerror=window.__xss=1>');
    // A string: the project compiles without the DOM types.
    const injected: unknown = await open.page.evaluate(`({
      images: document.querySelectorAll('main img').length,
      scripts: document.querySelectorAll('main script').length,
      xss: window.__xss ?? null,
    })`);
    expect(injected).toEqual({ images: 0, scripts: 0, xss: null });
    expect(open.errors).toEqual([]);
  });

  it('sends the token from /#token=… as a Bearer header and explains a 401', async () => {
    const seen: (string | null)[] = [];
    const authed = await openDashboard(`${base}/#token=s3cret`, async (page) => {
      await page.route('**/stats', async (route) => {
        seen.push(route.request().headers()['authorization'] ?? null);
        await route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":"unauthorized"}' });
      });
    });
    try {
      const banner = authed.page.locator('[data-testid="banner"]');
      await banner.waitFor({ state: 'visible', timeout: PAGE_TIMEOUT_MS });
      expect(await banner.textContent()).toMatch(/Unauthorized.*\/#token=<admin\.token>/s);
      expect(await authed.page.locator('#status').getAttribute('data-state')).toBe('auth');
      expect(seen[0]).toBe('Bearer s3cret');
      // The browser reports the 401 itself; nothing else may fail.
      expect(authed.errors.filter((e) => !e.includes('401'))).toEqual([]);
    } finally {
      await authed.context.close();
    }
  });
});

// --- the README's screenshot ---------------------------------------------------

describe.runIf(SCREENSHOT)('the README screenshot', () => {
  it('saves docs/dashboard.png after a minute of a shop-like workload', async () => {
    await runScreenshotWorkload();
  }, 240_000);
});

/** A seeded generator, so the picture is much the same from run to run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function runScreenshotWorkload(): Promise<void> {
  const schema = uniqueName('shop');
  const proxy = await startProxy({
    maxEntrySizeBytes: 64 * 1024, // the export query's result is larger: not stored (too-large)
    rules: [
      { tables: ['sessions'], cache: false },
      { tables: ['countries'], ttlMs: 3_600_000 },
    ],
  });
  const setup = [
    `create schema ${schema}`,
    `create table ${schema}.countries (id int primary key, code text, name text)`,
    `create table ${schema}.users (id int primary key, name text, email text, country_id int)`,
    `create table ${schema}.products (id int primary key, name text, price numeric(10,2), stock int)`,
    `create table ${schema}.orders (id serial primary key, user_id int, product_id int, qty int, created_at timestamptz default now())`,
    `create table ${schema}.sessions (token text primary key, user_id int, seen_at timestamptz)`,
    `insert into ${schema}.countries select g, 'C' || g, 'Country ' || g from generate_series(1, 30) g`,
    `insert into ${schema}.users select g, 'user ' || g, 'user' || g || '@example.com', 1 + g % 30 from generate_series(1, 400) g`,
    `insert into ${schema}.products select g, 'product ' || g, (g * 7 % 100) + 0.99, 100 from generate_series(1, 150) g`,
    `insert into ${schema}.orders (user_id, product_id, qty) select 1 + g % 400, 1 + g % 150, 1 + g % 3 from generate_series(1, 2000) g`,
    `insert into ${schema}.sessions select 'tok' || g, g, now() from generate_series(1, 400) g`,
  ];
  for (const sql of setup) await directQuery(sql);
  // The application's own schema on its search path: the SQL reads as an ORM writes it.
  const pool = new pg.Pool({ connectionString: proxy.url(), max: 4, options: `-c search_path=${schema}` });
  pool.on('error', () => {});
  const random = rng(42);
  // Skewed keys, as real traffic is: a few hot rows, a long tail.
  const zipf = (n: number) => 1 + Math.floor(n * Math.pow(random(), 4));
  type Step = () => Promise<unknown>;
  const reads: [number, Step][] = [
    [30, () => pool.query('SELECT id, name, email, country_id FROM users WHERE id = $1', [zipf(200)])],
    [22, () => pool.query(`SELECT id, name, price, stock FROM products WHERE id = ${zipf(100)}`)],
    [10, () => pool.query('SELECT id, code, name FROM countries ORDER BY name')],
    [
      10,
      () =>
        pool.query(
          'SELECT o.id, o.qty, p.name, p.price FROM orders o JOIN products p ON p.id = o.product_id WHERE o.user_id = $1 ORDER BY o.id DESC LIMIT 20',
          [zipf(200)],
        ),
    ],
    [5, () => pool.query('SELECT count(*) FROM orders WHERE product_id = $1', [zipf(100)])],
    [5, () => pool.query('SELECT user_id, seen_at FROM sessions WHERE token = $1', [`tok${zipf(400)}`])],
    [2, () => pool.query("SELECT count(*) FROM orders WHERE created_at > now() - interval '1 hour'")],
    [1.5, () => pool.query('SELECT 1')],
    [0.7, () => pool.query('SELECT id, user_id, product_id, qty, created_at FROM orders ORDER BY id DESC LIMIT 2000')],
    [
      1,
      async () => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await c.query('SELECT id, stock FROM products WHERE id = $1 FOR UPDATE', [zipf(100)]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      },
    ],
  ];
  const writes: [number, Step][] = [
    [8, () => pool.query('INSERT INTO orders (user_id, product_id, qty) VALUES ($1, $2, $3)', [zipf(200), zipf(100), 1 + Math.floor(random() * 3)])],
    [1, () => pool.query('UPDATE products SET stock = stock - 1 WHERE id = $1', [zipf(100)])],
    [3, () => pool.query('UPDATE sessions SET seen_at = now() WHERE token = $1', [`tok${zipf(400)}`])],
    [0.5, () => pool.query('UPDATE users SET name = $2 WHERE id = $1', [zipf(200), `user ${Math.floor(random() * 1000)}`])],
  ];
  const pick = (steps: [number, Step][]): Step => {
    const total = steps.reduce((s, [w]) => s + w, 0);
    let r = random() * total;
    for (const [w, step] of steps) {
      r -= w;
      if (r <= 0) return step;
    }
    return steps[steps.length - 1]![1];
  };
  // Cold start, steady traffic, a burst of writes (the ratio dips), recovery.
  const phases = [
    { seconds: 12, qps: 50, writeShare: 0.015 },
    { seconds: 18, qps: 130, writeShare: 0.015 },
    { seconds: 10, qps: 110, writeShare: 0.12 },
    { seconds: 22, qps: 170, writeShare: 0.015 },
  ];

  const page = await openDashboard(`http://127.0.0.1:${proxy.adminPort}/`);
  try {
    const tickMs = 250;
    for (const phase of phases) {
      const ticks = (phase.seconds * 1000) / tickMs;
      for (let i = 0; i < ticks; i++) {
        const started = Date.now();
        const n = Math.round((phase.qps * tickMs) / 1000 * (0.75 + random() * 0.5));
        await Promise.all(Array.from({ length: n }, () => (random() < phase.writeShare ? pick(writes) : pick(reads))()));
        const left = tickMs - (Date.now() - started);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
    }
    // One more poll after the last query, so every section shows the end state.
    const stats = await proxy.stats();
    await waitForRatio(page.page, stats.hit_ratio);
    await page.page.mouse.move(0, 0);
    mkdirSync(dirname(SCREENSHOT_PATH), { recursive: true });
    await page.page.screenshot({ path: SCREENSHOT_PATH, fullPage: true });
    expect(page.errors).toEqual([]);
  } finally {
    await page.context.close();
    await pool.end();
    await proxy.stop();
    await directQuery(`drop schema if exists ${schema} cascade`);
  }
}
