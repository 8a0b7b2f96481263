/**
 * One consumer of the outbox events: its own queue, a confirm channel, `prefetch`
 * messages in flight. Per message, in the payment's trace (dd-trace's amqplib integration
 * extracts it from the headers and makes its `amqp.command basic.deliver` span active):
 *
 *   payment.post_processing.lag  from the commit to now (measured; the lag tag too)
 *   payment.post_processing      the handler (measured), resource = the consumer
 *
 * then ack. A message that does not parse goes to the dead-letter queue at once, with the
 * reason. A handler that fails is retried: after `retryDelayMs × attempt` the message is
 * published again to the queue's tail with its attempt count, and the original acked; at
 * `maxAttempts` it goes to the dead-letter queue with the last error. A database or Redis
 * that cannot be reached is not the message's fault: it is requeued after a backoff
 * without counting an attempt, so an outage leaves events waiting, not dead.
 *
 * Broker lost: the consumer reconnects with backoff; unacked messages are redelivered
 * (the handlers are idempotent).
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { isDatabaseUnavailable } from "../ledger/db";
import { DETAIL_TAGS, SPANS, type ConsumerName } from "../tracing/conventions";
import type { Logger } from "../tracing/logger";
import { setTags, traced } from "../tracing/spans";
import { tracer } from "../tracing/tracer";
import { HEADERS, assertTopology, backoffDelay, connect, deadLetterQueueFor, describeBroker, queueFor, type BrokerSettings } from "./broker";
import { parseEvent, type PaymentCompletedEvent } from "./events";
import type { EventHandler } from "./handlers";

export interface ConsumerSettings {
  readonly prefetch: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export interface ConsumerDeps {
  readonly name: ConsumerName;
  readonly handler: EventHandler;
  readonly broker: BrokerSettings;
  readonly settings: ConsumerSettings;
  readonly logger: Logger;
}

export class QueueConsumer {
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private stopping = false;
  private inFlight = 0;
  private idle: Array<() => void> = [];
  private reconnecting: Promise<void> | undefined;
  private failures = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly deps: ConsumerDeps) {}

  get queue(): string {
    return queueFor(this.deps.broker.exchange, this.deps.name);
  }

  get deadLetterQueue(): string {
    return deadLetterQueueFor(this.deps.broker.exchange, this.deps.name);
  }

  /** Connects (retrying with backoff) and starts consuming; resolves once consuming. */
  start(): Promise<void> {
    this.reconnecting ??= this.connectUntilConsuming().finally(() => (this.reconnecting = undefined));
    return this.reconnecting;
  }

  /** Stops taking messages, lets the ones in flight finish, closes the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    const connection = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    await connection?.close().catch(() => undefined);
  }

  private async connectUntilConsuming(): Promise<void> {
    const { logger, settings, broker } = this.deps;
    while (!this.stopping) {
      try {
        await this.consume();
        if (this.failures > 0) logger.info({ consumer: this.deps.name, after: this.failures }, "consumer reconnected");
        this.failures = 0;
        return;
      } catch (error) {
        this.failures += 1;
        const delay = backoffDelay(this.failures, settings.backoffBaseMs, settings.backoffMaxMs);
        logger.warn(
          { err: error, consumer: this.deps.name, broker: describeBroker(broker), attempt: this.failures, retryInMs: delay },
          "broker unavailable, messages wait in the queue",
        );
        const connection = this.connection;
        this.connection = undefined;
        this.channel = undefined;
        await connection?.close().catch(() => undefined);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  private async consume(): Promise<void> {
    const { broker, settings, logger, name } = this.deps;
    const connection = await connect(broker);
    this.connection = connection;
    connection.on("error", (error: Error) => logger.warn({ err: error, consumer: name }, "broker connection error"));
    connection.on("close", () => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      this.channel = undefined;
      if (!this.stopping) void this.start();
    });
    const channel = await connection.createConfirmChannel();
    channel.on("error", (error: Error) => logger.warn({ err: error, consumer: name }, "broker channel error"));
    await assertTopology(channel, broker.exchange);
    await channel.prefetch(settings.prefetch);
    this.channel = channel;
    const { consumerTag } = await channel.consume(this.queue, (message) => {
      if (message) void this.onMessage(channel, message);
    });
    this.consumerTag = consumerTag;
    logger.info({ consumer: name, queue: this.queue, broker: describeBroker(broker) }, "consuming");
  }

  private async onMessage(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    this.inFlight += 1;
    try {
      await this.handle(channel, message);
    } catch (error) {
      // The channel went away while settling the message: the broker redelivers it.
      this.deps.logger.warn({ err: error, consumer: this.deps.name }, "message left unacknowledged");
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async handle(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const { name, settings, logger } = this.deps;
    const parsed = parseEvent(message.content);
    if (!parsed.ok) {
      await this.deadLetter(channel, message, parsed.reason, attemptsOf(message) + 1);
      return;
    }
    const event = parsed.event;
    const attempt = attemptsOf(message) + 1;
    try {
      await this.process(event, attempt);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (isUnavailable(error)) {
        const delay = backoffDelay(attempt, settings.retryDelayMs, settings.backoffMaxMs);
        logger.warn({ err: error, consumer: name, event_id: event.id, retryInMs: delay }, "dependency unavailable, event requeued");
        await sleep(delay);
        channel.nack(message, false, true);
        return;
      }
      if (attempt >= settings.maxAttempts) {
        await this.deadLetter(channel, message, `failed ${attempt} times: ${reason}`, attempt);
        return;
      }
      logger.warn({ err: error, consumer: name, event_id: event.id, attempt }, "event failed, retrying");
      await sleep(settings.retryDelayMs * attempt);
      await this.sendToQueue(channel, this.queue, message, { [HEADERS.attempts]: attempt });
      channel.ack(message);
      return;
    }
    channel.ack(message);
  }

  /** The lag span, then the handler's span, both in the payment's trace. */
  private process(event: PaymentCompletedEvent, attempt: number): Promise<void> {
    const { name, handler } = this.deps;
    const committedAt = Date.parse(event.occurred_at);
    const now = Date.now();
    const lagMs = Math.max(0, now - committedAt);
    const common = {
      [DETAIL_TAGS.postProcessingStage]: "consumer",
      [DETAIL_TAGS.consumer]: name,
      [DETAIL_TAGS.eventId]: event.id,
      [DETAIL_TAGS.eventType]: event.type,
      [DETAIL_TAGS.postProcessingLagMs]: lagMs,
    };
    // Measured by hand: tracer.startSpan (the only way to give a span its start time) does
    // not mark spans measured as tracer.trace does.
    const lag = tracer.startSpan(SPANS.postProcessingLag, {
      childOf: tracer.scope().active() ?? undefined,
      startTime: Math.min(committedAt, now),
      tags: { "_dd.measured": true, "resource.name": name },
    });
    setTags(lag, common);
    lag.finish(now);
    return traced(
      SPANS.postProcessing,
      async (span) => {
        const applied = await handler(event);
        setTags(span, { [DETAIL_TAGS.duplicateEvent]: !applied });
      },
      { ...common, [DETAIL_TAGS.deliveryAttempt]: attempt },
      { resource: name },
    );
  }

  private async deadLetter(channel: ConfirmChannel, message: ConsumeMessage, reason: string, attempts: number): Promise<void> {
    this.deps.logger.error(
      { consumer: this.deps.name, message_id: message.properties.messageId, reason, queue: this.deadLetterQueue },
      "message dead-lettered",
    );
    await this.sendToQueue(channel, this.deadLetterQueue, message, {
      [HEADERS.attempts]: attempts,
      [HEADERS.deadLetterReason]: reason.slice(0, 1_000),
      [HEADERS.consumer]: this.deps.name,
    });
    channel.ack(message);
  }

  /** Publishes a copy of `message` to `queue` with extra headers and waits for the broker's confirm. */
  private sendToQueue(channel: Channel & ConfirmChannel, queue: string, message: ConsumeMessage, headers: Record<string, unknown>): Promise<void> {
    const { properties } = message;
    return new Promise((resolve, reject) => {
      channel.sendToQueue(
        queue,
        message.content,
        {
          persistent: true,
          contentType: properties.contentType,
          messageId: properties.messageId,
          type: properties.type,
          timestamp: properties.timestamp,
          headers: { ...(properties.headers ?? {}), ...headers },
        },
        (error) => (error ? reject(new Error(`broker refused the copy for ${queue}`)) : resolve()),
      );
    });
  }
}

function attemptsOf(message: ConsumeMessage): number {
  const value = Number(message.properties.headers?.[HEADERS.attempts] ?? 0);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

const REDIS_UNAVAILABLE = /Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|Command timed out|Reached the max retries/i;

function isUnavailable(error: unknown): boolean {
  if (isDatabaseUnavailable(error)) return true;
  return error instanceof Error && REDIS_UNAVAILABLE.test(error.message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
