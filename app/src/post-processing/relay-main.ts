// The tracer first: it must be initialised before pg, amqplib and pino are loaded.
import "../tracing/tracer";
import { createPool } from "../ledger/db";
import { shutdownOnSignals } from "../server/lifecycle";
import { SERVICES } from "../tracing/conventions";
import { createLogger } from "../tracing/logger";
import { brokerSettings, loadRelayConfig } from "./config";
import { OutboxRelay } from "./relay";

function main(): void {
  const config = loadRelayConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const pool = createPool({
    max: config.PG_POOL_MAX,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    applicationName: process.env.DD_SERVICE ?? SERVICES.relay,
  });
  // A lost idle connection: the pool replaces it on the next claim.
  pool.on("error", (error) => logger.warn({ err: error }, "idle database connection failed"));
  const relay = new OutboxRelay({
    pool,
    broker: brokerSettings(config),
    logger,
    settings: {
      batchSize: config.RELAY_BATCH_SIZE,
      pollIntervalMs: config.RELAY_POLL_INTERVAL_MS,
      backoffBaseMs: config.BROKER_BACKOFF_BASE_MS,
      backoffMaxMs: config.BROKER_BACKOFF_MAX_MS,
      retentionSeconds: config.RELAY_RETENTION_SECONDS,
      pruneBatchSize: config.RELAY_PRUNE_BATCH_SIZE,
      pruneIntervalMs: config.RELAY_PRUNE_INTERVAL_MS,
    },
  });
  shutdownOnSignals({ logger, closers: [() => relay.stop(), () => pool.end()], timeoutMs: config.SHUTDOWN_TIMEOUT_MS });
  relay.start();
  logger.info({ batchSize: config.RELAY_BATCH_SIZE, exchange: config.BROKER_EXCHANGE }, "ready");
}

try {
  main();
} catch (error) {
  process.stderr.write(`${JSON.stringify({ level: "fatal", msg: "startup failed", error: (error as Error).message })}\n`);
  process.exit(1);
}
