// The tracer first: it must be initialised before pg, ioredis, amqplib and pino are loaded.
import "../tracing/tracer";
import type Redis from "ioredis";
import type { Pool } from "pg";
import { createRedis } from "../fraud-service/history";
import { createPool } from "../ledger/db";
import { shutdownOnSignals } from "../server/lifecycle";
import { SERVICES, type ConsumerName } from "../tracing/conventions";
import { createLogger } from "../tracing/logger";
import { brokerSettings, loadConsumersConfig } from "./config";
import { QueueConsumer } from "./consumer";
import { fraudHistoryHandler, receiptsHandler, type EventHandler } from "./handlers";

async function main(): Promise<void> {
  const config = loadConsumersConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const closers: Array<() => Promise<unknown>> = [];
  const consumers: QueueConsumer[] = [];

  let pool: Pool | undefined;
  let redis: Redis | undefined;
  const handlerFor = (name: ConsumerName): EventHandler => {
    if (name === "receipts") {
      pool ??= createPool({
        max: config.PG_POOL_MAX,
        statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
        connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
        applicationName: process.env.DD_SERVICE ?? SERVICES.postProcessing,
      });
      pool.on("error", (error) => logger.warn({ err: error }, "idle database connection failed"));
      return receiptsHandler(pool);
    }
    redis ??= createRedis(
      { url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS },
      true,
    );
    redis.on("error", (error: Error) => logger.warn({ err: error }, "redis unavailable"));
    return fraudHistoryHandler(redis, {
      velocityWindowSeconds: config.VELOCITY_WINDOW_SECONDS,
      deviceMemorySeconds: config.DEVICE_MEMORY_SECONDS,
      eventMemorySeconds: config.EVENT_MEMORY_SECONDS,
    });
  };

  for (const name of config.CONSUMERS) {
    consumers.push(
      new QueueConsumer({
        name,
        handler: handlerFor(name),
        broker: brokerSettings(config),
        logger,
        settings: {
          prefetch: config.CONSUMER_PREFETCH,
          maxAttempts: config.CONSUMER_MAX_ATTEMPTS,
          retryDelayMs: config.CONSUMER_RETRY_DELAY_MS,
          backoffBaseMs: config.BROKER_BACKOFF_BASE_MS,
          backoffMaxMs: config.BROKER_BACKOFF_MAX_MS,
        },
      }),
    );
  }
  closers.push(() => Promise.all(consumers.map((c) => c.stop())));
  closers.push(async () => {
    await pool?.end();
    await redis?.quit().catch(() => redis?.disconnect());
  });
  shutdownOnSignals({ logger, closers, timeoutMs: config.SHUTDOWN_TIMEOUT_MS });

  await Promise.all(consumers.map((c) => c.start()));
  logger.info({ consumers: config.CONSUMERS, exchange: config.BROKER_EXCHANGE }, "ready");
}

main().catch((error: Error) => {
  process.stderr.write(`${JSON.stringify({ level: "fatal", msg: "startup failed", error: error.message })}\n`);
  process.exit(1);
});
