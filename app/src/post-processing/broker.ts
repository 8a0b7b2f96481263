/**
 * RabbitMQ: the connection settings, the names of the exchange and queues, and the
 * topology both the relay and the consumers declare before they use it (declarations are
 * idempotent), so no event is published before its queues exist.
 *
 *   exchange <exchange> (topic, durable)
 *     └─ payment.completed → queue <exchange>.<consumer>         (durable, one per consumer)
 *                            dead letters: <exchange>.<consumer>.dead (durable)
 */
import amqp from "amqplib";
import { CONSUMERS, EVENT_TYPES, type ConsumerName } from "../tracing/conventions";

export interface BrokerSettings {
  readonly host: string;
  readonly port: number;
  readonly vhost: string;
  readonly user: string;
  readonly password: string;
  /** amqps:// (Amazon MQ for RabbitMQ accepts nothing else). */
  readonly tls: boolean;
  readonly heartbeatSeconds: number;
  /** The exchange the relay publishes to; queue names derive from it. */
  readonly exchange: string;
}

/** The connection options amqplib takes; the password never becomes part of a URL string. */
export function connectOptions(settings: BrokerSettings): amqp.Options.Connect {
  return {
    protocol: settings.tls ? "amqps" : "amqp",
    hostname: settings.host,
    port: settings.port,
    vhost: settings.vhost,
    username: settings.user,
    password: settings.password,
    heartbeat: settings.heartbeatSeconds,
  };
}

/** The address for log lines: no credentials. */
export function describeBroker(settings: BrokerSettings): string {
  return `${settings.tls ? "amqps" : "amqp"}://${settings.host}:${settings.port}/${encodeURIComponent(settings.vhost)}`;
}

/** Headers a consumer sets when it republishes a message for a retry or dead-letters it. */
export const HEADERS = {
  attempts: "x-payments-attempts",
  deadLetterReason: "x-payments-dead-letter-reason",
  consumer: "x-payments-consumer",
} as const;

export const queueFor = (exchange: string, consumer: ConsumerName) => `${exchange}.${consumer}`;
export const deadLetterQueueFor = (exchange: string, consumer: ConsumerName) => `${queueFor(exchange, consumer)}.dead`;

/** The queues a message for `routingKey` reaches. */
export const ROUTES: Readonly<Record<ConsumerName, readonly string[]>> = {
  receipts: [EVENT_TYPES.paymentCompleted],
  "fraud-history": [EVENT_TYPES.paymentCompleted],
};

export async function connect(settings: BrokerSettings): Promise<amqp.ChannelModel> {
  return amqp.connect(connectOptions(settings), { timeout: 5_000 });
}

/** Declares the exchange, every consumer's queue and dead-letter queue, and the bindings. */
export async function assertTopology(channel: amqp.Channel, exchange: string): Promise<void> {
  await channel.assertExchange(exchange, "topic", { durable: true });
  for (const consumer of CONSUMERS) {
    const queue = queueFor(exchange, consumer);
    await channel.assertQueue(queue, { durable: true });
    await channel.assertQueue(deadLetterQueueFor(exchange, consumer), { durable: true });
    for (const key of ROUTES[consumer]) await channel.bindQueue(queue, exchange, key);
  }
}

/** Exponential backoff, jittered between half the ceiling and the ceiling: `baseMs` for attempt 1, doubling, capped at `maxMs`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
