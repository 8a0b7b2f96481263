/**
 * dd-trace, initialised before anything it instruments. Every entry point imports this
 * module first: the build emits CommonJS, so this runs before fastify, pg, ioredis and
 * pino are required, and their integrations attach.
 *
 * All configuration comes from the DD_* env the platform renders (DD_ENV, DD_SERVICE,
 * DD_VERSION, DD_TAGS, DD_TRACE_AGENT_URL / DD_AGENT_HOST, DD_TRACE_SAMPLE_RATE,
 * DD_TRACE_SAMPLING_RULES, DD_LOGS_INJECTION), so `init()` takes no options. The pg and
 * ioredis spans keep dd-trace's names, `<DD_SERVICE>-postgres` and `<DD_SERVICE>-redis`.
 */
import tracer from "dd-trace";

tracer.init();

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
