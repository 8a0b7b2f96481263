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

/** The agent writer's send of one encoded payload; `done` runs on the answer, or once dd-trace's retries gave up. */
type SendPayload = (data: unknown, count: number, done?: (...args: unknown[]) => void, ...rest: unknown[]) => void;

interface AgentExporter {
  flush(done: () => void): void;
  _writer?: { _sendPayload?: SendPayload };
}

function agentExporter(): Partial<AgentExporter> | undefined {
  return (tracer as unknown as { _tracer?: { _exporter?: Partial<AgentExporter> } })._tracer?._exporter;
}

/** Trace payloads handed to the HTTP client and not yet answered (nor given up on). */
let payloadsInFlight = 0;
const whenIdle = new Set<() => void>();

function payloadSettled(): void {
  payloadsInFlight -= 1;
  if (payloadsInFlight === 0) for (const resolve of [...whenIdle]) resolve();
}

/**
 * Counts the payloads the exporter sends until they are answered. dd-trace's flush only
 * sends what is still buffered: a payload already on its way (sent by the flush timer, or
 * at once with DD_TRACE_FLUSH_INTERVAL=0, or queued behind a slow Agent) is not waited for,
 * and `process.exit` would drop it with the last traces. `flushTracer` waits for these too.
 */
function trackPayloadsInFlight(): void {
  const writer = agentExporter()?._writer;
  const send = writer?._sendPayload;
  if (!writer || typeof send !== "function") return;
  writer._sendPayload = function (data, count, done, ...rest) {
    payloadsInFlight += 1;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      payloadSettled();
    };
    try {
      send.call(this, data, count, (...args: unknown[]) => {
        settle();
        done?.(...args);
      }, ...rest);
    } catch (error) {
      settle();
      throw error;
    }
  };
}

trackPayloadsInFlight();

/**
 * Sends every finished span still buffered and waits for every payload already on its way,
 * for graceful shutdown. dd-trace (6.21 as 5.x) only flushes on `beforeExit`, which an
 * explicit `process.exit` skips, and has no public trace flush: reach its agent exporter,
 * and settle after `timeoutMs` whatever happens.
 */
export function flushTracer(timeoutMs: number): Promise<void> {
  const exporter = agentExporter();
  if (typeof exporter?.flush !== "function") return Promise.resolve();
  const flush = exporter.flush.bind(exporter);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      whenIdle.delete(idle);
      resolve();
    };
    const idle = () => done();
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    flush(() => {
      if (payloadsInFlight === 0) done();
      else whenIdle.add(idle);
    });
  });
}
