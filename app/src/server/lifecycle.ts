import type { FastifyInstance } from "fastify";
import type { Logger } from "../tracing/logger";
import { flushTracer } from "../tracing/tracer";
import type { InFlightHandlers } from "./in-flight";

export interface ShutdownOptions {
  /** The HTTP server, closed first. A worker without one (the relay, the consumers) omits it. */
  readonly app?: FastifyInstance;
  /** The app's route handlers: waited for after the server closed, before the closers run. */
  readonly inFlight?: InFlightHandlers;
  readonly logger: Logger;
  /** Closed in order once the server and the handlers have drained (connection pools, clients). */
  readonly closers: ReadonlyArray<() => Promise<unknown>>;
  readonly timeoutMs: number;
}

/**
 * SIGTERM / SIGINT: stop accepting, let in-flight requests and handlers finish, close the
 * pools, send the buffered spans, exit 0. A worker stops taking work in its first closer
 * (which resolves once the work in flight is done). Past `timeoutMs` the process exits 1 whatever is
 * pending.
 */
export function shutdownOnSignals({ app, inFlight, logger, closers, timeoutMs }: ShutdownOptions): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    // Not unref'd: the deadline holds even if nothing else keeps the process alive.
    setTimeout(() => {
      try {
        logger.error({ timeoutMs }, "shutdown deadline exceeded");
      } finally {
        process.exit(1);
      }
    }, timeoutMs);

    let clean = true;
    const step = async (close: () => Promise<unknown>) => {
      try {
        await close();
      } catch (error) {
        clean = false;
        logger.error({ err: error }, "shutdown step failed");
      }
    };
    if (app) await step(() => app.close());
    // close() only waited for connections: a handler whose client hung up is still running.
    if (inFlight && inFlight.count > 0) {
      logger.info({ handlers: inFlight.count }, "waiting for in-flight handlers");
      await inFlight.drained();
    }
    for (const close of closers) await step(close);
    await flushTracer(Math.min(5_000, timeoutMs));
    try {
      logger.info("stopped");
    } finally {
      process.exit(clean ? 0 : 1);
    }
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
