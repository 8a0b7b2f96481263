// The tracer first: it must be initialised before fastify, ioredis and pino are loaded.
import "../tracing/tracer";
import type { AddressInfo } from "node:net";
import { serviceTokenVerifier } from "../auth/service-tokens";
import { keySetSettings } from "../server/env";
import { InFlightHandlers } from "../server/in-flight";
import { shutdownOnSignals } from "../server/lifecycle";
import { createLogger } from "../tracing/logger";
import { loadFraudServiceConfig } from "./config";
import { createRedis } from "./history";
import { buildFraudServer } from "./routes";

async function main(): Promise<void> {
  const config = loadFraudServiceConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const redis = createRedis({
    url: config.REDIS_URL,
    keyPrefix: config.REDIS_KEY_PREFIX,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  });
  let redisDown = false;
  redis.on("error", (error: Error) => {
    // ioredis reconnects by itself; log the outage once, not every retry.
    if (!redisDown) logger.warn({ err: error }, "redis unavailable");
    redisDown = true;
  });
  redis.on("ready", () => {
    if (redisDown) logger.info("redis available again");
    redisDown = false;
  });

  const inFlight = new InFlightHandlers();
  const app = buildFraudServer({
    redis,
    logger,
    history: {
      velocityWindowSeconds: config.VELOCITY_WINDOW_SECONDS,
      deviceMemorySeconds: config.DEVICE_MEMORY_SECONDS,
    },
    verifyService: serviceTokenVerifier(keySetSettings("SERVICE_AUTH", config), config.SERVICE_AUTH_SUBJECTS),
  }, inFlight);
  shutdownOnSignals({ app, inFlight, logger, closers: [() => redis.quit().catch(() => redis.disconnect())], timeoutMs: config.SHUTDOWN_TIMEOUT_MS });

  await app.listen({ port: config.PORT, host: config.HOST });
  logger.info({ port: (app.server.address() as AddressInfo).port }, "listening");
}

main().catch((error: Error) => {
  process.stderr.write(`${JSON.stringify({ level: "fatal", msg: "startup failed", error: error.message })}\n`);
  process.exit(1);
});
