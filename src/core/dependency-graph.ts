// The dependency graph of one database: which relations a write to a table
// changes besides itself, and which tables a read of a relation really reads.
// Built from the catalog (postgres/dependency-lookup.ts, mysql/lookups.ts)
// once per refresh, plus the edges YAML adds (`dependencies:`).
//
// Names are bare and lower-case, as the classifier names tables in reads and
// writes (core/types.ts): `a.t` and `b.t` share one node. Merging schemas can
// only over-invalidate, never miss (the same choice the table versions make).
//
// Closures are computed on first use and kept, so a write's bump costs
// O(closure) and no graph walk per statement.

export type RelKind = 'table' | 'view' | 'matview' | 'partitioned' | 'foreign' | 'other';

/** The raw edges, as the catalog gives them. */
export interface GraphEdges {
  kinds: Map<string, RelKind>;
  /** view → the relations its definition reads directly. */
  viewReads: Map<string, Set<string>>;
  /** view → why its own definition cannot be cached (a volatile or user function…). */
  viewRefusals: Map<string, string>;
  /** child → its parents (declarative partitions and INHERITS). */
  parents: Map<string, Set<string>>;
  /** referenced table → tables an FK action (CASCADE, SET NULL, SET DEFAULT) writes. */
  cascades: Map<string, Set<string>>;
  /** table → tables its triggers write (bodies analysed). */
  triggerWrites: Map<string, Set<string>>;
  /** table → why a write there may change anything (a trigger body that
   * cannot be analysed, a rule, a default calling a user function). */
  opaqueWrites: Map<string, string>;
}

export function emptyEdges(): GraphEdges {
  return {
    kinds: new Map(),
    viewReads: new Map(),
    viewRefusals: new Map(),
    parents: new Map(),
    cascades: new Map(),
    triggerWrites: new Map(),
    opaqueWrites: new Map(),
  };
}

/** One `dependencies:` edge from the config: a write to `writes` also invalidates reads of each of `invalidates`. */
export interface ExtraEdge {
  writes: string;
  invalidates: string[];
}

export interface WriteEffect {
  /** Every table whose reads this write must invalidate, the written one included. */
  tables: readonly string[];
  /** Why it may change anything (the whole database is invalidated), or null. */
  unknown: string | null;
}

export interface ReadEffect {
  /** Every table whose versions a read of this relation must carry, itself included. */
  tables: readonly string[];
  /** Why a read of it cannot be cached, or null. */
  refusal: string | null;
}

export class DependencyGraph {
  private readonly children = new Map<string, Set<string>>();
  /** relation → views whose definition reads it directly. */
  private readonly readers = new Map<string, Set<string>>();
  private readonly extra = new Map<string, Set<string>>();
  private readonly writeMemo = new Map<string, WriteEffect>();
  private readonly readMemo = new Map<string, ReadEffect>();

  constructor(
    readonly edges: GraphEdges,
    extra: readonly ExtraEdge[] = [],
    /** When it was read from the catalog (ms, Date.now()). */
    readonly loadedAt = Date.now(),
  ) {
    for (const [child, parents] of edges.parents) for (const p of parents) addTo(this.children, p, child);
    for (const [view, reads] of edges.viewReads) for (const r of reads) addTo(this.readers, r, view);
    for (const e of extra) for (const t of e.invalidates) addTo(this.extra, e.writes, t);
  }

  /**
   * Whether the graph has anything to say about `table` (a kind other than a
   * plain table, inheritance, cascades, triggers). A relation whose newer
   * per-relation facts flag something the graph does not know was created
   * or changed behind the proxy since the graph was read (decide.ts).
   */
  knows(table: string): boolean {
    const e = this.edges;
    return (
      e.kinds.has(table) ||
      e.parents.has(table) ||
      this.children.has(table) ||
      e.cascades.has(table) ||
      e.triggerWrites.has(table) ||
      e.opaqueWrites.has(table)
    );
  }

  /** Set when a decision found the graph behind the catalog: reloaded at the next chance. */
  outdated = false;

  /** Counts for /stats and logs. */
  get size(): { relations: number; edges: number } {
    let edges = 0;
    for (const m of [this.edges.viewReads, this.edges.parents, this.edges.cascades, this.edges.triggerWrites, this.extra]) {
      for (const s of m.values()) edges += s.size;
    }
    return { relations: this.edges.kinds.size, edges };
  }

  /**
   * A write to `table`: first every table where rows really change (children
   * of a parent written through, the base tables of a view written through,
   * FK actions, triggers, YAML edges, transitively), then every relation whose
   * reads see those rows (parents, views over any of them, transitively).
   */
  write(table: string): WriteEffect {
    let effect = this.writeMemo.get(table);
    if (effect !== undefined) return effect;
    const written = new Set<string>([table]);
    let unknown: string | null = null;
    for (const t of written) {
      const why = this.edges.opaqueWrites.get(t);
      if (why !== undefined && unknown === null) unknown = why;
      addAll(written, this.children.get(t));
      addAll(written, this.edges.cascades.get(t));
      addAll(written, this.edges.triggerWrites.get(t));
      addAll(written, this.extra.get(t));
      // A write through an (auto-updatable) view lands in what it reads.
      if (this.edges.kinds.get(t) === 'view') addAll(written, this.edges.viewReads.get(t));
    }
    const seen = new Set(written);
    for (const t of seen) {
      addAll(seen, this.edges.parents.get(t));
      // Materialized views change only on REFRESH, which writes them.
      for (const v of this.readers.get(t) ?? []) if (this.edges.kinds.get(v) !== 'matview') seen.add(v);
      addAll(seen, this.extra.get(t));
    }
    effect = { tables: [...seen], unknown };
    this.writeMemo.set(table, effect);
    return effect;
  }

  /** A read of `relation`: the tables under a view (nested views included)
   * and the children of a parent, each of which a write bumps. */
  read(relation: string): ReadEffect {
    let effect = this.readMemo.get(relation);
    if (effect !== undefined) return effect;
    const seen = new Set<string>([relation]);
    let refusal: string | null = null;
    for (const t of seen) {
      const kind = this.edges.kinds.get(t);
      if (refusal === null) {
        if (kind === 'foreign') refusal = t === relation ? `${t} is a foreign table` : `${relation} reads foreign table ${t}`;
        else refusal = this.edges.viewRefusals.get(t) ?? null;
      }
      if (kind === 'view') addAll(seen, this.edges.viewReads.get(t));
      addAll(seen, this.children.get(t));
    }
    effect = { tables: [...seen], refusal };
    this.readMemo.set(relation, effect);
    return effect;
  }
}

function addTo(m: Map<string, Set<string>>, key: string, value: string): void {
  let s = m.get(key);
  if (s === undefined) {
    s = new Set();
    m.set(key, s);
  }
  s.add(value);
}

function addAll(target: Set<string>, from: Set<string> | undefined): void {
  if (from !== undefined) for (const x of from) target.add(x);
}
