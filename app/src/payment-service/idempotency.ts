/**
 * Releases Idempotency-Keys past their window, in the background of each payment-service
 * pod: small batches (one short statement each, rows locked by another pod skipped), a
 * bounded number per run, so the ledger never waits on a long lock.
 */
import type { Pool } from "pg";
import type { Logger } from "../tracing/logger";
import { traced } from "../tracing/spans";
import { pruneExpiredKeys } from "./store";

export interface PruneSettings {
  readonly windowSeconds: number;
  readonly intervalMs: number;
  readonly batchSize: number;
  /** Batches per run at most; the rest waits for the next run. Default 100. */
  readonly maxBatches?: number;
}

export function pruneExpiredKeysEvery(pool: Pool, logger: Logger, settings: PruneSettings): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () =>
    traced("idempotency.prune", async () => {
      let released = 0;
      for (let batch = 0; batch < (settings.maxBatches ?? 100) && !stopped; batch++) {
        const count = await pruneExpiredKeys(pool, settings.windowSeconds, settings.batchSize);
        released += count;
        if (count < settings.batchSize) break;
      }
      if (released > 0) logger.info({ released }, "expired idempotency keys released");
    });
  const timer = setInterval(() => {
    if (running) return;
    running = run()
      .catch((error: Error) => logger.warn({ err: error }, "releasing expired idempotency keys failed"))
      .finally(() => (running = undefined));
  }, settings.intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
