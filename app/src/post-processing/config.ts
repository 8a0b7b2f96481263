import { z } from "zod";
import { fraudServiceEnv } from "../fraud-service/config";
import { commonEnv, integerVar, loadEnv, stringVar } from "../server/env";
import { CONSUMERS } from "../tracing/conventions";
import type { BrokerSettings } from "./broker";

const booleanVar = (defaultValue: boolean) =>
  z.preprocess((v) => (v === "" || v === undefined ? undefined : v), z.enum(["true", "false"]).default(defaultValue ? "true" : "false")).transform((v) => v === "true");

/** RabbitMQ, for the relay and the consumers. The password comes from a Secret. */
export const brokerEnv = {
  BROKER_HOST: stringVar("127.0.0.1"),
  BROKER_PORT: integerVar(5672, 1, 65535),
  BROKER_VHOST: stringVar("/"),
  BROKER_USER: stringVar("guest"),
  BROKER_PASSWORD: stringVar("guest"),
  /** amqps:// when true. */
  BROKER_TLS: booleanVar(false),
  BROKER_HEARTBEAT_SECONDS: integerVar(15, 0, 600),
  /** The exchange events are published to; queues are named after it. */
  BROKER_EXCHANGE: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, "letters, digits, '_', '.', ':', '-'").default("payments.events"),
  ),
  /** Reconnection backoff: first delay, then doubling up to the maximum. */
  BROKER_BACKOFF_BASE_MS: integerVar(500, 10, 60_000),
  BROKER_BACKOFF_MAX_MS: integerVar(30_000, 100, 600_000),
};

const databaseEnv = {
  PG_POOL_MAX: integerVar(4, 1, 50),
  PG_STATEMENT_TIMEOUT_MS: integerVar(5_000, 100, 120_000),
  PG_CONNECT_TIMEOUT_MS: integerVar(2_000, 100, 60_000),
};

export const relayEnv = {
  ...commonEnv,
  ...brokerEnv,
  ...databaseEnv,
  RELAY_BATCH_SIZE: integerVar(100, 1, 5_000),
  RELAY_POLL_INTERVAL_MS: integerVar(500, 10, 60_000),
  /** Published events are kept this long, then pruned. */
  RELAY_RETENTION_SECONDS: integerVar(7 * 86_400, 1, 365 * 86_400),
  RELAY_PRUNE_BATCH_SIZE: integerVar(1_000, 1, 100_000),
  RELAY_PRUNE_INTERVAL_MS: integerVar(60_000, 100, 86_400_000),
};

export const consumersEnv = {
  ...commonEnv,
  ...brokerEnv,
  ...databaseEnv,
  REDIS_URL: fraudServiceEnv.REDIS_URL,
  REDIS_KEY_PREFIX: fraudServiceEnv.REDIS_KEY_PREFIX,
  REDIS_COMMAND_TIMEOUT_MS: integerVar(2_000, 10, 60_000),
  VELOCITY_WINDOW_SECONDS: fraudServiceEnv.VELOCITY_WINDOW_SECONDS,
  DEVICE_MEMORY_SECONDS: fraudServiceEnv.DEVICE_MEMORY_SECONDS,
  /** How long the fraud history remembers an applied event id (longer than any redelivery). */
  EVENT_MEMORY_SECONDS: integerVar(30 * 86_400, 60, 365 * 86_400),
  /** Comma-separated consumers this process runs. */
  CONSUMERS: z
    .preprocess((v) => (v === "" || v === undefined ? CONSUMERS.join(",") : v), z.string())
    .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(CONSUMERS)).min(1)),
  CONSUMER_PREFETCH: integerVar(20, 1, 1_000),
  CONSUMER_MAX_ATTEMPTS: integerVar(5, 1, 100),
  CONSUMER_RETRY_DELAY_MS: integerVar(1_000, 1, 600_000),
};

export function loadRelayConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(relayEnv, env);
}

export function loadConsumersConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(consumersEnv, env);
}

export function brokerSettings(config: ReturnType<typeof loadRelayConfig> | ReturnType<typeof loadConsumersConfig>): BrokerSettings {
  return {
    host: config.BROKER_HOST,
    port: config.BROKER_PORT,
    vhost: config.BROKER_VHOST,
    user: config.BROKER_USER,
    password: config.BROKER_PASSWORD,
    tls: config.BROKER_TLS,
    heartbeatSeconds: config.BROKER_HEARTBEAT_SECONDS,
    exchange: config.BROKER_EXCHANGE,
  };
}
