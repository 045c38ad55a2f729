// CatalogMemo: what the proxy learned from the database's catalog (relation
// kinds, FK cascades, triggers, function volatility), per scope
// `${upstream}\0${database}\0${searchPathKey}` — the same name resolves to
// different relations under different search paths.
//
// Facts expire after `ttlMs` (default 30 s) so DDL made behind the proxy is
// seen; DDL through the proxy calls forget(). Bounded by count (LRU over all
// scopes). Lookups run for every statement, hits included: nested Maps
// (scope → schema → name) and an intrusive recency list, so a lookup
// allocates nothing.

import type { DependencyGraph } from './dependency-graph.js';
import type { BypassReason, Classification, TableRef } from './types.js';

export type Volatility = 'immutable' | 'stable' | 'volatile';

export interface FunctionInfo {
  /** The worst over every overload and schema of the name. */
  volatility: Volatility;
  /** Tables its body reads (every overload), or null when a body cannot be
   * analysed (another language, dynamic SQL, a call of a user function). */
  reads: string[] | null;
  /** Why `reads` is null. */
  detail?: string;
}

export interface RelationInfo {
  /** Normalised table id, as the classifier names tables in reads/writes. */
  name: string;
  /** false for views, partitioned/inherited/foreign tables, sequences, matviews… */
  cacheable: boolean;
  reason?: BypassReason;
  detail?: string;
  /** Tables a write here changes too: FK ON DELETE/UPDATE CASCADE / SET NULL /
   * SET DEFAULT, transitively. */
  alsoInvalidates: string[];
  /** User triggers we cannot analyse: a write here may change anything.
   * Without a dependency graph only; with one, the graph decides. */
  invalidatesAll: boolean;
  /** Not cacheable alone (a view, a partitioned table, an inheritance
   * member), but a dependency graph of its database says what it reads. */
  needsGraph?: boolean;
}

const MAX_GRAPHS = 1_000;

export interface GraphSummary {
  upstream: string;
  database: string;
  loaded: boolean;
  age_s?: number;
  relations?: number;
  edges?: number;
  /** Tables a write to which invalidates the whole database, and why (first 100). */
  invalidates_everything?: Record<string, string>;
  fallback?: string;
}

export interface CatalogMemoOptions {
  /** How long a fact is trusted (default 30 s; 0 disables the memo). */
  ttlMs?: number;
  /** Facts kept across all scopes (default 50 000). */
  maxEntries?: number;
  now?: () => number;
}

interface Node<V> {
  value: V;
  expiresAt: number;
  /** The Map holding this node, and its key there: eviction removes it. */
  owner: Map<string, Node<V>>;
  key: string;
  scope: ScopeMemo;
  prev: Node<unknown> | null;
  next: Node<unknown> | null;
}

interface ScopeMemo {
  scope: string;
  /** schema (null = unqualified) → name → fact. */
  relations: Map<string | null, Map<string, Node<RelationInfo>>>;
  functions: Map<string, Node<FunctionInfo>>;
  count: number;
}

export class CatalogMemo {
  private readonly scopes = new Map<string, ScopeMemo>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Most recently used first. */
  private head: Node<unknown> | null = null;
  private tail: Node<unknown> | null = null;
  private count = 0;
  /** `${upstream}\0${database}` → its dependency graph (kept past its
   * refresh time until replaced: a session inside a transaction cannot
   * reload it, and an older graph beats none). */
  private readonly graphs = new Map<string, DependencyGraph>();
  private readonly generations = new Map<string, number>();
  private readonly graphFailures = new Map<string, { message: string; at: number }>();

  constructor(opts: CatalogMemoOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.now = opts.now ?? Date.now;
  }

  relation(scope: string, ref: TableRef): RelationInfo | undefined {
    return this.read(this.scopes.get(scope)?.relations.get(ref.schema)?.get(ref.name));
  }

  fn(scope: string, name: string): FunctionInfo | undefined {
    return this.read(this.scopes.get(scope)?.functions.get(name));
  }

  graph(upstream: string, database: string): DependencyGraph | undefined {
    return this.graphs.get(`${upstream}\0${database}`);
  }

  /** The graph of the first upstream that has one for `database` (explain). */
  graphOf(database: string): DependencyGraph | undefined {
    for (const [key, g] of this.graphs) if (key.slice(key.indexOf('\0') + 1) === database) return g;
    return undefined;
  }

  /** No graph yet, or one older than the refresh interval. */
  graphStale(upstream: string, database: string): boolean {
    const g = this.graphs.get(`${upstream}\0${database}`);
    return g === undefined || g.outdated || this.now() - g.loadedAt >= this.ttlMs;
  }

  /**
   * Counts forget() calls per database. A look-up sent before DDL and
   * answered after it may describe the catalog before that DDL: what it
   * taught is dropped when the count moved in between.
   */
  generation(upstream: string, database: string): number {
    return this.generations.get(`${upstream}\0${database}`) ?? 0;
  }

  /** The graph could not be read (a failed look-up): decisions fall back to
   * the conservative per-relation facts, and /stats says so. */
  graphFailed(upstream: string, database: string, message: string): void {
    this.graphFailures.set(`${upstream}\0${database}`, { message, at: this.now() });
  }

  /** /stats `dependencies`: each database's graph, or why there is none. */
  graphSummaries(): GraphSummary[] {
    const out: GraphSummary[] = [];
    const keys = new Set([...this.graphs.keys(), ...this.graphFailures.keys()]);
    for (const key of keys) {
      const [upstream = '', stored = ''] = key.split('\0');
      // MySQL's graph covers the whole server (tables are db.table): '*'.
      const database = stored === '' ? '*' : stored;
      const g = this.graphs.get(key);
      const failure = this.graphFailures.get(key);
      const summary: GraphSummary = { upstream, database, loaded: g !== undefined };
      if (g !== undefined) {
        Object.assign(summary, g.size, { age_s: Math.round((this.now() - g.loadedAt) / 1000) });
        const opaque = [...g.edges.opaqueWrites].slice(0, 100);
        if (opaque.length > 0) summary.invalidates_everything = Object.fromEntries(opaque);
      }
      if (failure !== undefined && (g === undefined || failure.at > g.loadedAt)) {
        summary.fallback = `conservative rules (views, partitions and tables with triggers are not cached): ${failure.message}`;
      }
      out.push(summary);
    }
    return out;
  }

  learnGraph(upstream: string, database: string, graph: DependencyGraph): void {
    const key = `${upstream}\0${database}`;
    this.graphs.delete(key);
    this.graphs.set(key, graph);
    // One per database; a proxy in front of more than this many is unusual,
    // and a dropped graph is only reloaded.
    if (this.graphs.size > MAX_GRAPHS) {
      const oldest = this.graphs.keys().next();
      if (oldest.done !== true) this.graphs.delete(oldest.value);
    }
  }

  learnRelations(scope: string, entries: Array<[TableRef, RelationInfo]>): void {
    const memo = this.memo(scope);
    for (const [ref, info] of entries) {
      let byName = memo.relations.get(ref.schema);
      if (byName === undefined) {
        byName = new Map();
        memo.relations.set(ref.schema, byName);
      }
      this.write(memo, byName, ref.name, info);
    }
  }

  learnFunctions(scope: string, entries: Array<[string, FunctionInfo]>): void {
    const memo = this.memo(scope);
    for (const [name, volatility] of entries) this.write(memo, memo.functions, name, volatility);
  }

  /** What must be looked up before `c` can be decided in this scope (deduplicated). */
  /** Every relation and function of `c` is known here (hit path: no allocation). */
  knowsAll(scope: string, c: Classification): boolean {
    for (const ref of c.relations) if (this.relation(scope, ref) === undefined) return false;
    for (const f of c.functions) if (this.fn(scope, f) === undefined) return false;
    return true;
  }

  missing(scope: string, c: Classification): { relations: TableRef[]; functions: string[] } {
    const relations: TableRef[] = [];
    const seen = new Set<string>();
    for (const ref of c.relations) {
      const id = `${ref.schema === null ? '' : `${ref.schema.length}:${ref.schema}`}.${ref.name}`;
      if (seen.has(id) || this.relation(scope, ref) !== undefined) continue;
      seen.add(id);
      relations.push({ schema: ref.schema, name: ref.name });
    }
    const functions = [...new Set(c.functions)].filter((f) => this.fn(scope, f) === undefined);
    return { relations, functions };
  }

  /** After DDL through the proxy: every scope of that database. */
  forget(upstream: string, database: string): void {
    const prefix = `${upstream}\0${database}\0`;
    const bare = `${upstream}\0${database}`;
    this.graphs.delete(bare);
    this.generations.set(bare, (this.generations.get(bare) ?? 0) + 1);
    for (const [scope, memo] of this.scopes) {
      if (scope !== bare && !scope.startsWith(prefix)) continue;
      for (const byName of memo.relations.values()) for (const node of byName.values()) this.unlink(node);
      for (const node of memo.functions.values()) this.unlink(node);
      this.scopes.delete(scope);
    }
  }

  clear(): void {
    this.scopes.clear();
    this.graphs.clear();
    this.graphFailures.clear();
    this.head = this.tail = null;
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }

  private read<V>(node: Node<V> | undefined): V | undefined {
    if (node === undefined) return undefined;
    if (this.now() >= node.expiresAt) {
      this.remove(node);
      return undefined;
    }
    if (node !== this.head) {
      this.unlink(node);
      this.pushFront(node);
    }
    return node.value;
  }

  private write<V>(memo: ScopeMemo, owner: Map<string, Node<V>>, key: string, value: V): void {
    const expiresAt = this.now() + this.ttlMs;
    const old = owner.get(key);
    if (old !== undefined) {
      old.value = value;
      old.expiresAt = expiresAt;
      this.unlink(old);
      this.pushFront(old);
      return;
    }
    const node: Node<V> = { value, expiresAt, owner, key, scope: memo, prev: null, next: null };
    owner.set(key, node);
    memo.count++;
    this.pushFront(node);
    while (this.count > this.maxEntries && this.tail !== null) this.remove(this.tail);
  }

  private memo(scope: string): ScopeMemo {
    let memo = this.scopes.get(scope);
    if (memo === undefined) {
      memo = { scope, relations: new Map(), functions: new Map(), count: 0 };
      this.scopes.set(scope, memo);
    }
    return memo;
  }

  /** Drop a fact for good: out of the list, its Map, and empty containers. */
  private remove(node: Node<unknown>): void {
    this.unlink(node);
    node.owner.delete(node.key);
    const memo = node.scope;
    memo.count--;
    if (memo.count === 0 && this.scopes.get(memo.scope) === memo) {
      this.scopes.delete(memo.scope);
      return;
    }
    if (node.owner.size === 0) {
      for (const [schema, byName] of memo.relations) {
        if (byName === node.owner) memo.relations.delete(schema);
      }
    }
  }

  private pushFront(node: Node<unknown>): void {
    node.prev = null;
    node.next = this.head;
    if (this.head !== null) this.head.prev = node;
    this.head = node;
    if (this.tail === null) this.tail = node;
    this.count++;
  }

  private unlink(node: Node<unknown>): void {
    if (node.prev !== null) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = null;
    this.count--;
  }
}
