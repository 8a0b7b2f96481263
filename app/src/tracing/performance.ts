/**
 * The seed's PerformanceSpanAnnotator, measured rather than estimated: while a payment runs,
 * every ledger statement (`dbQuery`) and the fraud-service call add their wall time to
 * the payment's counters, found through an AsyncLocalStorage so the store functions need
 * no extra argument. The totals go on payment.process_payment when it ends, whatever the
 * outcome. A statement outside a payment (readiness probe) counts nowhere.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { PERFORMANCE_TAGS } from "./conventions";
import { setTags } from "./spans";
import type { Span } from "./tracer";

export interface PaymentPerformance {
  dbQueryCount: number;
  /** Summed wall time of the statements, pool wait included (statements may overlap). */
  dbTotalMs: number;
  /** Wall time of the fraud-service call(s), connect to last byte. */
  fraudCallMs: number;
}

const current = new AsyncLocalStorage<PaymentPerformance>();

/** Runs `fn` with fresh counters that `recordDbQuery` / `recordFraudCall` add to. */
export function measuringPayment<T>(fn: (performance: PaymentPerformance) => Promise<T>): Promise<T> {
  const performance: PaymentPerformance = { dbQueryCount: 0, dbTotalMs: 0, fraudCallMs: 0 };
  return current.run(performance, () => fn(performance));
}

/** A monotonic start for `elapsedMs`. */
export function startTimer(): bigint {
  return process.hrtime.bigint();
}

export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function recordDbQuery(ms: number): void {
  const p = current.getStore();
  if (!p) return;
  p.dbQueryCount += 1;
  p.dbTotalMs += ms;
}

export function recordFraudCall(ms: number): void {
  const p = current.getStore();
  if (p) p.fraudCallMs += ms;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export function annotatePerformance(span: Span, p: PaymentPerformance): void {
  setTags(span, {
    [PERFORMANCE_TAGS.dbQueryCount]: p.dbQueryCount,
    [PERFORMANCE_TAGS.dbTotalTimeMs]: round(p.dbTotalMs),
    [PERFORMANCE_TAGS.fraudCallMs]: round(p.fraudCallMs),
  });
}

/** fraud-service: the time its detection spent in Redis (the velocity and device history). */
export function annotateCacheTime(span: Span, ms: number): void {
  setTags(span, { [PERFORMANCE_TAGS.cacheTimeMs]: round(ms) });
}
