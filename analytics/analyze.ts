/**
 * The trace analysis, pure: spans in, report out. Every reader (a capture file of the
 * local trace intake, Datadog's Spans API) hands its spans to `analyzeSpans`; the terminal
 * table, the JSON and the HTML page all render the `TraceReport` it returns.
 */
import { FAILURE_REASONS, MEASURED_SPANS, PERFORMANCE_TAGS, SERVICES, SPANS, TAGS } from "../app/src/tracing/conventions";
import { latencyStats, logHistogram, maxOf, type HistogramBin, type LatencyStats } from "./stats";
import { tagOf, uniqueSpans, type SpanRecord } from "./spans";

/** The stack's monitor thresholds (`payments-apm:monitors.*`). */
export interface MonitorThresholds {
  readonly paymentLatencyP95Seconds: number;
  readonly paymentErrorRate: number;
  readonly databaseLatencyP95Seconds: number;
}

export interface ReportSource {
  /** `spans-file`: a capture of the local trace intake; `datadog`: the Spans API. */
  readonly kind: "spans-file" | "datadog";
  /** The file, or the site and query. */
  readonly description: string;
  readonly stack: string;
  readonly env: string;
  /** The window asked for (Datadog), else the first and last span seen. */
  readonly fromMs: number | null;
  readonly toMs: number | null;
}

export interface OperationRow extends LatencyStats {
  readonly service: string;
  readonly name: string;
}

/** How each payment ended, from `payment.final_status` (`held`: declined for fraud review; `retryable`: see `outcomeOf`). */
export type PaymentOutcomes = Readonly<Record<string, number>>;

export interface ThresholdCheck {
  /** Which monitor the figure is held against. */
  readonly monitor: string;
  readonly value: number | null;
  readonly threshold: number;
  /** `seconds` or `ratio`. */
  readonly unit: "seconds" | "ratio";
  /** null when there is nothing to measure. */
  readonly breached: boolean | null;
  /** "p95 1.24 s, threshold 2 s". */
  readonly text: string;
}

export interface SlowOperation {
  readonly service: string;
  readonly name: string;
  readonly resource: string;
  readonly count: number;
  readonly avgMs: number;
  readonly maxMs: number;
}

export interface ErrorPattern {
  readonly service: string;
  readonly operation: string;
  /** `error.type`, or null for a decline recorded without an error. */
  readonly errorType: string | null;
  readonly failureReason: string | null;
  readonly count: number;
  /** count ÷ spans of that operation and service. */
  readonly shareOfOperation: number;
}

export interface WaterfallSpan {
  readonly spanId: string;
  readonly parentId: string;
  readonly service: string;
  readonly name: string;
  readonly resource: string;
  /** From the start of the trace's first span. */
  readonly offsetMs: number;
  readonly durationMs: number;
  readonly error: boolean;
  /** 0 for a root; a child is one deeper than its parent. */
  readonly depth: number;
}

export interface SlowestTrace {
  readonly traceId: string;
  readonly durationMs: number;
  readonly services: string[];
  readonly spans: WaterfallSpan[];
}

export interface TraceReport {
  readonly source: ReportSource;
  readonly spanCount: number;
  readonly traceCount: number;
  readonly thresholds: MonitorThresholds;
  readonly paymentFlow: LatencyStats & { readonly outcomes: PaymentOutcomes };
  readonly checks: ThresholdCheck[];
  /** Each measured span name (`MEASURED_SPANS`) per service that sent it, then names no service sent. */
  readonly operations: OperationRow[];
  readonly slowestOperations: SlowOperation[];
  readonly errorPatterns: ErrorPattern[];
  /** The payment flow's latency distribution (log-spaced bins). */
  readonly distribution: HistogramBin[];
  /** The trace of the slowest payment (or of the slowest root span when there is no payment). */
  readonly slowestTrace: SlowestTrace | null;
  /** The performance.* tags the services measure per request: average and p95 over the spans that carry them. */
  readonly annotations: AnnotationRow[];
  /** Datadog mode: Datadog's own aggregate over the window, and whether the search stopped early. */
  readonly datadog?: DatadogSummary;
}

export interface AnnotationRow {
  readonly tag: string;
  /** The span the tag is on (`service operation`). */
  readonly on: string;
  readonly count: number;
  readonly avg: number | null;
  readonly p95: number | null;
}

export interface DatadogSummary {
  /** The search stopped at --max-spans: the figures above cover the oldest spans of the window only. */
  readonly truncated: boolean;
  readonly totals: readonly {
    readonly service: string;
    readonly operation: string;
    readonly count: number;
    readonly avgMs: number | null;
    readonly p95Ms: number | null;
    readonly p99Ms: number | null;
  }[];
}

export interface AnalyzeOptions {
  readonly source: ReportSource;
  readonly thresholds: MonitorThresholds;
  /** How many slowest operations to list. Default 10. */
  readonly slowestLimit?: number;
}

const isPayment = (s: SpanRecord) => s.name === SPANS.processPayment && s.service === SERVICES.payment;

export function analyzeSpans(input: Iterable<SpanRecord>, options: AnalyzeOptions): TraceReport {
  const spans = uniqueSpans(input);
  const payments = spans.filter(isPayment);
  const paymentStats = latencyStats(payments);
  const database = latencyStats(spans.filter((s) => s.name === SPANS.databaseQuery && s.service === SERVICES.payment));
  const { thresholds } = options;
  return {
    source: options.source,
    spanCount: spans.length,
    traceCount: new Set(spans.map((s) => s.traceId)).size,
    thresholds,
    paymentFlow: { ...paymentStats, outcomes: paymentOutcomes(payments) },
    checks: [
      latencyCheck("payment p95", paymentStats.p95Ms, thresholds.paymentLatencyP95Seconds),
      rateCheck("payment error rate", paymentStats.errorRate, thresholds.paymentErrorRate),
      latencyCheck("database p95", database.p95Ms, thresholds.databaseLatencyP95Seconds),
    ],
    operations: operationRows(spans),
    slowestOperations: slowestOperations(spans, options.slowestLimit ?? 10),
    errorPatterns: errorPatterns(spans),
    distribution: logHistogram(
      payments.map((s) => s.durationMs),
      [thresholds.paymentLatencyP95Seconds * 1000],
    ),
    slowestTrace: slowestTrace(spans, payments),
    annotations: annotationRows(spans),
  };
}

function annotationRows(spans: readonly SpanRecord[]): AnnotationRow[] {
  const on: Record<string, [string, string]> = {
    [PERFORMANCE_TAGS.dbQueryCount]: [SERVICES.payment, SPANS.processPayment],
    [PERFORMANCE_TAGS.dbTotalTimeMs]: [SERVICES.payment, SPANS.processPayment],
    [PERFORMANCE_TAGS.fraudCallMs]: [SERVICES.payment, SPANS.processPayment],
    [PERFORMANCE_TAGS.cacheTimeMs]: [SERVICES.fraud, SPANS.fraudDetection],
  };
  return Object.entries(on).map(([tag, [service, name]]) => {
    const values = spans
      .filter((s) => s.service === service && s.name === name && typeof s.metrics[tag] === "number")
      .map((s) => ({ durationMs: s.metrics[tag], error: false }));
    const stats = latencyStats(values);
    return { tag, on: `${service} ${name}`, count: stats.count, avg: stats.avgMs, p95: stats.p95Ms };
  });
}

/**
 * `retryable`: a decline the client may retry (`payment.retryable`, a hold or block on a
 * degraded fraud score), which the ledger does not store; `held`: a decline for fraud
 * review; the rest is `payment.final_status` as tagged.
 */
export function outcomeOf(span: SpanRecord): string {
  const status = tagOf(span, TAGS.finalStatus) ?? "unknown";
  if (status === "declined" && tagOf(span, TAGS.retryable) === "true") return "retryable";
  if (status === "declined" && tagOf(span, TAGS.failureReason) === FAILURE_REASONS.fraudReview) return "held";
  return status;
}

function paymentOutcomes(payments: readonly SpanRecord[]): PaymentOutcomes {
  const out: Record<string, number> = {};
  for (const span of payments) {
    const outcome = outcomeOf(span);
    out[outcome] = (out[outcome] ?? 0) + 1;
  }
  return out;
}

/** "1.24 s", or "24.4 ms" below a second. */
export function formatSeconds(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${Number(ms.toPrecision(3))} ms`;
  return `${Number((ms / 1000).toPrecision(3))} s`;
}

function latencyCheck(monitor: string, valueMs: number | null, thresholdSeconds: number): ThresholdCheck {
  const value = valueMs === null ? null : valueMs / 1000;
  return {
    monitor,
    value,
    threshold: thresholdSeconds,
    unit: "seconds",
    breached: value === null ? null : value > thresholdSeconds,
    text: `${monitor.split(" ").slice(1).join(" ")} ${formatSeconds(valueMs)}, threshold ${thresholdSeconds} s`,
  };
}

function rateCheck(monitor: string, value: number | null, threshold: number): ThresholdCheck {
  const pct = (r: number) => `${Number((r * 100).toPrecision(3))} %`;
  return {
    monitor,
    value,
    threshold,
    unit: "ratio",
    breached: value === null ? null : value > threshold,
    text: `error rate ${value === null ? "–" : pct(value)}, threshold ${pct(threshold)}`,
  };
}

function groupBy<K extends string, T>(items: readonly T[], key: (t: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function operationRows(spans: readonly SpanRecord[]): OperationRow[] {
  const rows: OperationRow[] = [];
  for (const name of MEASURED_SPANS) {
    const byService = groupBy(spans.filter((s) => s.name === name), (s) => s.service);
    if (byService.size === 0) rows.push({ service: "", name, ...latencyStats([]) });
    for (const service of [...byService.keys()].sort()) rows.push({ service, name, ...latencyStats(byService.get(service)!) });
  }
  return rows;
}

function slowestOperations(spans: readonly SpanRecord[], limit: number): SlowOperation[] {
  const groups = groupBy(spans, (s) => JSON.stringify([s.service, s.name, s.resource]));
  return [...groups.values()]
    .map((group) => {
      const { service, name, resource } = group[0];
      const total = group.reduce((sum, s) => sum + s.durationMs, 0);
      return { service, name, resource, count: group.length, avgMs: total / group.length, maxMs: maxOf(group.map((s) => s.durationMs)) };
    })
    .sort((a, b) => b.avgMs - a.avgMs || b.count - a.count || a.name.localeCompare(b.name))
    .slice(0, limit);
}

/** Spans in error or carrying a failure reason, grouped by service, operation, error.type and failure reason. */
function errorPatterns(spans: readonly SpanRecord[]): ErrorPattern[] {
  const totals = new Map<string, number>();
  for (const s of spans) totals.set(`${s.service}/${s.name}`, (totals.get(`${s.service}/${s.name}`) ?? 0) + 1);
  const failing = spans.filter((s) => s.error || tagOf(s, TAGS.failureReason) !== undefined);
  const groups = groupBy(failing, (s) =>
    JSON.stringify([s.service, s.name, s.error ? (tagOf(s, "error.type") ?? "error") : null, tagOf(s, TAGS.failureReason) ?? null]),
  );
  return [...groups.entries()]
    .map(([key, group]) => {
      const [service, operation, errorType, failureReason] = JSON.parse(key) as [string, string, string | null, string | null];
      return { service, operation, errorType, failureReason, count: group.length, shareOfOperation: group.length / totals.get(`${service}/${operation}`)! };
    })
    .sort((a, b) => b.count - a.count || a.operation.localeCompare(b.operation) || String(a.failureReason).localeCompare(String(b.failureReason)));
}

function slowestTrace(spans: readonly SpanRecord[], payments: readonly SpanRecord[]): SlowestTrace | null {
  const candidates = payments.length > 0 ? payments : spans.filter((s) => s.parentId === "0");
  if (candidates.length === 0) return null;
  const slowest = candidates.reduce((a, b) => (b.durationMs > a.durationMs ? b : a));
  const members = spans.filter((s) => s.traceId === slowest.traceId).sort((a, b) => a.startMs - b.startMs || b.durationMs - a.durationMs);
  const t0 = members[0].startMs;
  const end = maxOf(members.map((s) => s.startMs + s.durationMs));
  const byId = new Map(members.map((s) => [s.spanId, s]));
  const depthOf = (s: SpanRecord): number => {
    let depth = 0;
    for (let p = byId.get(s.parentId); p && depth < members.length; p = byId.get(p.parentId)) depth++;
    return depth;
  };
  return {
    traceId: slowest.traceId,
    durationMs: end - t0,
    services: [...new Set(members.map((s) => s.service))].sort(),
    spans: members.map((s) => ({
      spanId: s.spanId,
      parentId: s.parentId,
      service: s.service,
      name: s.name,
      resource: s.resource,
      offsetMs: s.startMs - t0,
      durationMs: s.durationMs,
      error: s.error,
      depth: depthOf(s),
    })),
  };
}
