/**
 * A trace carried across the broker. The payment's context is injected inside
 * payment.processing and stored on its outbox row; the relay continues it for the
 * publish, and dd-trace's amqplib integration carries it in the message headers to the
 * consumers. The carrier holds dd-trace's `x-datadog-*` keys (trace id, parent id, the
 * sampling priority, the upper 64 bits of the trace id) and W3C `traceparent` /
 * `tracestate`, as DD_TRACE_PROPAGATION_STYLE says.
 */
import { tracer, type Span, type SpanContext } from "./tracer";

export type TraceCarrier = Record<string, string>;

/**
 * The span's context as a text map. Injecting takes the sampling decision if none was
 * taken yet, so the carrier always holds the payment's decision and what follows honours it.
 */
export function injectContext(span: Span): TraceCarrier {
  const carrier: TraceCarrier = {};
  tracer.inject(span, "text_map", carrier);
  return carrier;
}

/** The context a carrier holds, or null when it holds none (an event written before contexts were stored). */
export function extractContext(carrier: unknown): SpanContext | null {
  if (carrier === null || typeof carrier !== "object") return null;
  const strings = Object.fromEntries(
    Object.entries(carrier as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
  if (Object.keys(strings).length === 0) return null;
  return tracer.extract("text_map", strings);
}
