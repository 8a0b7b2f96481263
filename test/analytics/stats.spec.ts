import * as assert from "node:assert/strict";
import fc from "fast-check";
import { latencyStats, logHistogram, percentileOfSorted } from "../../analytics/stats";

/**
 * The reference: the smallest observed value v with at least p % of the values ≤ v,
 * found by counting (no sorting, no rank arithmetic), the definition of the nearest-rank
 * percentile.
 */
function referencePercentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  let best: number | null = null;
  for (const v of values) {
    const atOrBelow = values.filter((x) => x <= v).length;
    if (atOrBelow * 100 >= p * values.length && (best === null || v < best)) best = v;
  }
  return best;
}

const durations = fc.array(fc.double({ min: 0.001, max: 60_000, noNaN: true }), { minLength: 0, maxLength: 300 });
const withTies = fc.array(fc.constantFrom(1, 2, 2, 5, 5, 5, 1200, 1200), { minLength: 1, maxLength: 200 });

describe("analytics: latency math (analytics/stats.ts)", () => {
  it("agrees with the counting reference on p50, p95 and p99 of generated durations, ties included", () => {
    for (const arb of [durations, withTies]) {
      fc.assert(
        fc.property(arb, (values) => {
          const sorted = [...values].sort((a, b) => a - b);
          for (const p of [50, 95, 99, 100, 0.5]) assert.equal(percentileOfSorted(sorted, p), referencePercentile(values, p), `p${p} of ${values.length}`);
        }),
        { numRuns: 300 },
      );
    }
  });

  it("computes count, errors, error rate and average exactly on generated spans", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ durationMs: fc.integer({ min: 0, max: 10_000 }), error: fc.boolean() }), { maxLength: 200 }), (spans) => {
        const stats = latencyStats(spans);
        assert.equal(stats.count, spans.length);
        assert.equal(stats.errors, spans.filter((s) => s.error).length);
        if (spans.length === 0) {
          assert.deepEqual([stats.errorRate, stats.avgMs, stats.p50Ms, stats.p95Ms, stats.p99Ms, stats.maxMs], [null, null, null, null, null, null]);
        } else {
          assert.equal(stats.errorRate, stats.errors / spans.length);
          // Integers: the sum is exact, so the average must be too.
          assert.equal(stats.avgMs, spans.reduce((s, x) => s + x.durationMs, 0) / spans.length);
          assert.equal(stats.maxMs, Math.max(...spans.map((s) => s.durationMs)));
          assert.equal(stats.p95Ms, referencePercentile(spans.map((s) => s.durationMs), 95));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the single duration for every percentile of one span", () => {
    const stats = latencyStats([{ durationMs: 12.5, error: false }]);
    assert.deepEqual([stats.p50Ms, stats.p95Ms, stats.p99Ms, stats.avgMs, stats.errorRate], [12.5, 12.5, 12.5, 12.5, 0]);
  });

  it("names known values on a hand-checked set: 1..100 ms and 20 equal durations", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => ({ durationMs: i + 1, error: i < 3 }));
    const s = latencyStats(hundred);
    assert.deepEqual([s.p50Ms, s.p95Ms, s.p99Ms, s.avgMs, s.errorRate], [50, 95, 99, 50.5, 0.03]);
    const ties = latencyStats(Array.from({ length: 20 }, () => ({ durationMs: 7, error: true })));
    assert.deepEqual([ties.p50Ms, ties.p95Ms, ties.p99Ms, ties.errorRate], [7, 7, 7, 1]);
  });

  it("refuses a percentile outside (0, 100]", () => {
    assert.throws(() => percentileOfSorted([1], 0), RangeError);
    assert.throws(() => percentileOfSorted([1], 101), RangeError);
  });

  it("puts every duration in exactly one histogram bin and stretches the axis to the threshold", () => {
    fc.assert(
      fc.property(durations, (values) => {
        const bins = logHistogram(values, [2000]);
        assert.equal(bins.reduce((n, b) => n + b.count, 0), values.length);
        if (values.length > 0) {
          assert.ok(bins[bins.length - 1].toMs > 2000);
          for (const v of values) assert.ok(bins[0].fromMs <= Math.max(v, 0.001) && Math.max(v, 0.001) <= bins[bins.length - 1].toMs);
        }
      }),
      { numRuns: 200 },
    );
    assert.deepEqual(logHistogram([]), []);
  });
});
