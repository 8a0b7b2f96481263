// The tracer first: it must be initialised before fastify, pg and pino are loaded.
import "../tracing/tracer";
import type { AddressInfo } from "node:net";
import { serviceTokenFile } from "../auth/service-tokens";
import { userTokenVerifier } from "../auth/user-tokens";
import { createPool } from "../ledger/db";
import { keySetSettings } from "../server/env";
import { InFlightHandlers } from "../server/in-flight";
import { shutdownOnSignals } from "../server/lifecycle";
import { SERVICES } from "../tracing/conventions";
import { createLogger } from "../tracing/logger";
import { loadPaymentServiceConfig } from "./config";
import { createFraudClient } from "./fraud-client";
import { pruneExpiredKeysEvery } from "./idempotency";
import { PerUserRateLimiter } from "./rate-limit";
import { buildPaymentServer } from "./routes";

async function main(): Promise<void> {
  const config = loadPaymentServiceConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const pool = createPool({
    max: config.PG_POOL_MAX,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    applicationName: process.env.DD_SERVICE ?? SERVICES.payment,
  });
  pool.on("error", (error) => logger.error({ err: error }, "idle database connection failed"));

  const inFlight = new InFlightHandlers();
  const app = buildPaymentServer({
    pool,
    fraud: createFraudClient(
      config.FRAUD_SERVICE_URL,
      config.FRAUD_TIMEOUT_MS,
      serviceTokenFile(config.SERVICE_TOKEN_FILE, config.SERVICE_TOKEN_REREAD_MS),
    ),
    logger,
    verifyUser: userTokenVerifier(keySetSettings("AUTH", config)),
    idempotencyWindowSeconds: config.IDEMPOTENCY_WINDOW_SECONDS,
    rateLimiter: new PerUserRateLimiter({ perMinute: config.RATE_LIMIT_PER_MINUTE, burst: config.RATE_LIMIT_BURST }),
  }, inFlight);
  const pruning = pruneExpiredKeysEvery(pool, logger, {
    windowSeconds: config.IDEMPOTENCY_WINDOW_SECONDS,
    intervalMs: config.IDEMPOTENCY_PRUNE_INTERVAL_MS,
    batchSize: config.IDEMPOTENCY_PRUNE_BATCH,
  });
  shutdownOnSignals({
    app,
    inFlight,
    logger,
    closers: [async () => pruning.stop(), () => pool.end()],
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  });

  await app.listen({ port: config.PORT, host: config.HOST });
  logger.info({ port: (app.server.address() as AddressInfo).port }, "listening");
}

main().catch((error: Error) => {
  process.stderr.write(`${JSON.stringify({ level: "fatal", msg: "startup failed", error: error.message })}\n`);
  process.exit(1);
});
