// The benchmark's output: one table (stdout), the same as JSON and Markdown
// under bench/results/, and an SVG bar chart of the ratios for the README.
// Hand-drawn SVG: a dozen rectangles need no charting library.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ResultRow {
  case: string;
  mode: string;
  /** direct | sqlcached | pgbouncer | pgpool | ceiling */
  target: string;
  tps: number;
  p50_ms: number;
  p99_ms: number;
  /** tps / the direct database's tps in the same case and mode (null when there is none). */
  vs_direct: number | null;
  /** tps / the ceiling server's tps in the same case and mode. */
  vs_ceiling: number | null;
  note?: string;
}

export interface Report {
  date: string;
  machine: string;
  seconds_per_cell: number;
  clients: number;
  rows: ResultRow[];
  /** Facts besides the table: hit ratios, peak RSS, stale-read checks… */
  facts: Record<string, string | number>;
}

/** Fill vs_direct and vs_ceiling from the rows of the same case and mode. */
export function withRatios(rows: ResultRow[]): ResultRow[] {
  const find = (r: ResultRow, target: string) => rows.find((x) => x.case === r.case && x.mode === r.mode && x.target === target);
  return rows.map((r) => {
    const direct = find(r, 'direct');
    const ceiling = find(r, 'ceiling');
    return {
      ...r,
      vs_direct: direct && r.target !== 'direct' ? ratio(r.tps, direct.tps) : null,
      vs_ceiling: ceiling && r.target !== 'ceiling' ? ratio(r.tps, ceiling.tps) : null,
    };
  });
}

export function table(report: Report): string {
  const head = ['case', 'mode', 'target', 'tps', 'p50 ms', 'p99 ms', 'vs direct', 'vs ceiling', 'note'];
  const body = report.rows.map((r) => [
    r.case,
    r.mode,
    r.target,
    Number.isFinite(r.tps) ? Math.round(r.tps).toLocaleString('en-US') : '—',
    fmt(r.p50_ms),
    fmt(r.p99_ms),
    r.vs_direct === null ? '' : `${r.vs_direct.toFixed(2)}×`,
    r.vs_ceiling === null ? '' : `${(r.vs_ceiling * 100).toFixed(0)} %`,
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 && i <= 7 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ');
  const facts = Object.entries(report.facts).map(([k, v]) => `${k}: ${v}`);
  return [
    `sqlcached benchmark, ${report.date}, ${report.machine}, ${report.clients} clients, ${report.seconds_per_cell} s per cell`,
    line(head),
    ...body.map(line),
    ...facts,
  ].join('\n');
}

export function markdown(report: Report): string {
  const rows = report.rows.map(
    (r) =>
      `| ${r.case} | ${r.mode} | ${r.target} | ${Number.isFinite(r.tps) ? Math.round(r.tps).toLocaleString('en-US') : '—'} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${r.vs_direct === null ? '' : `${r.vs_direct.toFixed(2)}×`} | ${r.vs_ceiling === null ? '' : `${(r.vs_ceiling * 100).toFixed(0)} %`} | ${r.note ?? ''} |`,
  );
  return [
    `Measured ${report.date} on ${report.machine}; ${report.clients} clients, ${report.seconds_per_cell} s per cell, every target in one run.`,
    '',
    '| case | mode | target | tps | p50 ms | p99 ms | vs direct | vs ceiling | note |',
    '|---|---|---|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    ...Object.entries(report.facts).map(([k, v]) => `- ${k}: ${v}`),
    '',
  ].join('\n');
}

/** Horizontal bars: every non-direct row's tps as a multiple of direct, a line at 1×. */
export function svg(report: Report): string {
  const bars = report.rows.filter((r) => r.vs_direct !== null && Number.isFinite(r.vs_direct));
  const rowH = 22;
  const left = 300;
  const width = 860;
  const top = 40;
  // Capped at 4×: a cached aggregate at 1 000× direct would flatten every other bar.
  const max = Math.min(4, Math.max(2, ...bars.map((b) => b.vs_direct as number)));
  const x = (v: number) => left + (Math.min(v, max) / max) * (width - left - 150);
  const colour: Record<string, string> = { sqlcached: '#4f46e5', ceiling: '#9ca3af', pgbouncer: '#f59e0b', pgpool: '#10b981' };
  const parts = bars.map((b, i) => {
    const y = top + i * rowH;
    const v = b.vs_direct as number;
    return [
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(`${b.case} · ${b.mode} · ${b.target}`)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(v) - left)}" height="${rowH - 6}" fill="${colour[b.target] ?? '#6b7280'}"/>`,
      `<text x="${x(v) + 6}" y="${y + 15}">${v.toFixed(2)}×${v > max ? ' (off scale)' : ''}</text>`,
    ].join('');
  });
  const height = top + bars.length * rowH + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="12" fill="#111827">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="14" font-weight="600">${esc(`tps relative to the database directly (1× line) — ${report.date}, ${report.machine}`)}</text>`,
    ...parts,
    `<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${height - 16}" stroke="#111827" stroke-dasharray="4 3"/>`,
    `</svg>`,
  ].join('\n');
}

export function writeReport(dir: string, report: Report): { json: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'latest.json'), md: join(dir, 'latest.md'), svg: join(dir, 'latest.svg') };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.md, markdown(report));
  writeFileSync(files.svg, svg(report));
  return files;
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(3) : '';
}

/** a / b to three decimals; null when either run failed. */
function ratio(a: number, b: number): number | null {
  const r = a / b;
  return Number.isFinite(r) ? Math.round(r * 1000) / 1000 : null;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
