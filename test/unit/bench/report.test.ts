// The benchmark's report: ratios against the direct database and the ceiling
// of the same case and mode, and the three files it writes.

import { describe, expect, it } from 'vitest';
import { markdown, svg, table, withRatios, type Report, type ResultRow } from '../../../bench/lib/report.js';
import { percentile } from '../../../bench/lib/pgbench.js';

const row = (c: string, mode: string, target: string, tps: number): ResultRow => ({ case: c, mode, target, tps, p50_ms: 0.2, p99_ms: 1.5, vs_direct: null, vs_ceiling: null });

describe('bench report', () => {
  const rows = withRatios([
    row('hot', 'simple', 'direct', 20_000),
    row('hot', 'simple', 'sqlcached', 30_000),
    row('hot', 'simple', 'ceiling', 40_000),
    row('hot', 'prepared', 'direct', 40_000),
    row('hot', 'prepared', 'sqlcached', 36_000),
  ]);
  const report: Report = { date: '2026-11-25', machine: '2 cores', seconds_per_cell: 10, clients: 16, rows, facts: { 'hot: hit ratio': '0.999' } };

  it('ratios compare with the same case and mode only', () => {
    expect(rows.map((r) => [r.target, r.vs_direct, r.vs_ceiling])).toEqual([
      ['direct', null, 0.5],
      ['sqlcached', 1.5, 0.75],
      ['ceiling', 2, null],
      ['direct', null, null],
      ['sqlcached', 0.9, null],
    ]);
  });

  it('the table, Markdown and SVG carry every row and the facts', () => {
    expect(table(report)).toContain('1.50×');
    expect(table(report)).toContain('75 %');
    expect(markdown(report)).toContain('| hot | simple | sqlcached | 30,000 | 0.200 | 1.500 | 1.50× | 75 % |  |');
    expect(markdown(report)).toContain('- hot: hit ratio: 0.999');
    const chart = svg({ ...report, machine: '<2 cores & more>' });
    expect(chart.startsWith('<svg')).toBe(true);
    expect(chart).toContain('&lt;2 cores &amp; more&gt;');
    expect(chart.match(/<rect /g)?.length).toBe(1 + 3); // background + three bars with a direct to compare with
  });

  it('percentile picks the q-th of sorted samples', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(51);
    expect(percentile(xs, 0.99)).toBe(100);
    expect(percentile([], 0.5)).toBeNaN();
  });
});
