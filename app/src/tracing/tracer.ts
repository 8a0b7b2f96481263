/**
 * dd-trace, initialised before anything it instruments. Every entry point imports this
 * module first: the build emits CommonJS, so this runs before fastify, pg, ioredis and
 * pino are required, and their integrations attach.
 *
 * All configuration comes from the DD_* env the platform renders (DD_ENV, DD_SERVICE,
 * DD_VERSION, DD_TAGS, DD_TRACE_AGENT_URL / DD_AGENT_HOST, DD_TRACE_SAMPLE_RATE,
 * DD_TRACE_SAMPLING_RULES, DD_LOGS_INJECTION), so `init()` takes no options. The pg and
 * ioredis spans keep dd-trace's names, `<DD_SERVICE>-postgres` and `<DD_SERVICE>-redis`.
 * DD_TRACE_OBFUSCATION_QUERY_STRING_REGEXP redacts the query string of `http.url`; the
 * fastify hook below keeps the path and the client's headers out of it as well.
 */
import type { IncomingMessage } from "node:http";
import tracer from "dd-trace";
import { safeHttpUrl, scrubDigitRuns } from "./redaction";

tracer.init();

/** The route pattern each request matched, set by the server's first hook (none: no route). */
export const matchedRoutes = new WeakMap<IncomingMessage, string>();

// The server span's http.url is the raw URL (a card number in the path or the Host header
// would be recorded as sent) and http.useragent a header the client writes: both made
// safe when the span finishes, before it is encoded.
tracer.use("fastify", {
  hooks: {
    request: (span, req) => {
      if (!span || !req) return;
      const tags = (span.context() as unknown as { _tags?: Record<string, unknown> })._tags ?? {};
      const url = tags["http.url"];
      if (typeof url === "string") span.setTag("http.url", safeHttpUrl(url, matchedRoutes.get(req as IncomingMessage)));
      const agent = tags["http.useragent"];
      if (typeof agent === "string") span.setTag("http.useragent", scrubDigitRuns(agent));
    },
  },
});

export { tracer };
export type Span = tracer.Span;
export type SpanContext = tracer.SpanContext;

interface FlushableExporter {
  flush(done: () => void): void;
}

/**
 * Sends every finished span still buffered, for graceful shutdown. dd-trace (6.21 as 5.x)
 * only flushes on `beforeExit`, which an explicit `process.exit` skips, and has no public
 * trace flush: reach its agent exporter, and settle after `timeoutMs` whatever happens.
 */
export function flushTracer(timeoutMs: number): Promise<void> {
  const exporter = (tracer as unknown as { _tracer?: { _exporter?: Partial<FlushableExporter> } })
    ._tracer?._exporter;
  if (typeof exporter?.flush !== "function") return Promise.resolve();
  const flush = exporter.flush.bind(exporter);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
