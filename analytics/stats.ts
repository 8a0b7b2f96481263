/**
 * Latency and rate math, pure. Percentiles use the nearest-rank method: the p-th
 * percentile of n sorted values is the ⌈p/100·n⌉-th smallest, always an observed duration
 * (so "p95 1.24 s" names a request that really took 1.24 s).
 */

/** The nearest-rank `p`-th percentile (0 < p ≤ 100) of ascending `sorted`; null when empty. */
export function percentileOfSorted(sorted: readonly number[], p: number): number | null {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (sorted.length === 0) return null;
  // p·n first: an integer for integer p, so no rounding error pushes the rank up by one.
  const rank = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface LatencyStats {
  readonly count: number;
  readonly errors: number;
  /** errors ÷ count; null without spans. */
  readonly errorRate: number | null;
  readonly avgMs: number | null;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
}

/** Count, errors, average, p50/p95/p99 and maximum of a set of spans' durations. */
export function latencyStats(samples: readonly { readonly durationMs: number; readonly error: boolean }[]): LatencyStats {
  const sorted = samples.map((s) => s.durationMs).sort((a, b) => a - b);
  const errors = samples.filter((s) => s.error).length;
  const count = sorted.length;
  return {
    count,
    errors,
    errorRate: count === 0 ? null : errors / count,
    avgMs: count === 0 ? null : sorted.reduce((sum, d) => sum + d, 0) / count,
    p50Ms: percentileOfSorted(sorted, 50),
    p95Ms: percentileOfSorted(sorted, 95),
    p99Ms: percentileOfSorted(sorted, 99),
    maxMs: count === 0 ? null : sorted[count - 1],
  };
}

export interface HistogramBin {
  readonly fromMs: number;
  readonly toMs: number;
  readonly count: number;
}

/**
 * Counts durations into `bins` log-spaced bins from just under the smallest duration to
 * just over the largest of the durations and `alsoShowMs` (the monitor threshold, so it
 * lands on the axis even when every request is far below it). Empty input: no bins.
 */
export function logHistogram(durationsMs: readonly number[], alsoShowMs: readonly number[] = [], bins = 40): HistogramBin[] {
  if (durationsMs.length === 0) return [];
  const positive = durationsMs.map((d) => Math.max(d, 0.001));
  const lo = minOf(positive) * 0.9;
  const hi = Math.max(maxOf(positive), maxOf(alsoShowMs)) * 1.1;
  const logLo = Math.log10(lo);
  const step = (Math.log10(hi) - logLo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const d of positive) counts[Math.min(bins - 1, Math.floor((Math.log10(d) - logLo) / step))] += 1;
  return counts.map((count, i) => ({ fromMs: 10 ** (logLo + i * step), toMs: 10 ** (logLo + (i + 1) * step), count }));
}

/**
 * The largest of `values` (-Infinity when empty), in a loop: `Math.max(...values)` passes
 * each value as an argument and throws RangeError past about 120,000 of them.
 */
export function maxOf(values: readonly number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** The smallest of `values` (Infinity when empty), in a loop (see `maxOf`). */
export function minOf(values: readonly number[]): number {
  let min = Infinity;
  for (const v of values) if (v < min) min = v;
  return min;
}
