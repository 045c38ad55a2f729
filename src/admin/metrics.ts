// The Prometheus view of the proxy: a prom-client Registry whose metrics
// read the Stats counters, the store's usage and the listeners' connection
// counts when scraped. Nothing here runs on the query path.
//
// These names are public (dashboards are built on them): add, never rename.
//   sqlcached_hits_total{listener}            counter
//   sqlcached_misses_total{listener}          counter
//   sqlcached_bypasses_total{reason}          counter
//   sqlcached_stores_total                    counter  results stored after a miss
//   sqlcached_invalidations_total{database,table}  counter  ("*" = all of it;
//                                                   past admin.metrics_table_limit: "__other__")
//   sqlcached_evictions_total                 counter
//   sqlcached_store_errors_total              counter
//   sqlcached_entries / sqlcached_bytes       gauges   what the store holds
//   sqlcached_max_memory_bytes                gauge    cache.max_memory (memory store)
//   sqlcached_client_connections{listener}    gauge
//   sqlcached_upstream_connections{listener}  gauge
//   sqlcached_hit_duration_seconds{listener}  histogram  request in → replay written
//   sqlcached_miss_duration_seconds{listener} histogram  request sent upstream → answer complete
//   sqlcached_process_* / sqlcached_nodejs_*  prom-client's default process metrics

import client, { type Metric, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { StoreUsage } from '../cache/store.js';
import { LATENCY_BUCKETS_S, type LatencyHistogram } from '../core/latency.js';
import type { ListenerStats, Stats } from '../core/stats.js';

export interface MetricsSource {
  stats: Stats;
  usage(): StoreUsage;
  /** cache.max_memory in bytes, or null when the store sizes itself (Redis). */
  maxMemoryBytes(): number | null;
}

export interface Metrics {
  readonly contentType: string;
  render(): Promise<string>;
}

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new client.Registry();
  const { stats } = source;
  const registers = [registry];

  // Counters mirror totals kept elsewhere: each scrape sets them from the
  // source (reset + inc), so they never drift from /stats.
  new client.Counter({
    name: 'sqlcached_hits_total',
    help: 'Statements answered from the cache.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of stats.listeners()) this.inc({ listener: l.name }, l.hits);
    },
  });
  new client.Counter({
    name: 'sqlcached_misses_total',
    help: 'Cacheable statements not in the cache: sent to the database, result stored when possible.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of stats.listeners()) this.inc({ listener: l.name }, l.misses);
    },
  });
  new client.Counter({
    name: 'sqlcached_bypasses_total',
    help: 'Statements passed through without the cache, by reason (writes, volatile functions, transactions, rules…).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of stats.bypassCounts()) this.inc({ reason }, n);
    },
  });
  new client.Counter({
    name: 'sqlcached_stores_total',
    help: 'Results stored in the cache after a miss.',
    registers,
    collect() {
      this.reset();
      this.inc(stats.snapshotCounters().stores);
    },
  });
  new client.Counter({
    name: 'sqlcached_invalidations_total',
    help: 'Table invalidations (writes through the proxy, their cascades, admin requests); table "*" = a whole database.',
    labelNames: ['database', 'table'],
    registers,
    collect() {
      this.reset();
      for (const m of stats.invalidationsByTable.values()) this.inc({ database: m.database, table: m.table }, m.count);
    },
  });
  new client.Counter({
    name: 'sqlcached_evictions_total',
    help: 'Entries evicted to stay under cache.max_memory.',
    registers,
    collect() {
      this.reset();
      this.inc(source.usage().evictions);
    },
  });
  new client.Counter({
    name: 'sqlcached_store_errors_total',
    help: 'Cache store operations that failed or timed out (served from the database instead).',
    registers,
    collect() {
      this.reset();
      this.inc(stats.storeErrorCount);
    },
  });
  new client.Gauge({
    name: 'sqlcached_entries',
    help: 'Results held by the cache store.',
    registers,
    collect() {
      this.set(source.usage().entries);
    },
  });
  new client.Gauge({
    name: 'sqlcached_bytes',
    help: 'Bytes held by the cache store.',
    registers,
    collect() {
      this.set(source.usage().bytes);
    },
  });
  new client.Gauge({
    name: 'sqlcached_max_memory_bytes',
    help: 'cache.max_memory (absent with the Redis store, which Redis sizes).',
    registers,
    collect() {
      this.reset();
      const max = source.maxMemoryBytes();
      if (max !== null) this.set(max);
    },
  });
  new client.Gauge({
    name: 'sqlcached_client_connections',
    help: 'Client connections open on the listener.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of stats.listeners()) this.set({ listener: l.name }, l.connections().clients);
    },
  });
  new client.Gauge({
    name: 'sqlcached_upstream_connections',
    help: 'Database connections held by the listener\'s client sessions.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of stats.listeners()) this.set({ listener: l.name }, l.connections().upstreams);
    },
  });
  registerHistogram(registry, stats, 'sqlcached_hit_duration_seconds', 'Cache hits: from the request to the replayed answer written.', (l) => l.hitLatency);
  registerHistogram(registry, stats, 'sqlcached_miss_duration_seconds', 'Cache misses: from the request sent to the database to its complete answer.', (l) => l.missLatency);
  client.collectDefaultMetrics({ register: registry, prefix: 'sqlcached_' });

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}

/**
 * A histogram rendered from a hand-kept LatencyHistogram (see core/latency.ts
 * for why the hot path does not call prom-client). The Registry formats any
 * metric by what its get() returns; this object returns what a prom-client
 * Histogram would.
 */
function registerHistogram(
  registry: client.Registry,
  stats: Stats,
  name: string,
  help: string,
  pick: (l: ListenerStats) => LatencyHistogram,
): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get(): MetricObjectWithValues<MetricValueWithName<string>> {
      const values: MetricValueWithName<string>[] = [];
      for (const l of stats.listeners()) {
        const h = pick(l);
        const cumulative = h.cumulative();
        LATENCY_BUCKETS_S.forEach((le, i) => {
          values.push({ metricName: `${name}_bucket`, labels: { listener: l.name, le }, value: cumulative[i] as number });
        });
        values.push({ metricName: `${name}_bucket`, labels: { listener: l.name, le: '+Inf' }, value: h.count });
        values.push({ metricName: `${name}_sum`, labels: { listener: l.name }, value: h.sum });
        values.push({ metricName: `${name}_count`, labels: { listener: l.name }, value: h.count });
      }
      // prom-client's MetricType is a type-only enum: its run-time value is the string.
      return { name, help, type: 'histogram' as unknown as client.MetricType, aggregator: 'sum', collect: () => {}, values };
    },
  };
  // The Registry's type names its own classes; at run time it needs only name and get().
  registry.registerMetric(metric as unknown as Metric);
}
