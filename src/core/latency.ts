// Latency histograms kept by hand on the hot path: an array of bucket counts
// and a sum, a few nanoseconds per observation. prom-client's
// Histogram.observe measured ~350 ns per call here (it hashes the label set
// each time), a few percent of a ~10 µs cache hit; the admin port renders
// these arrays in Prometheus form at scrape time instead.

/** Upper bounds in seconds: 10 µs (a hit) … 10 s (a slow upstream read). */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class LatencyHistogram {
  /** counts[i]: observations ≤ LATENCY_BUCKETS_S[i] and > the bound before; the last slot is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    if (!(seconds >= 0)) return; // NaN or a clock step backwards: not a latency
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && seconds > (LATENCY_BUCKETS_S[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count++;
  }

  /** Cumulative counts per bound, +Inf last (Prometheus `le` buckets). */
  cumulative(): number[] {
    const out = new Array<number>(this.counts.length);
    let run = 0;
    for (let i = 0; i < this.counts.length; i++) {
      run += this.counts[i] as number;
      out[i] = run;
    }
    return out;
  }
}

/**
 * A percentile estimate over a small fixed log scale (per query shape, where
 * thousands of shapes must stay cheap): 48 buckets of ×1.33 from 10 µs, so
 * an estimate is within a third of the true value up to ~8 minutes.
 */
export class QuantileSketch {
  private static readonly BASE_MS = 0.01;
  private static readonly STEP = Math.log(4 / 3);
  private readonly counts = new Uint32Array(48);
  private n = 0;

  observe(ms: number): void {
    if (!(ms >= 0)) return;
    const i = ms <= QuantileSketch.BASE_MS ? 0 : Math.min(47, Math.ceil(Math.log(ms / QuantileSketch.BASE_MS) / QuantileSketch.STEP));
    this.counts[i] = (this.counts[i] as number) + 1;
    this.n++;
  }

  /** The upper bound of the bucket holding the q-th observation (ms), 0 when empty. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.ceil(q * this.n);
    let run = 0;
    for (let i = 0; i < this.counts.length; i++) {
      run += this.counts[i] as number;
      if (run >= rank) return QuantileSketch.BASE_MS * Math.exp(i * QuantileSketch.STEP);
    }
    return QuantileSketch.BASE_MS * Math.exp(47 * QuantileSketch.STEP);
  }
}
