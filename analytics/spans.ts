/**
 * The one span shape the analysis reads, whatever the source: a capture file of the local
 * trace intake (`spans-file.ts`) or Datadog's Spans API (`datadog.ts`).
 */

export interface SpanRecord {
  /** Decimal trace id (the low 64 bits, as the Agent protocol carries it). */
  readonly traceId: string;
  readonly spanId: string;
  /** `"0"` for a root span. */
  readonly parentId: string;
  readonly service: string;
  /** The operation name (`payment.process_payment`, `fastify.request`, …). */
  readonly name: string;
  readonly resource: string;
  /** Start, milliseconds since the Unix epoch (fractional). */
  readonly startMs: number;
  readonly durationMs: number;
  readonly error: boolean;
  /** String tags (`error.type`, `payment.failure_reason`, …). */
  readonly meta: Readonly<Record<string, string>>;
  /** Numeric tags (`performance.db_query_count`, …). */
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * Drops repeated spans (same trace and span id): a tracer resends a payload whose request
 * timed out, so an intake can hold the same span twice. The first copy wins.
 */
export function uniqueSpans(spans: Iterable<SpanRecord>): SpanRecord[] {
  const seen = new Set<string>();
  const out: SpanRecord[] = [];
  for (const span of spans) {
    const key = `${span.traceId}/${span.spanId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(span);
  }
  return out;
}

/** A tag's value from `meta`, else from `metrics` as text, else undefined. */
export function tagOf(span: SpanRecord, key: string): string | undefined {
  if (span.meta[key] !== undefined) return span.meta[key];
  if (span.metrics[key] !== undefined) return String(span.metrics[key]);
  return undefined;
}
