/**
 * The outbox relay: claims unpublished events in bounded batches, publishes each to
 * RabbitMQ on a confirm channel, and marks the batch published once the broker confirmed
 * every message, all in one database transaction. At least once: a relay that dies after
 * the broker took a batch and before the commit leaves it unpublished, and the next claim
 * publishes it again; the consumers deduplicate on the event id.
 *
 * Replicas share the work: `FOR UPDATE SKIP LOCKED` skips rows another relay holds, and a
 * per-sender advisory lock keeps one sender's events with one relay at a time, so they
 * reach the broker in commit order (a sender's transfers lock its wallet, so its events'
 * ids follow commit order).
 *
 * Broker or database down: the batch rolls back, the events wait in the outbox, and the
 * relay retries with exponential backoff, reconnecting to whichever was lost. Payments
 * do not depend on any of this: they keep completing and queueing events.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import type { Pool, PoolClient } from "pg";
import { dbQuery } from "../ledger/db";
import { DETAIL_TAGS, SPANS } from "../tracing/conventions";
import type { Logger } from "../tracing/logger";
import { extractContext } from "../tracing/propagation";
import { traced } from "../tracing/spans";
import { assertTopology, backoffDelay, connect, describeBroker, type BrokerSettings } from "./broker";
import { messageBody, SENDER_LOCK_SPACE, type OutboxRow } from "./events";

export interface RelaySettings {
  readonly batchSize: number;
  /** Wait between claims while the outbox is empty. */
  readonly pollIntervalMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Published rows older than this are deleted… */
  readonly retentionSeconds: number;
  /** …this many per statement… */
  readonly pruneBatchSize: number;
  /** …every this often. */
  readonly pruneIntervalMs: number;
}


/**
 * `ORDER BY outbox.id`, the bigint: a bare `id` would name the output column `id::text` and
 * sort as text ('10' before '9'), publishing a sender's events out of commit order, and it
 * would keep the partial index from serving the order, so every claim would test the lock
 * of every unpublished event's sender instead of stopping at the batch size.
 */
const CLAIM_SQL = `
  SELECT id::text, aggregate_id::text, event_type, payload, trace_context, created_at
    FROM outbox
   WHERE published_at IS NULL
     AND pg_try_advisory_xact_lock(${SENDER_LOCK_SPACE}, hashtext(coalesce(payload->>'sender_id', aggregate_id::text)))
   ORDER BY outbox.id
   LIMIT $1
     FOR UPDATE SKIP LOCKED`;

/**
 * For each sender of a claimed batch, its earliest unpublished event the batch does not
 * hold. The claim's lock test runs row by row while other relays commit or roll back, so
 * it can pass over a sender's event (locked then) and take a later one (free by then): the
 * batch publishes a sender's events only up to that first gap, and the rest waits for the
 * next claim, which starts at the gap.
 */
const GAPS_SQL = `
  SELECT coalesce(payload->>'sender_id', aggregate_id::text) AS sender, min(id)::text AS first_gap
    FROM outbox
   WHERE published_at IS NULL
     AND NOT (id = ANY($1::bigint[]))
     AND coalesce(payload->>'sender_id', aggregate_id::text) = ANY($2::text[])
   GROUP BY 1`;

const senderOf = (row: OutboxRow) => String(row.payload.sender_id ?? row.aggregate_id);

const MARK_SQL = `UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])`;

const PRUNE_SQL = `
  DELETE FROM outbox
   WHERE id IN (SELECT id FROM outbox
                 WHERE published_at < now() - make_interval(secs => $1)
                 ORDER BY published_at
                 LIMIT $2
                   FOR UPDATE SKIP LOCKED)`;

export interface RelayDeps {
  readonly pool: Pool;
  readonly broker: BrokerSettings;
  readonly settings: RelaySettings;
  readonly logger: Logger;
}

export class OutboxRelay {
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private pruning: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(private readonly deps: RelayDeps) {}

  /** Starts the relay loop and the pruning timer; resolves at once. */
  start(): void {
    this.running ??= this.loop();
    this.pruning = setInterval(() => void this.prune(), this.deps.settings.pruneIntervalMs);
  }

  /** Finishes the batch in flight, then closes the broker connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pruning);
    this.wake?.();
    await this.running;
    await this.dropConnection();
  }

  private async loop(): Promise<void> {
    const { settings, logger } = this.deps;
    while (!this.stopping) {
      let published: number;
      try {
        published = await this.relayBatch();
      } catch (error) {
        this.failures += 1;
        const delay = backoffDelay(this.failures, settings.backoffBaseMs, settings.backoffMaxMs);
        logger.warn({ err: error, attempt: this.failures, retryInMs: delay }, "relay batch failed, events stay in the outbox");
        await this.dropConnection();
        await this.sleep(delay);
        continue;
      }
      if (this.failures > 0) logger.info({ after: this.failures }, "relay recovered");
      this.failures = 0;
      if (published > 0) logger.debug({ published }, "batch published");
      // A full batch: more may be waiting.
      if (published < settings.batchSize) await this.sleep(settings.pollIntervalMs);
    }
  }

  /** One claim → publish → confirm → mark → commit. Resolves the number of events published. */
  private async relayBatch(): Promise<number> {
    const client = await this.deps.pool.connect();
    let broken = false;
    // Between statements (while the broker confirms) a lost connection is reported as an
    // event, not by a query: without a listener it would end the process.
    const onError = (error: Error) => {
      broken = true;
      this.deps.logger.warn({ err: error }, "database connection lost during a batch");
    };
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      const { rows: claimed } = await dbQuery<OutboxRow>(client, "claim_outbox", CLAIM_SQL, [this.deps.settings.batchSize]);
      let rows = claimed;
      if (claimed.length > 0) {
        const { rows: gaps } = await dbQuery<{ sender: string; first_gap: string }>(client, "outbox_gaps", GAPS_SQL, [
          claimed.map((r) => r.id),
          [...new Set(claimed.map(senderOf))],
        ]);
        const firstGap = new Map(gaps.map((g) => [g.sender, BigInt(g.first_gap)]));
        rows = claimed.filter((r) => BigInt(r.id) < (firstGap.get(senderOf(r)) ?? BigInt(r.id) + 1n));
      }
      if (rows.length > 0) {
        const channel = await this.confirmChannel();
        await Promise.all(rows.map((row) => this.publish(channel, row)));
        await dbQuery(client, "mark_published", MARK_SQL, [rows.map((r) => r.id)]);
      }
      await client.query("COMMIT");
      // Events held back behind a gap: wait a poll interval for it to be published.
      return rows.length === claimed.length ? rows.length : 0;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.off("error", onError);
      // A connection that failed mid-transaction is not given back to the pool.
      client.release(broken ? true : undefined);
    }
  }

  /**
   * payment.post_processing (relay): the publish of one event, from the send to the broker's
   * confirm, in the payment's trace. dd-trace's amqplib integration adds its publish span
   * beneath and carries the context on in the message headers.
   */
  private publish(channel: ConfirmChannel, row: OutboxRow): Promise<void> {
    return traced(
      SPANS.postProcessing,
      () =>
        new Promise<void>((resolve, reject) => {
          channel.publish(
            this.deps.broker.exchange,
            row.event_type,
            messageBody(row),
            {
              persistent: true,
              contentType: "application/json",
              messageId: row.id,
              type: row.event_type,
              timestamp: Math.floor(row.created_at.getTime() / 1000),
            },
            (error) => (error ? reject(new Error(`broker refused event ${row.id}`)) : resolve()),
          );
        }),
      {
        [DETAIL_TAGS.postProcessingStage]: "relay",
        [DETAIL_TAGS.eventId]: row.id,
        [DETAIL_TAGS.eventType]: row.event_type,
      },
      { resource: `publish ${row.event_type}`, childOf: extractContext(row.trace_context) },
    );
  }

  private async confirmChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const { broker, logger } = this.deps;
    const connection = await connect(broker);
    connection.on("error", (error: Error) => logger.warn({ err: error }, "broker connection error"));
    connection.on("close", () => {
      if (this.connection === connection) {
        this.connection = undefined;
        this.channel = undefined;
      }
    });
    this.connection = connection;
    const channel = await connection.createConfirmChannel();
    channel.on("error", (error: Error) => logger.warn({ err: error }, "broker channel error"));
    channel.on("close", () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await assertTopology(channel, broker.exchange);
    this.channel = channel;
    logger.info({ broker: describeBroker(broker) }, "connected to the broker");
    return channel;
  }

  private async dropConnection(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    await connection?.close().catch(() => undefined);
  }

  /** Deletes published rows past the retention window, a bounded batch per statement. */
  private async prune(): Promise<void> {
    const { pool, settings, logger } = this.deps;
    try {
      let deleted = 0;
      for (let round = 0; round < 10 && !this.stopping; round += 1) {
        const { rowCount } = await dbQuery(pool, "prune_outbox", PRUNE_SQL, [settings.retentionSeconds, settings.pruneBatchSize]);
        deleted += rowCount ?? 0;
        if ((rowCount ?? 0) < settings.pruneBatchSize) break;
      }
      if (deleted > 0) logger.info({ deleted }, "pruned published outbox events");
    } catch (error) {
      logger.warn({ err: error }, "pruning the outbox failed; next round retries");
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
