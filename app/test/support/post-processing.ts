/**
 * Post-processing for tests: the outbox relay and the consumers started the way the
 * program deploys them (the rendered prod env, pointed at loopback), each run on an
 * exchange and queues of its own on the machine's RabbitMQ, so concurrent test processes
 * never see each other's events. Plus a TCP proxy in front of the broker that a test can
 * cut (the broker "goes down" for the processes behind it) and restore, and the reads that
 * count receipts, fraud-history updates and queued messages.
 */
import amqp from "amqplib";
import Redis from "ioredis";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import type { Pool } from "pg";
import { deadLetterQueueFor, queueFor } from "../../src/post-processing/broker";
import { pseudonym } from "../../src/fraud-service/history";
import { CONSUMERS, SERVICES, type ConsumerName } from "../../src/tracing/conventions";
import { REDIS_URL, type E2E } from "./e2e";
import { freePort } from "./private-servers";
import { renderedEnv, startService, testEnv, type RunningService } from "./services";

export const BROKER = { host: "127.0.0.1", port: 5672, user: "guest", password: "guest" } as const;

let exchangeCount = 0;

/** An exchange name no other test process uses; its queues are named after it. */
export function uniqueExchange(): string {
  exchangeCount += 1;
  return `test.${process.pid}.${exchangeCount}.payments.events`;
}

/** Deletes the exchange and every queue named after it (best effort). */
export async function deleteTopology(exchange: string): Promise<void> {
  const connection = await amqp.connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password });
  try {
    const channel = await connection.createChannel();
    for (const consumer of CONSUMERS) {
      await channel.deleteQueue(queueFor(exchange, consumer));
      await channel.deleteQueue(deadLetterQueueFor(exchange, consumer));
    }
    await channel.deleteExchange(exchange);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** A connection of the test's own, to look into queues or publish as a misbehaving producer would. */
export async function brokerChannel(): Promise<{ channel: amqp.ConfirmChannel; close(): Promise<void> }> {
  const connection = await amqp.connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password });
  const channel = await connection.createConfirmChannel();
  return { channel, close: () => connection.close().catch(() => undefined) };
}

export interface Wiring {
  readonly env: E2E;
  readonly exchange: string;
  /** Where the workers reach the broker: the broker itself, or a proxy in front of it. */
  readonly brokerPort?: number;
}

function brokerEnv(w: Wiring): Record<string, string> {
  return {
    BROKER_HOST: BROKER.host,
    BROKER_PORT: String(w.brokerPort ?? BROKER.port),
    BROKER_TLS: "false",
    BROKER_VHOST: "/",
    BROKER_USER: BROKER.user,
    BROKER_PASSWORD: BROKER.password,
    BROKER_EXCHANGE: w.exchange,
    BROKER_HEARTBEAT_SECONDS: "5",
    BROKER_BACKOFF_BASE_MS: "100",
    BROKER_BACKOFF_MAX_MS: "1000",
  };
}

export async function startRelay(w: Wiring, overrides: Record<string, string | undefined> = {}): Promise<RunningService> {
  return startService(
    SERVICES.relay,
    testEnv(await renderedEnv(SERVICES.relay), w.env.intake.url, {
      ...w.env.db.env,
      ...brokerEnv(w),
      RELAY_POLL_INTERVAL_MS: "50",
      ...overrides,
    }),
  );
}

export async function startConsumers(w: Wiring, overrides: Record<string, string | undefined> = {}): Promise<RunningService> {
  return startService(
    SERVICES.postProcessing,
    testEnv(await renderedEnv(SERVICES.postProcessing), w.env.intake.url, {
      ...w.env.db.env,
      ...brokerEnv(w),
      REDIS_URL,
      REDIS_KEY_PREFIX: w.env.redisPrefix,
      CONSUMER_RETRY_DELAY_MS: "50",
      ...overrides,
    }),
  );
}

/** Receipt rows per transaction id, for the given transactions. */
export async function receiptsOf(pool: Pool, transactionIds: readonly string[]): Promise<Map<string, string[]>> {
  const { rows } = await pool.query<{ transaction_id: string; roles: string[] }>(
    `SELECT transaction_id::text, array_agg(role ORDER BY role) AS roles
       FROM receipts WHERE transaction_id = ANY($1::uuid[]) GROUP BY transaction_id`,
    [transactionIds],
  );
  return new Map(rows.map((r) => [r.transaction_id, r.roles]));
}

export async function receiptCount(pool: Pool, transactionIds: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM receipts WHERE transaction_id = ANY($1::uuid[])`, [
    transactionIds,
  ]);
  return Number(rows[0].n);
}

export async function unpublishedCount(pool: Pool, transactionIds: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM outbox WHERE aggregate_id = ANY($1::uuid[]) AND published_at IS NULL`,
    [transactionIds],
  );
  return Number(rows[0].n);
}

/**
 * The fraud history of a sender as the consumer wrote it: completed payments counted in
 * the current velocity window, and the devices known (how many).
 */
export async function fraudHistoryOf(
  redisPrefix: string,
  senderId: string,
  velocityWindowSeconds = 3_600,
): Promise<{ payments: number; devices: number }> {
  const redis = new Redis(REDIS_URL, { keyPrefix: redisPrefix, lazyConnect: true, disableClientInfo: true });
  await redis.connect();
  try {
    const sender = pseudonym(`sender:${senderId}`);
    const window = Math.floor(Date.now() / 1000 / velocityWindowSeconds);
    const [count, devices] = await Promise.all([redis.get(`velocity:${sender}:${window}`), redis.scard(`devices:${sender}`)]);
    return { payments: Number(count ?? 0), devices };
  } finally {
    redis.disconnect();
  }
}

/** Polls `check` until it returns true; fails with `describe()` after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, describe: () => Promise<string> | string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${timeoutMs} ms: ${await describe()}`);
}

export const queueName = queueFor;
export const deadLetterQueueName = deadLetterQueueFor;
export type { ConsumerName };

/**
 * A TCP proxy from a loopback port to the broker. `cut()` closes the listener and destroys
 * every connection through it, as a broker that went away would look to its clients
 * (connections reset, new ones refused); `restore()` listens on the same port again.
 */
export class BrokerProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number) {}

  static async start(): Promise<BrokerProxy> {
    const proxy = new BrokerProxy(await freePort());
    await proxy.restore();
    return proxy;
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = tcpConnect(BROKER.port, BROKER.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.server = server;
  }

  /** How many client connections are open through the proxy. */
  get connections(): number {
    return [...this.sockets].filter((s) => s.remotePort !== BROKER.port).length;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise((resolve) => server.close(resolve)) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }
}

let directCount = 0;

/**
 * A completed payment written the way payment-service writes it (one call of the ledger's
 * transfer_funds, with its payment.completed event), for specs that run the relay against
 * a database of their own without a payment-service. Resolves the transaction id.
 */
export async function directTransfer(pool: Pool, sender: string, receiver: string, amount: number): Promise<string> {
  directCount += 1;
  const { rows } = await pool.query<{ id: string; result: string }>(
    `WITH t AS (SELECT gen_random_uuid() AS id)
     SELECT t.id::text, transfer_funds(t.id, $1, 'direct', $2, $3, $4, 'USD', 'wallet', 201, '{}'::jsonb, 'payment.completed',
              jsonb_build_object('transaction_id', t.id, 'sender_id', $2::text, 'receiver_id', $3::text, 'amount', $4::bigint, 'currency', 'USD')) AS result
       FROM t`,
    [`direct-${process.pid}-${directCount}`, sender, receiver, amount],
  );
  if (rows[0].result !== "completed") throw new Error(`transfer_funds answered ${rows[0].result}`);
  return rows[0].id;
}

/** How many messages wait in a queue (ready, not yet delivered). */
export async function queuedMessages(queue: string): Promise<number> {
  const { channel, close } = await brokerChannel();
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await close();
  }
}
