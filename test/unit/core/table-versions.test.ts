// TableVersions: the race between a slow read and a write, written out as
// interleavings. "R" is a read (snapshot … put), "W" a write (… bump).

import { describe, expect, it } from 'vitest';
import { TableVersions } from '../../../src/core/table-versions.js';

describe('TableVersions interleavings', () => {
  it('R.snapshot, W.bump, R.put: the read may hold pre-write rows, so it is stale', () => {
    const v = new TableVersions();
    const r = v.snapshot('app', ['users']);
    v.bump('app', ['users']);
    expect(v.isCurrent(r)).toBe(false);
  });

  it('W.bump, R.snapshot, R.put: the read started after the write, so it is current', () => {
    const v = new TableVersions();
    v.bump('app', ['users']);
    const r = v.snapshot('app', ['users']);
    expect(v.isCurrent(r)).toBe(true);
  });

  it('R1.snapshot, W.bump, R2.snapshot: only R2 is current', () => {
    const v = new TableVersions();
    const r1 = v.snapshot('app', ['users']);
    v.bump('app', ['users']);
    const r2 = v.snapshot('app', ['users']);
    expect(v.isCurrent(r1)).toBe(false);
    expect(v.isCurrent(r2)).toBe(true);
  });

  it('R.snapshot, W1.bump(a), W2.bump(b): a vector over a and b is stale after either', () => {
    const v = new TableVersions();
    const r = v.snapshot('app', ['a', 'b']);
    v.bump('app', ['b']);
    expect(v.isCurrent(r)).toBe(false);
  });

  it('R.snapshot, W.bumpDatabase: stale even though no table counter exists', () => {
    const v = new TableVersions();
    const r = v.snapshot('app', ['users']);
    v.bumpDatabase('app');
    expect(v.isCurrent(r)).toBe(false);
  });

  it('R.snapshot, bumpAll, table first bumped later: never current again', () => {
    const v = new TableVersions();
    const r = v.snapshot('app', ['late']);
    v.bumpAll();
    v.bump('app', ['other']);
    expect(v.isCurrent(r)).toBe(false);
  });

  it('versions never repeat: a bumped table never returns to a value an old snapshot holds', () => {
    const v = new TableVersions();
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const s = v.snapshot('app', ['t']);
      const id = s.versions.join(',');
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      if (i % 3 === 0) v.bump('app', ['t']);
      else if (i % 3 === 1) v.bumpDatabase('app');
      else v.bumpAll();
    }
  });

  it('versions never go backwards, even when counters are forgotten past maxTables', () => {
    const v = new TableVersions({ maxTables: 2 });
    let last = [0, 0, 0];
    for (let i = 0; i < 20; i++) {
      v.bump('app', [`t${i}`]);
      const now = v.snapshot('app', ['t0']).versions;
      now.forEach((x, j) => expect(x).toBeGreaterThanOrEqual(last[j] as number));
      last = [...now];
    }
    expect(v.size).toBeLessThanOrEqual(3);
  });

  it('a table never seen reads 0 before any bump', () => {
    expect(new TableVersions().snapshot('app', ['x', 'y']).versions).toEqual([0, 0, 0, 0]);
  });

  it('a snapshot copies its table list, so later changes to the caller array do not matter', () => {
    const v = new TableVersions();
    const tables = ['a'];
    const s = v.snapshot('app', tables);
    tables[0] = 'b';
    v.bump('app', ['a']);
    expect(v.isCurrent(s)).toBe(false);
  });
});
