import { describe, expect, it } from 'vitest';
import { DependencyGraph, emptyEdges, type GraphEdges } from '../../../src/core/dependency-graph.js';

function edges(build: (e: GraphEdges) => void): GraphEdges {
  const e = emptyEdges();
  build(e);
  return e;
}
const set = (...xs: string[]) => new Set(xs);

describe('DependencyGraph', () => {
  const g = new DependencyGraph(
    edges((e) => {
      e.kinds.set('v', 'view').set('vv', 'view').set('p', 'partitioned').set('mv', 'matview').set('ft', 'foreign').set('vf', 'view');
      e.viewReads.set('v', set('t', 'u')).set('vv', set('v')).set('mv', set('t')).set('vf', set('ft'));
      e.parents.set('p1', set('p')).set('p2', set('p'));
      e.cascades.set('a', set('b')).set('b', set('c'));
      e.triggerWrites.set('orders', set('audit'));
      e.opaqueWrites.set('dyn', 'trigger x on dyn: it runs dynamic SQL (EXECUTE)');
      e.viewRefusals.set('vnow', 'view vnow: volatile-function (now)');
    }),
    [{ writes: 'ext', invalidates: ['ext_totals'] }],
  );
  const sorted = (xs: readonly string[]) => [...xs].sort();

  it('a write to a base table reaches the views over it, nested, but not a materialized view', () => {
    expect(sorted(g.write('t').tables)).toEqual(['t', 'v', 'vv']);
  });

  it('a write to a partition reaches its parent, not its siblings; through the parent, every partition', () => {
    expect(sorted(g.write('p1').tables)).toEqual(['p', 'p1']);
    expect(sorted(g.write('p').tables)).toEqual(['p', 'p1', 'p2']);
  });

  it('cascades and triggers are followed transitively, and YAML edges too', () => {
    expect(sorted(g.write('a').tables)).toEqual(['a', 'b', 'c']);
    expect(sorted(g.write('orders').tables)).toEqual(['audit', 'orders']);
    expect(sorted(g.write('ext').tables)).toEqual(['ext', 'ext_totals']);
  });

  it('a write through a view lands in its base tables, and reaches everything over them', () => {
    expect(sorted(g.write('v').tables)).toEqual(['t', 'u', 'v', 'vv']);
  });

  it('an opaque table says why a write there may change anything', () => {
    expect(g.write('dyn').unknown).toMatch(/dynamic SQL/);
    expect(g.write('t').unknown).toBeNull();
  });

  it('a read of a view carries the tables under it; of a parent, its partitions', () => {
    expect(sorted(g.read('vv').tables)).toEqual(['t', 'u', 'v', 'vv']);
    expect(sorted(g.read('p').tables)).toEqual(['p', 'p1', 'p2']);
    expect(g.read('mv').tables).toEqual(['mv']);
    expect(g.read('plain').tables).toEqual(['plain']);
  });

  it('a read of a view over a foreign table, or of a view that cannot be cached, is refused', () => {
    expect(g.read('vf').refusal).toBe('vf reads foreign table ft');
    expect(g.read('vnow').refusal).toMatch(/now/);
    expect(g.read('vv').refusal).toBeNull();
  });

  it('answers are computed once and kept', () => {
    expect(g.write('t')).toBe(g.write('t'));
    expect(g.read('vv')).toBe(g.read('vv'));
  });
});
