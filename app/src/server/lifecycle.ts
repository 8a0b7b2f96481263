import type { FastifyInstance } from "fastify";
import type { Logger } from "../tracing/logger";
import { flushTracer } from "../tracing/tracer";

export interface ShutdownOptions {
  readonly app: FastifyInstance;
  readonly logger: Logger;
  /** Closed in order once the server has drained (connection pools, clients). */
  readonly closers: ReadonlyArray<() => Promise<unknown>>;
  readonly timeoutMs: number;
}

/**
 * SIGTERM / SIGINT: stop accepting, let in-flight requests finish, close the pools, send
 * the buffered spans, exit 0. Past `timeoutMs` the process exits 1 whatever is pending.
 */
export function shutdownOnSignals({ app, logger, closers, timeoutMs }: ShutdownOptions): void {
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
    for (const close of [() => app.close(), ...closers]) {
      try {
        await close();
      } catch (error) {
        clean = false;
        logger.error({ err: error }, "shutdown step failed");
      }
    }
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
